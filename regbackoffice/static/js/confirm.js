// One confirmation style: a form with data-confirm asks in the shared dialog (#confirm-dialog,
// base.html) before it submits, saying what will happen. data-confirm-title and
// data-confirm-style (danger, warning, success, primary) are optional.
(function () {
  "use strict";
  const dialog = document.getElementById("confirm-dialog");
  if (!dialog || !window.bootstrap) { return; }
  const modal = new window.bootstrap.Modal(dialog);
  const title = dialog.querySelector("#confirm-dialog-title");
  const body = dialog.querySelector(".modal-body");
  const ok = dialog.querySelector("[data-confirm-ok]");
  let pending = null;

  document.addEventListener("submit", function (event) {
    const form = event.target;
    if (!form.dataset || !form.dataset.confirm) { return; }
    if (form.dataset.confirmed === "1") { delete form.dataset.confirmed; return; }
    event.preventDefault();
    event.stopImmediatePropagation();
    pending = { form: form, submitter: event.submitter || null };
    const label = (event.submitter && event.submitter.textContent.trim()) || "";
    title.textContent = form.dataset.confirmTitle || (label ? "确认" + label : "请确认");
    body.textContent = form.dataset.confirm;
    ok.className = "btn btn-sm btn-" + (form.dataset.confirmStyle || "danger");
    ok.textContent = label ? "确认" + label : "确认";
    modal.show();
  }, true);

  ok.addEventListener("click", function () {
    if (!pending) { return; }
    const { form, submitter } = pending;
    pending = null;
    form.dataset.confirmed = "1";
    modal.hide();
    if (submitter) { form.requestSubmit(submitter); } else { form.requestSubmit(); }
  });
  dialog.addEventListener("hidden.bs.modal", function () {
    if (pending && pending.submitter) { pending.submitter.focus(); }
    pending = null;
  });
})();
