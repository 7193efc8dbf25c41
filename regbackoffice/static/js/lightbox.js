// Photo lightbox: click a thumbnail to see the full image; zoom and rotate it.
(function () {
  "use strict";
  const modalElement = document.getElementById("lightbox");
  if (!modalElement) return;
  const image = document.getElementById("lightbox-image");
  const title = document.getElementById("lightbox-title");
  const modal = new bootstrap.Modal(modalElement);
  let scale = 1;
  let rotation = 0;

  function apply() {
    image.style.transform = "scale(" + scale + ") rotate(" + rotation + "deg)";
  }

  document.addEventListener("click", function (event) {
    const link = event.target.closest("a.photo-link");
    if (!link) return;
    event.preventDefault();
    scale = 1;
    rotation = 0;
    apply();
    image.src = link.href;
    image.alt = link.dataset.lightbox || "照片";
    title.textContent = link.dataset.lightbox || "照片";
    modal.show();
  });

  modalElement.addEventListener("click", function (event) {
    const button = event.target.closest("[data-lightbox-action]");
    if (!button) return;
    const action = button.dataset.lightboxAction;
    if (action === "zoom-in") scale = Math.min(scale * 1.25, 6);
    if (action === "zoom-out") scale = Math.max(scale / 1.25, 0.25);
    if (action === "rotate") rotation = (rotation + 90) % 360;
    if (action === "reset") { scale = 1; rotation = 0; }
    apply();
  });
})();
