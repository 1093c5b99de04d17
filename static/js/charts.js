// Draws every plotly chart of the page: <div data-plotly-figure="ID"> with its figure in
// <script type="application/json" id="ID"> (portal/charts.py). No inline script, so the
// Content Security Policy can forbid them; plotly.js comes from our static files.
(function () {
  "use strict";

  function draw(root) {
    if (typeof window.Plotly === "undefined") {
      return;
    }
    root.querySelectorAll("[data-plotly-figure]:not([data-plotly-drawn])").forEach(function (el) {
      var source = document.getElementById(el.getAttribute("data-plotly-figure"));
      if (!source) {
        return;
      }
      var figure = JSON.parse(source.textContent);
      el.setAttribute("data-plotly-drawn", "1");
      window.Plotly.newPlot(el, figure.data, figure.layout, figure.config);
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    draw(document);
  });
  // Content swapped in by htmx (progress panels) may bring charts of its own.
  document.addEventListener("htmx:load", function (event) {
    draw(event.target || document);
  });
})();
