// 逐只审核: one cylinder on screen, its stamp large; one key marks 正确 and moves on.
// Verdicts are saved one at a time, in order, through the pager's save with the revision the
// clerk saw; until the server confirms one, it is kept in localStorage under the pager's key
// (same format: the pager offers them too), so a timed-out session or a closed tab loses none.
(function () {
  "use strict";
  const root = document.getElementById("audit-reader");
  if (!root || !document.getElementById("reader-card")) return;
  const total = Number(root.dataset.total);
  const windowSize = Number(root.dataset.window);
  const editable = root.dataset.editable === "1";
  const storageKey = "regbo-audit-" + root.dataset.application;
  const csrf = (document.querySelector("#reader-finish input[name=csrf_token]") || {}).value || "";
  const PRELOAD_AHEAD = 4;

  const $ = function (id) { return document.getElementById(id); };
  const stamp = $("reader-stamp");
  const cert = $("reader-cert");
  const note = $("reader-note");
  const noteBox = $("reader-note-box");
  const card = $("reader-card");
  const alertBox = $("reader-alert");
  const live = $("reader-live");

  const cylinders = {};       // position → cylinder from the server (kept up to date)
  const loading = {};         // window offset → promise
  const preloaded = {};       // URL → Image, so the browser keeps them decoded
  let current = Math.min(Number(root.dataset.start) || 0, Math.max(total - 1, 0));
  let queue = [];             // marks waiting for the server, oldest first
  let sending = false;
  let stopped = false;        // the session ended: wait for the clerk to log in again

  // ------------------------------------------------------------------ marks kept in browser
  function readKept() {
    try { return JSON.parse(window.localStorage.getItem(storageKey) || "{}"); } catch (e) { return {}; }
  }
  function writeKept(kept) {
    try {
      if (Object.keys(kept).length) window.localStorage.setItem(storageKey, JSON.stringify(kept));
      else window.localStorage.removeItem(storageKey);
    } catch (e) { /* private mode: nothing kept */ }
  }
  function keep(mark) {
    const kept = readKept();
    kept[mark.item] = { verdict: mark.verdict, note: mark.note, rev: String(mark.rev) };
    writeKept(kept);
  }
  function forget(itemId) {
    const kept = readKept();
    delete kept[itemId];
    writeKept(kept);
  }

  // ------------------------------------------------------------------------ the cylinders
  function windowOf(position) { return Math.floor(position / windowSize) * windowSize; }
  function load(position) {
    const offset = windowOf(position);
    if (position < 0 || position >= total) return Promise.resolve();
    if (!loading[offset]) {
      loading[offset] = fetch(root.dataset.cylindersUrl + (root.dataset.cylindersUrl.indexOf("?") >= 0 ? "&" : "?") + "offset=" + offset, {
        credentials: "same-origin", headers: { Accept: "application/json" },
      }).then(function (response) {
        if (!isJson(response)) throw new Error("session");
        return response.json();
      }).then(function (data) {
        data.items.forEach(function (item, i) {
          item.position = data.offset + i;
          cylinders[item.position] = item;
        });
      }).catch(function (error) {
        delete loading[offset];
        if (error.message === "session") sessionEnded();
        throw error;
      });
    }
    return loading[offset];
  }
  function isJson(response) {
    return !response.redirected && (response.headers.get("Content-Type") || "").indexOf("json") >= 0;
  }
  function photoOf(item, kind) {
    return item.photos.filter(function (p) { return p.kind === kind; })[0];
  }
  function preload(position) {
    const item = cylinders[position];
    if (!item) return;
    item.photos.forEach(function (photo) {
      const url = photo.kind === "stamp" ? photo.view : photo.side;
      if (preloaded[url]) return;
      const image = new Image();
      image.decoding = "async";
      image.src = url;
      preloaded[url] = image;
      if (image.decode) image.decode().catch(function () { /* shown as missing later */ });
    });
  }
  function preloadAhead() {
    for (let p = current + 1; p <= current + PRELOAD_AHEAD && p < total; p += 1) {
      if (cylinders[p]) preload(p);
      else load(p).then(function () { preloadAhead(); }).catch(function () {});
    }
    if (current + windowSize / 2 < total) load(current + windowSize).catch(function () {});
  }

  // ---------------------------------------------------------------------------- drawing
  const MACHINE = { match: "text-bg-success", mismatch: "text-bg-danger", unread: "text-bg-secondary" };
  const VERDICTS = { pending: ["待审核", "text-bg-secondary"], correct: ["正确", "text-bg-success"], wrong: ["错误", "text-bg-danger"] };
  function showPhoto(img, link, caption, photo, variant, missing) {
    if (photo) {
      img.hidden = false;
      img.alt = photo.alt;
      img.src = photo[variant];
      link.href = photo.full;
      link.dataset.lightbox = photo.alt;
      link.hidden = false;
      caption.textContent = photo.alt;
    } else {
      img.removeAttribute("src");
      img.alt = "";
      link.hidden = true;
      caption.textContent = missing;
    }
  }
  function render() {
    const item = cylinders[current];
    if (!item) {
      load(current).then(function () {
        if (cylinders[current]) render();
        else say("无法载入第 " + (current + 1) + " 只气瓶，请刷新页面。");
      }).catch(function () {});
      return;
    }
    const shownAt = current;
    const stampPhoto = photoOf(item, "stamp");
    showPhoto(stamp, stamp.parentElement, $("reader-stamp-caption"), stampPhoto, "view", "无钢印照片");
    showPhoto(cert, cert.parentElement, $("reader-cert-caption"), photoOf(item, "supervision_certificate"), "side", "无监检证书照片");
    // Photos beyond the first of each kind (3rd and 4th): small links, in the lightbox's order.
    const more = $("reader-more");
    more.textContent = "";
    const firsts = [photoOf(item, "stamp"), photoOf(item, "supervision_certificate")];
    item.photos.forEach(function (photo) {
      if (firsts.indexOf(photo) >= 0) return;
      const link = document.createElement("a");
      link.href = photo.full;
      link.className = "photo-link d-inline-block me-1";
      link.dataset.lightbox = photo.alt;
      const img = document.createElement("img");
      img.src = photo.small;
      img.alt = photo.alt;
      img.className = "photo-thumb thumb-64";
      link.appendChild(img);
      more.appendChild(link);
    });
    root.querySelector("[data-reader-position]").textContent = String(current + 1);
    $("reader-product").textContent = item.product_no;
    const verdict = VERDICTS[item.verdict];
    const badge = $("reader-verdict");
    badge.textContent = verdict[0] + (item.verdict === "wrong" && item.note ? "（" + item.note + "）" : "");
    badge.className = "badge " + verdict[1];
    card.classList.toggle("border-danger", item.verdict === "wrong");
    // 补正 changes and 机器预读 (a hint, never a verdict): one badge per photo.
    const changed = $("reader-changed");
    changed.textContent = "";
    (item.changed || []).forEach(function (label) {
      const b = document.createElement("span");
      b.className = "badge text-bg-warning me-1";
      b.textContent = "补正：" + label;
      changed.appendChild(b);
    });
    const machine = $("reader-machine");
    machine.textContent = "";
    item.photos.forEach(function (photo) {
      const line = document.createElement("span");
      line.className = "text-nowrap me-2";
      const m = photo.machine;
      const b = document.createElement("span");
      b.className = "badge ocr-badge " + (!m ? "text-bg-light border" : MACHINE[m.verdict]);
      b.dataset.ocr = m ? m.verdict : "pending";
      b.textContent = m ? m.label : "待预读";
      line.textContent = "机器预读 " + (photo.kind === "stamp" ? "钢印" : "监检证书") + " ";
      line.appendChild(b);
      if (m && m.verdict === "mismatch" && m.note) {
        const why = document.createElement("span");
        why.className = "text-danger ms-1";
        why.textContent = m.note;
        line.appendChild(why);
      }
      machine.appendChild(line);
    });
    const facts = $("reader-facts");
    facts.textContent = "";
    item.facts.forEach(function (pair) {
      const dt = document.createElement("dt"); dt.className = "col-5"; dt.textContent = pair[0];
      const dd = document.createElement("dd"); dd.className = "col-7"; dd.textContent = pair[1];
      facts.appendChild(dt); facts.appendChild(dd);
    });
    if (noteBox) { noteBox.hidden = true; note.value = item.note; }
    live.textContent = "第 " + (current + 1) + " 只，产品编号 " + item.product_no + "，" + verdict[0];
    // "On screen": the stamp is decoded and the next frame painted (the benchmark listens).
    const done = function () {
      window.requestAnimationFrame(function () {
        document.dispatchEvent(new CustomEvent("reader:shown", { detail: { position: shownAt, product: item.product_no } }));
      });
    };
    if (stampPhoto && stamp.decode) stamp.decode().then(done, done); else done();
    preloadAhead();
  }
  function go(position) {
    if (position < 0 || position >= total) {
      say(position >= total ? "已是最后一只。" + finishHint() : "已是第一只。");
      return;
    }
    current = position;
    render();
  }
  function finishHint() {
    return editable ? "请检查进度后点击“完成审核”。" : "";
  }
  function say(text) { live.textContent = text; $("reader-saving").textContent = text; }

  // ---------------------------------------------------------------------------- saving
  function mark(verdict, text) {
    const item = cylinders[current];
    if (!item || !editable) return;
    if (verdict === "wrong" && !text.trim()) { note.focus(); say("标记为“错误”须填写备注。"); return; }
    const entry = { item: item.id, position: current, verdict: verdict, note: verdict === "wrong" ? text.trim() : "", rev: item.rev };
    // Shown at once; the server's answer confirms it or puts the current verdict back.
    item.verdict = verdict;
    item.note = entry.note;
    queue.push(entry);
    keep(entry);
    send();
  }
  function send() {
    if (sending || stopped || !queue.length) return;
    sending = true;
    const entry = queue[0];
    const body = new FormData();
    body.append("csrf_token", csrf);
    body.append("item", entry.item);
    body.append("verdict-" + entry.item, entry.verdict);
    body.append("note-" + entry.item, entry.note);
    body.append("rev-" + entry.item, entry.rev);
    $("reader-saving").textContent = "正在保存…（待保存 " + queue.length + " 只）";
    fetch(root.dataset.verdictUrl, { method: "POST", body: body, credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        if (!isJson(response)) throw new Error("session");
        return response.json().then(function (data) { return [response.status, data]; });
      })
      .then(function (answer) {
        const status = answer[0], data = answer[1];
        sending = false;
        queue.shift();
        forget(entry.item);
        if (status >= 400 && !("rev" in data)) {
          showAlert("产品编号的审核结果未保存：" + (data.message || "请刷新页面后重试。"), false);
          reloadCylinder(entry.position);
        } else {
          settled(entry, data);
        }
        send();
      })
      .catch(function (error) {
        sending = false;
        if (error.message === "session") sessionEnded();
        else {
          showAlert("网络中断，" + queue.length + " 只气瓶的审核结果尚未保存（已保存在本浏览器）。", true);
        }
      });
  }
  function cylinderById(id) {
    const found = Object.keys(cylinders).filter(function (p) { return cylinders[p].id === id; })[0];
    return found === undefined ? null : cylinders[found];
  }
  function settled(entry, data) {
    const item = cylinderById(entry.item);
    // Later marks of the same cylinder, made before this answer, go on from its new revision.
    let later = false;
    queue.forEach(function (next) {
      if (next.item !== entry.item) return;
      later = true;
      if (next.rev === entry.rev) next.rev = data.rev;
    });
    if (item) {
      item.rev = data.rev;
      if (data.conflict || !later) { item.verdict = data.verdict; item.note = data.note; }
      // A kept mark confirmed while this cylinder is on screen (not while its note is typed).
      if (item.position === current && entry.position !== current && document.activeElement !== note) render();
    }
    if (data.conflict && data.verdict === "pending" && (data.changed || []).length) {
      // The mark was made before the applicant's 补正 reset this cylinder to 未审核.
      showAlert("产品编号 " + data.product_no + "：补正后该气瓶需重新审核（申请人" + data.changed.join("、") +
        "），之前的标记不再适用，未保存；请按补正后的内容重新审核。", false);
      if (item && item.position === current) render();
    } else if (data.conflict) {
      showAlert("产品编号 " + data.product_no + " 的审核结果在本页打开后已被修改（其他人员，或您在另一个窗口），本次标记未保存；已重新载入当前结果：" +
        data.verdict_label + (data.note ? "（" + data.note + "）" : "") + "。", false);
      if (item && item.position === current) render();
    }
    $("reader-progress").textContent = "已审核 " + data.progress.audited + " / " + data.progress.total + "，错误 " + data.progress.wrong;
    $("reader-saving").textContent = queue.length ? "正在保存…（待保存 " + queue.length + " 只）" : "已保存";
    if (!queue.length && !data.conflict && alertBox.dataset.kind === "retry") alertBox.hidden = true;
  }
  function reloadCylinder(position) {
    delete loading[windowOf(position)];
    load(position).then(function () { if (position === current) render(); }).catch(function () {});
  }
  function showAlert(text, retry) {
    alertBox.querySelector("[data-reader-alert-text]").textContent = text;
    alertBox.querySelector("[data-reader-retry]").hidden = !retry;
    alertBox.querySelector("[data-reader-login]").hidden = true;
    alertBox.dataset.kind = retry ? "retry" : "info";
    alertBox.hidden = false;
  }
  function sessionEnded() {
    stopped = true;
    showAlert("登录已超时，" + (queue.length ? queue.length + " 只气瓶的审核结果尚未保存，已保存在本浏览器；" : "") +
      "请重新登录，回到本页后将继续保存。", false);
    const login = alertBox.querySelector("[data-reader-login]");
    login.href = root.dataset.loginUrl;
    login.hidden = false;
  }
  alertBox.querySelector("[data-reader-retry]").addEventListener("click", function () {
    alertBox.hidden = true;
    send();
  });

  // Marks kept from an earlier visit (a timed-out session, a closed tab) are sent again with
  // the revision they were made on: one changed meanwhile is refused and reloaded, not lost.
  function resendKept() {
    const kept = readKept();
    const ids = Object.keys(kept);
    if (!ids.length || !editable) return;
    ids.forEach(function (id) {
      const m = kept[id];
      queue.push({ item: Number(id), position: -1, verdict: m.verdict, note: m.note || "", rev: Number(m.rev) });
    });
    say("正在保存上次未保存的 " + ids.length + " 只气瓶的审核结果…");
    showAlert("上次有 " + ids.length + " 只气瓶的审核结果未能保存（例如登录已超时），正在重新保存。", false);
    alertBox.dataset.kind = "retry";
    send();
  }

  window.addEventListener("beforeunload", function (event) {
    // After the session ended the marks wait in localStorage: 重新登录 leaves without asking.
    if (!queue.length || stopped) return;
    event.preventDefault();
    event.returnValue = "";
  });

  // ---------------------------------------------------------------------------- keys
  function startWrong() {
    if (!editable || !cylinders[current]) return;
    noteBox.hidden = false;
    note.value = cylinders[current].note || "";
    note.focus();
    card.classList.add("border-danger");
  }
  function cancelWrong() {
    noteBox.hidden = true;
    card.classList.toggle("border-danger", (cylinders[current] || {}).verdict === "wrong");
    root.focus();
  }
  if (note) {
    note.addEventListener("keydown", function (event) {
      if (event.key === "Enter") {
        event.preventDefault();
        if (!note.value.trim()) { say("标记为“错误”须填写备注。"); return; }
        mark("wrong", note.value);
        root.focus();
        go(current + 1);
      } else if (event.key === "Escape") {
        event.preventDefault();
        event.stopPropagation();
        cancelWrong();
      }
    });
  }
  root.addEventListener("click", function (event) {
    const button = event.target.closest("[data-reader-action]");
    if (!button) return;
    const action = button.dataset.readerAction;
    if (action === "correct") { mark("correct", ""); go(current + 1); }
    else if (action === "wrong") startWrong();
    else if (action === "save-wrong") {
      if (!note.value.trim()) { note.focus(); say("标记为“错误”须填写备注。"); return; }
      mark("wrong", note.value); go(current + 1);
    }
    else if (action === "prev") go(current - 1);
    else if (action === "next") go(current + 1);
  });
  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (document.querySelector(".modal.show")) return;  // the lightbox has the keys
    if (event.target.matches("input, textarea, select")) return;
    const onButton = event.target.matches("button, a");
    const key = event.key.toLowerCase();
    if ((key === " " || key === "enter") && !onButton) {
      event.preventDefault();
      mark("correct", "");
      go(current + 1);
    } else if (key === "x") { event.preventDefault(); startWrong(); }
    else if (key === "k" || key === "arrowleft") { event.preventDefault(); go(current - 1); }
    else if (key === "l" || key === "arrowright") { event.preventDefault(); go(current + 1); }
  });

  // The lightbox's ↑/↓ (cylinder to cylinder): this page draws one cylinder, so it moves.
  card.addEventListener("lightbox:cylinder", function (event) {
    event.preventDefault();
    go(current + event.detail.step);
  });

  if (!total) return;
  load(current).then(function () { render(); root.focus(); resendKept(); }).catch(function () {});
})();
