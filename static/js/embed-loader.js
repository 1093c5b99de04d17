/* One line on a host page puts an embed there:
   <script src="https://PORTAL/static/js/embed-loader.js" data-embed="https://PORTAL/embed/ID/" data-token="TOKEN" async></script>
   It adds the embed's iframe after itself, with the token in the URL fragment (never sent
   to a server), and follows the height the embed reports. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.dataset.embed) return;
  var src = new URL(script.dataset.embed, script.src);
  var frame = document.createElement("iframe");
  frame.src = src.href.split("#")[0] + "#token=" + encodeURIComponent(script.dataset.token || "");
  frame.title = script.dataset.title || "Embedded chart";
  frame.width = script.dataset.width || "100%";
  frame.height = script.dataset.height || "320";
  frame.setAttribute("frameborder", "0");
  frame.setAttribute("loading", "lazy");
  frame.setAttribute("referrerpolicy", "origin");
  script.insertAdjacentElement("afterend", frame);
  window.addEventListener("message", function (event) {
    if (event.origin !== src.origin || event.source !== frame.contentWindow) return;
    var data = event.data || {};
    if (data.type === "portal-embed:size" && typeof data.height === "number") {
      frame.height = String(Math.min(Math.max(Math.round(data.height), 80), 4000));
    }
  });
})();
