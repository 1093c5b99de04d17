// Feedback, announcements and notifications: small progressive enhancements; every page
// works without them.
(function () {
  "use strict";

  // A refused reply (400: empty or too long; 403: a closed thread) answers the
  // conversation block with the message: show it instead of dropping it, which is what
  // htmx does with error responses by default.
  document.addEventListener("htmx:beforeSwap", function (event) {
    var status = event.detail.xhr.status;
    var target = event.detail.target;
    if ((status === 400 || status === 403) && target && target.closest &&
        target.closest("[data-feedback-conversation]")) {
      event.detail.shouldSwap = true;
      event.detail.isError = false;
    }
  });

  // Announcement form: the replacement product is for deprecations only.
  function syncAnnouncementKind(form) {
    var checked = form.querySelector('input[name="kind"]:checked');
    var kind = checked ? checked.value : "";
    form.querySelectorAll("[data-show-for-announcement]").forEach(function (section) {
      section.hidden = kind !== "" && section.getAttribute("data-show-for-announcement") !== kind;
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-announcement-form]").forEach(function (form) {
      syncAnnouncementKind(form);
      form.addEventListener("change", function (event) {
        if (event.target.name === "kind") {
          syncAnnouncementKind(form);
        }
      });
    });
  });
})();
