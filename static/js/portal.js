// Small progressive enhancements; every page works without them.
(function () {
  "use strict";

  // <form data-confirm="…">: ask before submitting a destructive action.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
    }
  }, true);

  // Output port form: show the fields of the chosen kind (table or file) only.
  function syncPortKind(form) {
    var checked = form.querySelector('input[name="kind"]:checked');
    var kind = checked ? checked.value : "";
    form.querySelectorAll("[data-show-when-kind]").forEach(function (section) {
      section.hidden = kind !== "" && section.getAttribute("data-show-when-kind") !== kind;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-port-form]").forEach(function (form) {
      syncPortKind(form);
      form.addEventListener("change", function (event) {
        if (event.target.name === "kind") {
          syncPortKind(form);
        }
      });
    });
  });

  // Sync form: the fields of the chosen source only, a metric's (its grouping, its
  // period and value) or a port's (its columns and key): data-show-when="metric|port".
  function syncSource(form) {
    var source = form.querySelector('select[name="port"]');
    if (!source) return;
    var kind = source.value.indexOf("metric:") === 0 ? "metric" : "port";
    form.querySelectorAll("[data-show-when]").forEach(function (field) {
      field.hidden = field.getAttribute("data-show-when") !== kind;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-sync-form]").forEach(function (form) {
      syncSource(form);
      form.addEventListener("change", function (event) {
        if (event.target.name === "port") {
          syncSource(form);
        }
      });
    });
  });

  // Check form: show the fields of the chosen kind only (names in data-show-for-kinds).
  function syncCheckKind(form) {
    var select = form.querySelector("select[data-check-kind]");
    var kind = select ? select.value : "";
    form.querySelectorAll("[data-show-for-kinds]").forEach(function (section) {
      var kinds = section.getAttribute("data-show-for-kinds").split(" ");
      section.hidden = kind !== "" && kinds.indexOf(kind) === -1;
    });
  }

  // SLO form: each threshold is for its kinds only (data-show-for-slo: kinds, spaces between).
  function syncSLOKind(form) {
    var checked = form.querySelector('input[name="kind"]:checked');
    var kind = checked ? checked.value : "";
    form.querySelectorAll("[data-show-for-slo]").forEach(function (section) {
      var kinds = section.getAttribute("data-show-for-slo").split(" ");
      section.hidden = kind !== "" && kinds.indexOf(kind) === -1;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-check-form]").forEach(function (form) {
      syncCheckKind(form);
      form.addEventListener("change", function (event) {
        if (event.target.hasAttribute("data-check-kind")) {
          syncCheckKind(form);
        }
      });
    });
    document.querySelectorAll("form[data-slo-form]").forEach(function (form) {
      syncSLOKind(form);
      form.addEventListener("change", function (event) {
        if (event.target.name === "kind") {
          syncSLOKind(form);
        }
      });
    });
  });

  // Close the user menu when clicking elsewhere.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) {
        menu.removeAttribute("open");
      }
    });
  });

  // A box that scrolls sideways (a wide table, a code snippet) takes the keyboard focus,
  // so it can be scrolled without a mouse.
  var SCROLL_BOXES = ".table-wrap, .card > .table, .table-scroll, pre, .code-snippet, .tabs";

  function focusableScrollBoxes() {
    document.querySelectorAll(SCROLL_BOXES).forEach(function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1;
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.setAttribute("tabindex", "0");
        box.setAttribute("data-scroll-focus", "");
      } else if (!scrolls && box.hasAttribute("data-scroll-focus")) {
        box.removeAttribute("tabindex");
        box.removeAttribute("data-scroll-focus");
      }
    });
  }

  // Tabs wider than the screen: the current tab is scrolled into view.
  function revealCurrentTab() {
    document.querySelectorAll(".tabs").forEach(function (tabs) {
      var current = tabs.querySelector('[aria-current="page"]');
      if (current && tabs.scrollWidth > tabs.clientWidth) {
        tabs.scrollLeft = Math.max(0, current.offsetLeft - tabs.clientWidth / 2 + current.offsetWidth / 2);
      }
    });
  }

  document.addEventListener("DOMContentLoaded", revealCurrentTab);
  document.addEventListener("DOMContentLoaded", focusableScrollBoxes);
  window.addEventListener("load", focusableScrollBoxes);
  window.addEventListener("resize", focusableScrollBoxes);
  document.addEventListener("htmx:afterSettle", focusableScrollBoxes);

  // Phones: the menu button opens and closes the navigation (and search) of the top bar.
  function setMenuOpen(toggle, open) {
    var header = toggle.closest(".topbar");
    toggle.setAttribute("aria-expanded", open ? "true" : "false");
    if (header) {
      header.classList.toggle("is-open", open);
    }
  }

  document.addEventListener("click", function (event) {
    var toggle = event.target.closest && event.target.closest("[data-nav-toggle]");
    if (toggle) {
      setMenuOpen(toggle, toggle.getAttribute("aria-expanded") !== "true");
    }
  });

  // Escape closes the open menu and gives the focus back to its button.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Escape") {
      return;
    }
    document.querySelectorAll('[data-nav-toggle][aria-expanded="true"]').forEach(function (toggle) {
      setMenuOpen(toggle, false);
      toggle.focus();
    });
  });
})();
