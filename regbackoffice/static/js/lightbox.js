// Photo lightbox. Click a thumbnail, or press 1–4 (the nth photo) or O (the first) for the
// current cylinder's photos. Inside: ←/→ photo to photo, ↑/↓ (or J/K) cylinder to cylinder,
// + / − zoom, R rotate, 0 reset; Esc closes and focus goes back to the cylinder.
// A cylinder is an element with [data-photo-group]; its photos are its visible a.photo-link.
(function () {
  "use strict";
  const modalElement = document.getElementById("lightbox");
  if (!modalElement) return;
  const image = document.getElementById("lightbox-image");
  const title = document.getElementById("lightbox-title");
  const modal = new bootstrap.Modal(modalElement);
  let scale = 1;
  let rotation = 0;
  let group = null;
  let index = 0;

  function apply() {
    image.style.transform = "scale(" + scale + ") rotate(" + rotation + "deg)";
  }
  function linksOf(element) {
    return element ? Array.from(element.querySelectorAll("a.photo-link")).filter(function (a) {
      return !a.hidden && a.getAttribute("href") && a.getAttribute("href") !== "#";
    }) : [];
  }
  function groups() { return Array.from(document.querySelectorAll("[data-photo-group]")); }
  function currentGroup() {
    const active = document.activeElement && document.activeElement.closest("[data-photo-group]");
    if (active) return active;
    const marked = document.querySelector("[data-photo-group].audit-current");
    if (marked) return marked;
    const all = groups();
    return all.length === 1 ? all[0] : null;
  }
  function show(newGroup, newIndex) {
    const links = linksOf(newGroup);
    if (!links.length) return false;
    group = newGroup;
    index = (newIndex + links.length) % links.length;
    const link = links[index];
    scale = 1;
    rotation = 0;
    apply();
    image.src = link.href;
    image.alt = link.dataset.lightbox || "照片";
    title.textContent = (link.dataset.lightbox || "照片") + "（第 " + (index + 1) + " / " + links.length + " 张）";
    if (!modalElement.classList.contains("show")) modal.show();
    return true;
  }
  function stepCylinder(step) {
    // A page that draws one cylinder at a time (逐只审核) moves itself and says so.
    const moved = new CustomEvent("lightbox:cylinder", { detail: { step: step }, cancelable: true });
    if (!group.dispatchEvent(moved)) {
      window.requestAnimationFrame(function () { show(group, 0); });
      return;
    }
    const all = groups();
    for (let i = all.indexOf(group) + step; i >= 0 && i < all.length; i += step) {
      if (show(all[i], 0)) return;
    }
  }
  function returnFocus() {
    if (!group) return;
    const target = group.hasAttribute("tabindex") ? group : (group.closest("[tabindex]") || linksOf(group)[0]);
    if (target) target.focus();
  }
  modalElement.addEventListener("hidden.bs.modal", returnFocus);

  document.addEventListener("click", function (event) {
    const link = event.target.closest("a.photo-link");
    if (!link) return;
    event.preventDefault();
    const owner = link.closest("[data-photo-group]");
    if (owner) show(owner, linksOf(owner).indexOf(link));
    else {
      group = null;
      image.src = link.href;
      image.alt = link.dataset.lightbox || "照片";
      title.textContent = link.dataset.lightbox || "照片";
      modal.show();
    }
  });

  document.addEventListener("keydown", function (event) {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const open = modalElement.classList.contains("show");
    const key = event.key.toLowerCase();
    if (!open) {
      if (event.target.matches("input, textarea, select")) return;
      const nth = key === "o" ? 0 : "1234".indexOf(key);
      if (nth < 0) return;
      const owner = currentGroup();
      if (owner && show(owner, nth)) event.preventDefault();
      return;
    }
    let handled = true;
    if (key === "escape") modal.hide();  // whatever has the focus inside the viewer
    else if (key === "arrowright") show(group, index + 1);
    else if (key === "arrowleft") show(group, index - 1);
    else if (key === "arrowdown" || key === "j" || key === "pagedown") { if (group) stepCylinder(1); }
    else if (key === "arrowup" || key === "k" || key === "pageup") { if (group) stepCylinder(-1); }
    else if (key === "+" || key === "=") scale = Math.min(scale * 1.25, 6);
    else if (key === "-" || key === "_") scale = Math.max(scale / 1.25, 0.25);
    else if (key === "r") rotation = (rotation + 90) % 360;
    else if (key === "0") { scale = 1; rotation = 0; }
    else if ("1234".indexOf(key) >= 0 && key !== "") { if (group) show(group, Number(key) - 1); }
    else handled = false;
    if (handled) { apply(); event.preventDefault(); event.stopPropagation(); }
  }, true);

  modalElement.addEventListener("click", function (event) {
    const button = event.target.closest("[data-lightbox-action]");
    if (!button) return;
    const action = button.dataset.lightboxAction;
    if (action === "zoom-in") scale = Math.min(scale * 1.25, 6);
    if (action === "zoom-out") scale = Math.max(scale / 1.25, 0.25);
    if (action === "rotate") rotation = (rotation + 90) % 360;
    if (action === "reset") { scale = 1; rotation = 0; }
    if (action === "prev") show(group, index - 1);
    if (action === "next") show(group, index + 1);
    apply();
  });
})();
