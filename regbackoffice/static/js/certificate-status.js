// While a certificate is 排队中 or 生成中, poll its state and reload when it changes.
(function () {
  "use strict";
  const element = document.getElementById("certificate-state");
  if (!element) return;
  const initial = element.dataset.state;
  if (initial !== "queued" && initial !== "rendering") return;
  let delay = 2000;
  function poll() {
    fetch(element.dataset.statusUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (body) {
        if (body && body.state !== initial) { window.location.reload(); return; }
        delay = Math.min(delay * 1.5, 15000);
        window.setTimeout(poll, delay);
      })
      .catch(function () { window.setTimeout(poll, 15000); });
  }
  window.setTimeout(poll, delay);
})();
