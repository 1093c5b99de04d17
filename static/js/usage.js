// Usage charts (product Usage tab, usage dashboard), drawn with plotly.js from our own
// static files. The data comes from <script type="application/json"> blocks written by
// Django's json_script; no inline code, so the pages keep a strict Content Security Policy.
(function () {
  "use strict";

  var COLORS = ["#3347d1", "#1d7a46", "#b45309", "#7c3aed", "#0e7490", "#b42323", "#64748b", "#be185d"];
  var CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"] };
  var FONT = { family: "system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12 };

  function readData(id) {
    var node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function baseLayout() {
    return {
      height: 300,
      margin: { l: 48, r: 16, t: 8, b: 40 },
      paper_bgcolor: "rgba(0,0,0,0)",
      plot_bgcolor: "#ffffff",
      font: FONT,
      showlegend: true,
      legend: { orientation: "h", y: -0.2 },
      hovermode: "x unified"
    };
  }

  // Per day: data reads stacked by channel (bars) and page views (a line).
  function drawDaily(element, data) {
    var traces = data.reads.map(function (series, index) {
      return {
        type: "bar",
        name: series.label + " reads",
        x: data.days,
        y: series.values,
        marker: { color: COLORS[(index + 1) % COLORS.length] },
        hovertemplate: "%{y}"
      };
    });
    traces.push({
      type: "scatter",
      mode: "lines",
      name: "Page views",
      x: data.days,
      y: data.views,
      line: { color: COLORS[0], width: 2 },
      hovertemplate: "%{y}"
    });
    var layout = baseLayout();
    layout.barmode = "stack";
    layout.xaxis = { type: "date", tickformat: "%d %b", gridcolor: "#eef0f6", linecolor: "#c6cbd8" };
    layout.yaxis = { title: { text: "per day" }, rangemode: "tozero", gridcolor: "#eef0f6", zeroline: false };
    window.Plotly.newPlot(element, traces, layout, CONFIG);
  }

  // The most used products: reads and page views, one horizontal bar each.
  function drawBars(element, data) {
    var traces = [
      { type: "bar", orientation: "h", name: "Data reads", y: data.products, x: data.reads, marker: { color: COLORS[1] } },
      { type: "bar", orientation: "h", name: "Page views", y: data.products, x: data.views, marker: { color: COLORS[0] } }
    ];
    var layout = baseLayout();
    layout.barmode = "stack";
    layout.height = Math.max(180, 36 * data.products.length + 70);
    layout.margin = { l: 160, r: 16, t: 8, b: 40 };
    layout.hovermode = "y unified";
    layout.yaxis = { automargin: true };
    layout.xaxis = { rangemode: "tozero", gridcolor: "#eef0f6" };
    window.Plotly.newPlot(element, traces, layout, CONFIG);
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.Plotly) {
      return;
    }
    document.querySelectorAll("[data-usage-chart]").forEach(function (element) {
      var data = readData(element.getAttribute("data-usage-chart"));
      if (data) {
        drawDaily(element, data);
      }
    });
    document.querySelectorAll("[data-usage-bars]").forEach(function (element) {
      var data = readData(element.getAttribute("data-usage-bars"));
      if (data) {
        drawBars(element, data);
      }
    });
  });
})();
