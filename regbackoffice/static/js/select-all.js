// A header checkbox with data-select-all="NAME" ticks or clears every checkbox named NAME in
// its form (the 气瓶档案 list's selection of this page's cylinders).
(function () {
  "use strict";
  document.querySelectorAll("[data-select-all]").forEach(function (toggle) {
    const form = toggle.form;
    if (!form) { return; }
    const boxes = function () {
      return form.querySelectorAll('input[type="checkbox"][name="' + toggle.dataset.selectAll + '"]');
    };
    toggle.addEventListener("change", function () {
      boxes().forEach(function (box) { box.checked = toggle.checked; });
    });
    form.addEventListener("change", function (event) {
      if (event.target === toggle) { return; }
      const all = Array.from(boxes());
      const ticked = all.filter(function (box) { return box.checked; }).length;
      toggle.checked = all.length > 0 && ticked === all.length;
      toggle.indeterminate = ticked > 0 && ticked < all.length;
    });
  });
}());
