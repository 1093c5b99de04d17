// Scheduled exports: the cron helper of the schedule form. Works without it (the server
// validates the expression and names what is wrong).
(function () {
  "use strict";

  // A preset button fills the cron field, then asks for the next run times.
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-cron-preset]");
    if (!button) {
      return;
    }
    var form = button.closest("form");
    var input = form && form.querySelector('input[name="cron"]');
    if (!input) {
      return;
    }
    input.value = button.getAttribute("data-cron-preset");
    input.focus();
    document.body.dispatchEvent(new CustomEvent("cron-preset"));
  });

  // The preview answers 400 with the reason for an expression that does not parse:
  // show that reason rather than keep the last good preview.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (target && target.id === "cron-preview" && event.detail.xhr.status === 400) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });
})();

// The run history chart: plotly.js (our static copy) draws the figure the page embeds
// as JSON (json_script), so no inline script is needed.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("[data-chart-source]").forEach(function (target) {
      var source = document.getElementById(target.getAttribute("data-chart-source"));
      if (!source || !window.Plotly) {
        return;
      }
      var figure = JSON.parse(source.textContent);
      window.Plotly.newPlot(target, figure.data, figure.layout, figure.config);
    });
  });
})();
