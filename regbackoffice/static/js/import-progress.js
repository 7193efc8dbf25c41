// Import progress bar: polls the job's status until it is done, then reloads.
(function () {
  "use strict";
  if (!document.getElementById('import-progress')) return;
  var box = document.getElementById('import-progress');
  var bar = box.querySelector('.progress-bar');
  var text = document.getElementById('progress-text');
  function poll() {
    fetch(box.dataset.statusUrl, {credentials: 'same-origin'}).then(function (r) { return r.json(); }).then(function (s) {
      var pct = s.total ? Math.round(100 * s.processed / s.total) : 0;
      bar.style.width = pct + '%';
      box.querySelector('.progress').setAttribute('aria-valuenow', s.processed);
      text.textContent = s.status_label + '：已处理 ' + s.processed + ' / ' + s.total + ' 行';
      if (s.status === 'done' || s.status === 'failed') { window.location.reload(); }
      else { setTimeout(poll, 1000); }
    }).catch(function () { setTimeout(poll, 3000); });
  }
  setTimeout(poll, 1000);
})();
