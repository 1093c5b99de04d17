// The grants page: one box ticks every grant on the page, and the revoke button says
// how many are ticked. Without JavaScript the boxes are ticked one by one.
(function () {
  "use strict";
  function init() {
    var form = document.getElementById("revoke-selected");
    if (!form) return;
    var all = form.querySelector("[data-select-all]");
    var boxes = Array.prototype.slice.call(form.querySelectorAll('input[name="grants"]'));
    var button = form.querySelector("[data-selected-label]");
    function update() {
      var ticked = boxes.filter(function (box) { return box.checked; }).length;
      if (button) {
        var label = button.getAttribute("data-selected-label");
        button.textContent = ticked ? label + " (" + ticked + ")" : label;
      }
      if (all) {
        all.checked = ticked > 0 && ticked === boxes.length;
        all.indeterminate = ticked > 0 && ticked < boxes.length;
      }
    }
    if (all) {
      all.addEventListener("change", function () {
        boxes.forEach(function (box) { box.checked = all.checked; });
        update();
      });
    }
    boxes.forEach(function (box) { box.addEventListener("change", update); });
    update();
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
