/* The embed page (sharing/embeds/public_views.py): reads the token from the URL fragment,
   calls the data endpoint with it, draws the answer. Runs before plotly.js has loaded:
   the data call starts at once, a KPI tile or table is plain HTML, and a chart waits for
   plotly only when it draws. */
(function () {
  "use strict";
  var root = document.getElementById("embed");
  if (!root) return;
  var token = new URLSearchParams(location.hash.slice(1)).get("token") || "";
  var parentOrigin = "";
  if (location.ancestorOrigins && location.ancestorOrigins.length) {
    parentOrigin = location.ancestorOrigins[0];
  } else if (document.referrer) {
    try { parentOrigin = new URL(document.referrer).origin; } catch (e) { parentOrigin = ""; }
  }
  var headers = {"Authorization": "Bearer " + token, "X-Embed-Origin": parentOrigin};
  var body = document.getElementById("embed-body");
  var notices = document.getElementById("embed-notices");
  var foot = document.getElementById("embed-foot");
  var csv = document.getElementById("embed-csv");
  var numbers = new Intl.NumberFormat(undefined, {maximumFractionDigits: 2});

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function show(value) {
    if (value === null || value === undefined) return "–";
    return typeof value === "number" ? numbers.format(value) : String(value);
  }
  function when(iso) {
    if (!iso) return "";
    var date = new Date(iso);
    return isNaN(date) ? iso : date.toLocaleString();
  }
  function resize() {
    if (window.parent === window) return;
    window.parent.postMessage(
      {type: "portal-embed:size", height: document.documentElement.scrollHeight},
      parentOrigin || "*"
    );
  }
  function fail(message) {
    body.replaceChildren(el("p", "embed-error", message));
    root.setAttribute("aria-busy", "false");
    resize();
  }
  function column(data, name) {
    var index = data.columns.indexOf(name);
    return data.rows.map(function (row) { return row[index]; });
  }
  function sparkline(values) {
    var numbersOnly = values.filter(function (v) { return typeof v === "number"; });
    if (numbersOnly.length < 2) return null;
    var min = Math.min.apply(null, numbersOnly), max = Math.max.apply(null, numbersOnly);
    var span = max - min || 1, step = 100 / (values.length - 1);
    var points = values.map(function (v, i) {
      var y = typeof v === "number" ? 28 - ((v - min) / span) * 26 : 28;
      return (i * step).toFixed(2) + "," + y.toFixed(2);
    }).join(" ");
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 100 30");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("class", "embed-spark");
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "Trend of " + values.length + " periods");
    var line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points);
    svg.appendChild(line);
    return svg;
  }
  function kpi(data) {
    var values = column(data, "value");
    var tile = el("div", "embed-kpi");
    tile.appendChild(el("p", "embed-kpi-value", show(values.length ? values[values.length - 1] : null)));
    if (data.embed.x === "period" && data.rows.length) {
      var periods = column(data, "period");
      tile.appendChild(el("p", "embed-kpi-period", String(periods[periods.length - 1]).slice(0, 10)));
      var spark = sparkline(values);
      if (spark) tile.appendChild(spark);
    }
    body.replaceChildren(tile);
  }
  function table(data) {
    var wrap = el("div", "embed-table-wrap");
    var tableNode = el("table", "embed-table");
    var head = tableNode.createTHead().insertRow();
    data.columns.forEach(function (name) {
      var th = el("th", "", name);
      th.setAttribute("scope", "col");
      head.appendChild(th);
    });
    var rows = tableNode.createTBody();
    data.rows.forEach(function (row) {
      var tr = rows.insertRow();
      row.forEach(function (value) {
        tr.appendChild(el("td", typeof value === "number" ? "num" : "", show(value)));
      });
    });
    if (!data.rows.length) body.replaceChildren(el("p", "embed-empty", "No data to show."));
    else { wrap.appendChild(tableNode); body.replaceChildren(wrap); }
  }
  function chart(data) {
    if (!data.rows.length) { body.replaceChildren(el("p", "embed-empty", "No data to show.")); return; }
    var x = column(data, data.embed.x);
    var traces = data.embed.y.map(function (name) {
      var trace = {x: x, y: column(data, name), name: name, type: "scatter", mode: "lines"};
      if (data.embed.chart === "bar") { trace.type = "bar"; delete trace.mode; }
      if (data.embed.chart === "area") { trace.fill = "tozeroy"; }
      return trace;
    });
    var target = el("div", "embed-chart");
    target.setAttribute("role", "img");
    target.setAttribute("aria-label", data.embed.label);
    body.replaceChildren(target);
    function draw() {
      window.Plotly.newPlot(target, traces, {
        margin: {l: 56, r: 12, t: 8, b: 44}, showlegend: traces.length > 1,
        xaxis: {title: {text: data.embed.x === "period" ? "" : data.embed.x}, automargin: true},
        yaxis: {title: {text: traces.length === 1 ? data.embed.label : ""}, automargin: true},
        paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)", autosize: true
      }, {displayModeBar: false, responsive: true}).then(resize);
    }
    if (window.Plotly) draw();
    else window.addEventListener("load", draw, {once: true});
  }
  function render(data) {
    notices.replaceChildren();
    data.notices.forEach(function (notice) {
      var p = el("p", "embed-notice embed-notice-" + notice.kind, notice.message);
      if (notice.since) p.appendChild(el("span", "embed-since", " Since " + when(notice.since) + "."));
      notices.appendChild(p);
    });
    if (data.embed.chart === "kpi") kpi(data);
    else if (data.embed.chart === "table") table(data);
    else chart(data);
    var bits = [];
    if (data.last_good) bits.push("Showing the last values served without a problem, from " + when(data.last_good) + ".");
    if (data.freshness && data.freshness.newest_at) bits.push("Data as of " + when(data.freshness.newest_at) + ".");
    else bits.push("Read " + when(data.as_of) + ".");
    if (data.truncated) bits.push("Only the first " + data.rows.length + " rows.");
    foot.textContent = bits.join(" ");
    if (data.embed.csv) csv.hidden = false;
    root.setAttribute("aria-busy", "false");
    resize();
  }
  function call(format) {
    var url = root.dataset.url + (format ? "?format=" + format : "");
    return fetch(url, {headers: headers, cache: "no-store", credentials: "omit"}).then(function (response) {
      if (!response.ok) {
        return response.json().catch(function () { return {}; }).then(function (problem) {
          throw new Error(problem.detail || ("The embed could not load (" + response.status + ")."));
        });
      }
      return format === "csv" ? response.blob() : response.json();
    });
  }
  csv.addEventListener("click", function (event) {
    event.preventDefault();
    call("csv").then(function (blob) {
      var link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = "data.csv";
      document.body.appendChild(link);
      link.click();
      link.remove();
    }).catch(function (error) { fail(error.message); });
  });
  if (!token) { fail("This embed needs a token: its host page adds #token=... to the address."); return; }
  call("").then(render).catch(function (error) { fail(error.message); });
})();
