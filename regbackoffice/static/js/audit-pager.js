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
  // the page with unsaved marks asks first. Each mark carries the cylinder's audit revision:
  // a mark made before the server's verdict changed (another clerk, or the applicant's
  // 补正 reset it to 未审核) no longer applies and is not restored, and the clerk is told
  // precisely which cylinders and why.
  const storageKey = "regbo-audit-" + form.dataset.application;
  const CHANGE_WORDS = { data: "数据已修改", photos: "照片已更换", "new": "补正时新增" };
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
  // A 未审核 cylinder shows 正确 by default: a 正确 the clerk clicked there is a mark of
  // their own too (kept like any other), not the page's default.
  const touched = {};
  // Marks offered for restoring stay kept until the clerk restores or discards them.
  const offered = {};
  function pending(card) { return card.dataset.verdict === "pending"; }
  function differs(a, b) { return a.verdict !== b.verdict || (a.verdict === "wrong" && a.note !== b.note); }
  function isUnsaved(card) {
    return differs(cardState(card), shown[card.dataset.item]) || (pending(card) && touched[card.dataset.item]);
  }
  function readKept() {
    try { return JSON.parse(window.localStorage.getItem(storageKey) || "{}"); } catch (e) { return {}; }
  }
  function writeKept(kept) {
    try {
      if (Object.keys(kept).length) { window.localStorage.setItem(storageKey, JSON.stringify(kept)); }
      else { window.localStorage.removeItem(storageKey); }
    } catch (e) { /* private mode: nothing kept */ }
  }
  function unsaved() { return cards.filter(isUnsaved); }
  function remember() {
    const kept = readKept();
    cards.forEach(function (card) {
      if (isUnsaved(card)) {
        delete offered[card.dataset.item];  // the clerk's new mark replaces the offered one
        kept[card.dataset.item] = Object.assign(cardState(card), { product: card.dataset.product || "" });
      } else if (!offered[card.dataset.item]) { delete kept[card.dataset.item]; }
    });
    writeKept(kept);
  }
  form.addEventListener("click", function (event) {
    const target = event.target.closest ? event.target.closest(".audit-card") : null;
    if (!target || !event.target.matches("input.verdict, label.btn")) return;
    touched[target.dataset.item] = true;
    window.setTimeout(remember, 0);  // after the radio has changed
  });
  form.addEventListener("change", remember);
  // Saving the page without restoring the offered marks sets them aside (the page's values win).
  form.addEventListener("submit", function () {
    const kept = readKept();
    Object.keys(offered).forEach(function (id) { delete kept[id]; delete offered[id]; });
    writeKept(kept);
  });
  form.addEventListener("input", function (event) {
    const target = event.target.closest ? event.target.closest(".audit-card") : null;
    if (target) touched[target.dataset.item] = true;
    remember();
  });
  window.addEventListener("beforeunload", function (event) {
    if (form.dataset.submitting || !unsaved().length) return;
    event.preventDefault();
    event.returnValue = "";
  });

  function markWords(mark) {
    return mark.verdict === "wrong" ? "错误：" + (mark.note || "（无备注）") : "正确";
  }
  function changeWords(card) {
    return (card.dataset.correction || "").split(",").filter(Boolean)
      .map(function (c) { return CHANGE_WORDS[c] || c; }).join("、");
  }
  function tellOnCard(card, text) {
    const line = document.createElement("div");
    line.className = "alert alert-warning py-1 px-2 mb-2 small";
    line.setAttribute("data-kept-stale", "");
    line.textContent = text;
    card.querySelector(".card-body").prepend(line);
  }

  // On load: marks kept from an earlier visit that the server does not show yet.
  (function offerKept() {
    const kept = readKept();
    const restorable = [];
    const reaudit = [];  // reset to 未审核 by the applicant's 补正 after the mark was made
    const changed = [];  // another verdict was saved after the mark was made
    cards.forEach(function (card) {
      const mark = kept[card.dataset.item];
      if (!mark) return;
      const now = shown[card.dataset.item];
      const product = card.dataset.product || mark.product || "";
      // Saved meanwhile (a 未审核 cylinder is never "saved" by looking like the default).
      if (!pending(card) && !differs(mark, now)) { delete kept[card.dataset.item]; return; }
      if (mark.rev !== now.rev) {
        delete kept[card.dataset.item];
        if (card.dataset.correction && pending(card)) {
          reaudit.push(product);
          tellOnCard(card, "补正后该气瓶需重新审核（申请人" + changeWords(card) + "），您之前未保存的标记（" +
            markWords(mark) + "）不再适用，请按补正后的内容重新审核。");
        } else {
          changed.push(product);
          tellOnCard(card, "您之前未保存的标记（" + markWords(mark) + "）未恢复：此后该气瓶的审核结果已被修改为当前所示，请核对。");
        }
        return;
      }
      restorable.push([card, mark]);
    });
    writeKept(kept);
    restorable.forEach(function (pair) { offered[pair[0].dataset.item] = true; });
    const box = document.getElementById("kept-marks");
    if (!box || (!restorable.length && !reaudit.length && !changed.length)) return;
    const parts = [];
    if (restorable.length) {
      parts.push("本页有 " + restorable.length + " 只气瓶的审核标记上次未能保存（例如登录已超时），可以恢复。");
    }
    if (reaudit.length) {
      parts.push("补正后该气瓶需重新审核，之前的标记不再适用：" + reaudit.length + " 只气瓶（产品编号 " +
        reaudit.join("、") + "）在您标记之后被申请人补正修改，已恢复为“未审核”，请重新审核。");
    }
    if (changed.length) {
      parts.push(changed.length + " 只气瓶（产品编号 " + changed.join("、") +
        "）的未保存标记未恢复：在您标记之后，其审核结果已被修改（其他人员或另一窗口），请核对当前结果。");
    }
    box.querySelector("[data-kept-text]").textContent = parts.join(" ");
    const restore = box.querySelector("[data-kept-restore]");
    restore.hidden = !restorable.length;
    const discard = box.querySelector("[data-kept-discard]");
    discard.textContent = restorable.length ? "放弃" : "知道了";
    restore.addEventListener("click", function () {
      restorable.forEach(function (pair) {
        const card = pair[0], mark = pair[1];
        const radio = card.querySelector("input.verdict[value=" + mark.verdict + "]");
        if (radio) radio.checked = true;
        const note = card.querySelector("input.note");
        if (note) note.value = mark.note;
        touched[card.dataset.item] = true;
        delete offered[card.dataset.item];
        syncNote(card);
      });
      remember();
      box.hidden = true;
      if (restorable.length) focusCard(cards.indexOf(restorable[0][0]));
    });
    discard.addEventListener("click", function () {
      const rest = readKept();
      restorable.forEach(function (pair) {
        delete rest[pair[0].dataset.item];
        delete offered[pair[0].dataset.item];
      });
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
