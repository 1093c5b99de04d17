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

  // Close the user menu when clicking elsewhere.
  document.addEventListener("click", function (event) {
    document.querySelectorAll("details.user-menu[open]").forEach(function (menu) {
      if (!menu.contains(event.target)) {
        menu.removeAttribute("open");
      }
    });
  });
})();
