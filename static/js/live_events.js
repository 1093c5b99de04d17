/* Live updates of a signed-in person's pages from the portal's events
   (GET /api/v1/events/stream/, Server-Sent Events; docs/events.md):

   - any event about access, incidents or announcements: the top bar's badges (work inbox,
     notifications) fetch their count again, as their own 60 s polling does;
   - on a product's pages, an event about that product (check runs, incidents, SLOs,
     announcements): the page's check cards, incidents, notices and trust badge are fetched again and
     swapped in place (the same fragments the server renders; htmx wires them again).

   One EventSource per page. It resumes with Last-Event-ID when the server ends a
   connection; when the server is full (503) it tries again a minute later, and the
   badges keep their slow polling meanwhile. Nothing here is needed for the pages to work. */
(function () {
  "use strict";
  if (!window.EventSource || !window.fetch || !window.DOMParser) return;

  var STREAM_URL = "/api/v1/events/stream/";
  var REOPEN_AFTER_MS = 60000;
  var BADGE_TYPES = [
    "portal.access.requested", "portal.access.granted", "portal.access.denied",
    "portal.access.revoked", "portal.access.expired", "portal.incident.opened",
    "portal.incident.resolved", "portal.announcement.posted"
  ];
  var PRODUCT_TYPES = [
    "portal.check_run.started", "portal.check_run.finished", "portal.incident.opened",
    "portal.incident.resolved", "portal.slo.breached", "portal.announcement.posted"
  ];
  var keyElement = document.querySelector(".product-header code.key");
  var productKey = keyElement ? keyElement.textContent.trim() : "";
  var source = null;
  var timers = {};

  function soon(name, work) {  // several events in a burst: one refresh
    clearTimeout(timers[name]);
    timers[name] = setTimeout(work, 250);
  }

  function refreshBadges() {
    if (!window.htmx) return;
    document.querySelectorAll(".notif-badge[hx-get]").forEach(function (badge) {
      window.htmx.ajax("GET", badge.getAttribute("hx-get"), { target: badge, swap: "innerHTML" });
    });
  }

  function swapIn(fresh, old) {
    if (fresh && old) {
      old.replaceWith(fresh);
    } else if (old) {
      old.remove();
    }
    if (fresh && window.htmx) window.htmx.process(fresh);
  }

  function refreshProductParts() {
    fetch(window.location.href, { credentials: "same-origin", headers: { "X-Live-Refresh": "1" } })
      .then(function (response) { return response.ok ? response.text() : null; })
      .then(function (html) {
        if (!html) return;
        var doc = new DOMParser().parseFromString(html, "text/html");
        // The check cards and, on the trust tab, its incidents: what a check run changes.
        document.querySelectorAll("section.port-checks[id], section#incidents").forEach(function (old) {
          // A card following its own run (polling) reloads the whole page when the run has
          // settled, charts and incidents included: swapping it would stop that.
          if (old.hasAttribute("hx-trigger")) return;
          var fresh = doc.getElementById(old.id);
          if (fresh) swapIn(document.importNode(fresh, true), old);
        });
        var trust = doc.querySelector(".trust-link");
        if (trust) swapIn(document.importNode(trust, true), document.querySelector(".trust-link"));
        var notices = doc.querySelector("[data-product-notices]");
        var oldNotices = document.querySelector("[data-product-notices]");
        var tabs = document.querySelector("nav.tabs");
        if (notices && !oldNotices && tabs) {
          var added = document.importNode(notices, true);
          tabs.parentNode.insertBefore(added, tabs);
          if (window.htmx) window.htmx.process(added);
        } else {
          swapIn(notices ? document.importNode(notices, true) : null, oldNotices);
        }
        document.dispatchEvent(new CustomEvent("portal:live-refreshed"));
      })
      .catch(function () { /* the next event or a reload brings the page up to date */ });
  }

  function onBadgeEvent() { soon("badges", refreshBadges); }

  function onProductEvent(message) {
    var envelope;
    try { envelope = JSON.parse(message.data); } catch (error) { return; }
    if (productKey && envelope.subject === productKey) soon("product", refreshProductParts);
  }

  function open() {
    source = new EventSource(STREAM_URL);
    BADGE_TYPES.forEach(function (type) { source.addEventListener(type, onBadgeEvent); });
    PRODUCT_TYPES.forEach(function (type) { source.addEventListener(type, onProductEvent); });
    source.addEventListener("error", function () {
      // CLOSED: refused (503 when the server is full, 401 after signing out); CONNECTING:
      // the browser reconnects by itself after the server's `retry:` hint.
      if (source.readyState === EventSource.CLOSED) {
        source = null;
        setTimeout(open, REOPEN_AFTER_MS);
      }
    });
    document.documentElement.dataset.liveEvents = "open";
  }

  window.addEventListener("pagehide", function () {
    if (source) source.close();
    source = null;
  });
  window.addEventListener("pageshow", function (event) {  // back from the page cache
    if (event.persisted && !source) open();
  });
  open();
})();
