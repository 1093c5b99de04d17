// The new-embed form: show the fields of the chosen source only, a metric's (grain,
// dimension) or a port's (its columns): data-show-when="metric|port". A field with an
// error stays shown. Without this script every field shows, and the form still works.
(function () {
  "use strict";

  function showSourceFields(form) {
    var source = form.querySelector('select[name="source"]');
    if (!source) return;
    var kind = source.value.indexOf("metric:") === 0 ? "metric" : "port";
    form.querySelectorAll("[data-show-when]").forEach(function (field) {
      var errored = field.classList.contains("has-error");
      field.hidden = !errored && field.getAttribute("data-show-when") !== kind;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-embed-form]").forEach(function (form) {
      showSourceFields(form);
      form.addEventListener("change", function (event) {
        if (event.target.name === "source") {
          showSourceFields(form);
        }
      });
    });
  });
})();
