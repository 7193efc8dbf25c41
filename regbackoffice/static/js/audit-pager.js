// 审核附件 pager: keyboard J/K move between cylinders, X toggles 错误, N saves and goes on.
(function () {
  "use strict";
  const form = document.getElementById("audit-form");
  if (!form) return;
  const cards = Array.from(form.querySelectorAll(".audit-card"));
  let current = 0;

  function focusCard(index) {
    if (!cards.length) return;
    current = Math.max(0, Math.min(index, cards.length - 1));
    cards.forEach(function (card, i) { card.classList.toggle("audit-current", i === current); });
    cards[current].focus();
    cards[current].scrollIntoView({ block: "nearest" });
  }

  function syncNote(card) {
    const wrong = card.querySelector("input.verdict[value=wrong]");
    const note = card.querySelector("input.note");
    if (!wrong || !note) return;
    note.required = wrong.checked;
    card.classList.toggle("border-danger", wrong.checked);
  }

  function toggleWrong(card) {
    const ok = card.querySelector("input.verdict[value=correct]");
    const wrong = card.querySelector("input.verdict[value=wrong]");
    if (!ok || !wrong) return;
    (wrong.checked ? ok : wrong).checked = true;
    syncNote(card);
    if (wrong.checked) card.querySelector("input.note").focus();
  }

  cards.forEach(function (card, index) {
    card.addEventListener("focusin", function () { current = index; });
    card.addEventListener("change", function () { syncNote(card); });
  });

  // Submit once: a double click or Enter held down does not post twice.
  form.addEventListener("submit", function (event) {
    if (form.dataset.submitting) { event.preventDefault(); return; }
    form.dataset.submitting = "1";
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    // While a photo is open in the lightbox, keys belong to it (N must not save the page).
    if (document.querySelector(".modal.show")) return;
    const typing = event.target.matches("input[type=text], input[type=number], input:not([type]), textarea, select");
    if (typing && event.key !== "Escape") return;
    const key = event.key.toLowerCase();
    if (key === "escape" && typing) { cards[current] && cards[current].focus(); return; }
    if (key === "j") { focusCard(current + 1); event.preventDefault(); }
    else if (key === "k") { focusCard(current - 1); event.preventDefault(); }
    else if (key === "x" && cards[current]) { toggleWrong(cards[current]); event.preventDefault(); }
    else if (key === "n") {
      const next = document.getElementById("next") || document.getElementById("finish");
      if (next) { next.click(); event.preventDefault(); }
    }
  });

  document.querySelectorAll("[data-autosubmit]").forEach(function (input) {
    input.addEventListener("change", function () { input.form.submit(); });
  });

  if (cards.length) focusCard(0);
})();
