// 批量上传照片: many photos chosen or dropped at once, one request each, with a progress bar;
// the zip upload shows its progress too. After a network error or a timed-out session the
// upload stops and 继续上传 goes on from the file that failed (the server does not store a
// photo twice, so a file whose answer was lost is safe to send again).
(function () {
  "use strict";
  const box = document.getElementById("multi-upload");
  if (!box) return;
  const input = document.getElementById("multi-files");
  const zone = document.getElementById("drop-zone");
  const progressBox = document.getElementById("upload-progress-box");
  const bar = document.getElementById("upload-progress-bar");
  const progress = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  const resume = document.getElementById("upload-resume");
  const table = document.getElementById("upload-results");
  const doneKey = "regbo-photos-done-" + box.dataset.application;
  let queue = [];
  let position = 0;
  let running = false;
  let sentBytes = 0;

  function fileKey(file) { return file.name + "|" + file.size + "|" + file.lastModified; }
  function readDone() {
    try { return JSON.parse(window.sessionStorage.getItem(doneKey) || "{}"); } catch (e) { return {}; }
  }
  function markDone(file) {
    const done = readDone();
    done[fileKey(file)] = 1;
    try { window.sessionStorage.setItem(doneKey, JSON.stringify(done)); } catch (e) { /* ignore */ }
  }
  function totalBytes() { return queue.reduce(function (n, f) { return n + f.size; }, 0) || 1; }
  function show(loaded) {
    const percent = Math.min(100, Math.round(((sentBytes + loaded) / totalBytes()) * 100));
    bar.style.width = percent + "%";
    progress.setAttribute("aria-valuenow", String(percent));
  }
  function say(text) { status.textContent = text; }
  function addRow(result) {
    table.hidden = false;
    const row = table.tBodies[0].insertRow();
    if (!result.ok) row.className = "table-danger";
    [result.name, result.product_no || "", result.ok ? "成功" : "失败", result.message].forEach(function (text) {
      row.insertCell().textContent = text;
    });
  }
  function post(url, field, file, onProgress) {
    return new Promise(function (resolve, reject) {
      const xhr = new XMLHttpRequest();
      xhr.open("POST", url);
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", function (event) { onProgress(event.loaded); });
      xhr.addEventListener("load", function () {
        const json = (xhr.getResponseHeader("Content-Type") || "").indexOf("json") >= 0;
        if (!json || xhr.responseURL.indexOf("/login") >= 0) { reject(new Error("登录已超时，请在新窗口重新登录后点击“继续上传”")); return; }
        let data;
        try { data = JSON.parse(xhr.responseText); } catch (e) { reject(new Error("服务器答复无法识别")); return; }
        if (xhr.status >= 500) { reject(new Error("服务器暂时无法处理（" + xhr.status + "）")); return; }
        resolve([xhr.status, data]);
      });
      xhr.addEventListener("error", function () { reject(new Error("网络中断")); });
      const body = new FormData();
      body.append("csrf_token", box.dataset.csrf);
      body.append(field, file, file.name);
      xhr.send(body);
    });
  }
  function next() {
    if (position >= queue.length) {
      running = false;
      say("完成：共 " + queue.length + " 张。请返回申请查看每只气瓶的照片是否齐全。");
      show(0);
      return;
    }
    running = true;
    const file = queue[position];
    say("正在上传第 " + (position + 1) + " / " + queue.length + " 张：" + file.name);
    post(box.dataset.url, "file", file, show).then(function (answer) {
      const code = answer[0], data = answer[1];
      if (data.result) {
        addRow(data.result);
        if (data.result.ok) markDone(file);
      } else {
        addRow({ name: file.name, ok: false, message: data.error || ("上传失败（" + code + "）") });
        if (code === 409) { stop(data.error); return; }  // no longer a draft: nothing more goes
      }
      sentBytes += file.size;
      position += 1;
      next();
    }, function (error) { stop(error.message); });
  }
  function stop(message) {
    running = false;
    say("上传中断：" + message + "。已上传 " + position + " / " + queue.length + " 张。");
    resume.hidden = false;
    resume.focus();
  }
  resume.addEventListener("click", function () {
    resume.hidden = true;
    if (!running) next();
  });
  function add(files) {
    const done = readDone();
    let skipped = 0;
    Array.from(files).forEach(function (file) {
      if (done[fileKey(file)]) { skipped += 1; return; }
      queue.push(file);
    });
    progressBox.hidden = false;
    if (skipped) addRow({ name: skipped + " 个文件", ok: true, message: "本次已上传过，已跳过" });
    if (!running && resume.hidden) next();
  }
  input.addEventListener("change", function () { add(input.files); input.value = ""; });
  zone.addEventListener("dragover", function (event) { event.preventDefault(); zone.classList.add("drop-active"); });
  zone.addEventListener("dragleave", function () { zone.classList.remove("drop-active"); });
  zone.addEventListener("drop", function (event) {
    event.preventDefault();
    zone.classList.remove("drop-active");
    if (event.dataTransfer && event.dataTransfer.files.length) add(event.dataTransfer.files);
  });

  // The zip: the same results table, with the upload's progress.
  const zipForm = document.getElementById("zip-form");
  if (zipForm) {
    zipForm.addEventListener("submit", function (event) {
      const file = zipForm.querySelector("input[type=file]").files[0];
      if (!file || running) return;
      event.preventDefault();
      queue = [file];
      position = 0;
      sentBytes = 0;
      progressBox.hidden = false;
      say("正在上传压缩包 " + file.name + "…（上传完成后逐张检查照片，可能需要几分钟）");
      running = true;
      post(zipForm.action, "file", file, show).then(function (answer) {
        const data = answer[1];
        running = false;
        if (data.error) { say(data.error); return; }
        data.results.forEach(addRow);
        const ok = data.results.filter(function (r) { return r.ok; }).length;
        say("压缩包上传完成：共 " + data.results.length + " 个文件，成功 " + ok + " 个，失败 " + (data.results.length - ok) + " 个。");
        show(0);
      }, function (error) { running = false; say("压缩包上传中断：" + error.message + "，请重新上传（已上传的照片不会重复保存）。"); });
    });
  }
})();
