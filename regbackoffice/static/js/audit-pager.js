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

  // Unsaved marks are kept in the browser until the server shows them saved, so a session
  // that timed out (the save went to the login page) or a closed tab loses nothing; leaving
  // the page with unsaved marks asks first.
  const storageKey = "regbo-audit-" + form.dataset.application;
  function cardState(card) {
    const checked = card.querySelector("input.verdict:checked");
    const note = card.querySelector("input.note");
    return {
      verdict: checked ? checked.value : "correct",
      note: note ? note.value.trim() : "",
      rev: (card.querySelector("input[name^=rev-]") || {}).value || "",
    };
  }
  const shown = {};
  cards.forEach(function (card) { shown[card.dataset.item] = cardState(card); });
  function differs(a, b) { return a.verdict !== b.verdict || (a.verdict === "wrong" && a.note !== b.note); }
  function readKept() {
    try { return JSON.parse(window.localStorage.getItem(storageKey) || "{}"); } catch (e) { return {}; }
  }
  function writeKept(kept) {
    try {
      if (Object.keys(kept).length) { window.localStorage.setItem(storageKey, JSON.stringify(kept)); }
      else { window.localStorage.removeItem(storageKey); }
    } catch (e) { /* private mode: nothing kept */ }
  }
  function unsaved() {
    return cards.filter(function (card) { return differs(cardState(card), shown[card.dataset.item]); });
  }
  function remember() {
    const kept = readKept();
    cards.forEach(function (card) {
      const state = cardState(card);
      if (differs(state, shown[card.dataset.item])) { kept[card.dataset.item] = state; }
      else { delete kept[card.dataset.item]; }
    });
    writeKept(kept);
  }
  form.addEventListener("change", remember);
  form.addEventListener("input", remember);
  window.addEventListener("beforeunload", function (event) {
    if (form.dataset.submitting || !unsaved().length) return;
    event.preventDefault();
    event.returnValue = "";
  });

  // On load: marks kept from an earlier visit that the server does not show yet.
  (function offerKept() {
    const kept = readKept();
    const restorable = [];
    let outdated = 0;
    cards.forEach(function (card) {
      const mark = kept[card.dataset.item];
      if (!mark) return;
      const now = shown[card.dataset.item];
      if (!differs(mark, now)) { delete kept[card.dataset.item]; return; }  // saved meanwhile
      if (mark.rev !== now.rev) { delete kept[card.dataset.item]; outdated += 1; return; }
      restorable.push([card, mark]);
    });
    writeKept(kept);
    const box = document.getElementById("kept-marks");
    if (!box || (!restorable.length && !outdated)) return;
    box.querySelector("[data-kept-text]").textContent =
      (restorable.length ? "本页有 " + restorable.length + " 只气瓶的审核标记上次未能保存（例如登录已超时）。" : "") +
      (outdated ? outdated + " 只气瓶的未保存标记因其审核结果已被修改而不再恢复。" : "");
    const restore = box.querySelector("[data-kept-restore]");
    restore.hidden = !restorable.length;
    restore.addEventListener("click", function () {
      restorable.forEach(function (pair) {
        const card = pair[0], mark = pair[1];
        const radio = card.querySelector("input.verdict[value=" + mark.verdict + "]");
        if (radio) radio.checked = true;
        const note = card.querySelector("input.note");
        if (note) note.value = mark.note;
        syncNote(card);
      });
      box.hidden = true;
      if (restorable.length) focusCard(cards.indexOf(restorable[0][0]));
    });
    box.querySelector("[data-kept-discard]").addEventListener("click", function () {
      const rest = readKept();
      restorable.forEach(function (pair) { delete rest[pair[0].dataset.item]; });
      writeKept(rest);
      box.hidden = true;
    });
    box.hidden = false;
  })();

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
