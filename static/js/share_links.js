// Share links: the "Copy link" button of the page that shows a new link once.
(function () {
  "use strict";

  function announce(targetId, text) {
    var status = document.querySelector('[data-copy-status-for="' + targetId + '"]');
    if (status) {
      status.textContent = text;
    }
  }

  function copyFallback(input) {
    input.focus();
    input.select();
    try {
      return document.execCommand("copy");
    } catch (error) {
      return false;
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy-target]");
    if (!button) {
      return;
    }
    var targetId = button.getAttribute("data-copy-target");
    var input = document.getElementById(targetId);
    if (!input) {
      return;
    }
    var done = function () {
      button.textContent = button.getAttribute("data-copied-text") || "Copied";
      announce(targetId, "The link is on your clipboard.");
    };
    var failed = function () {
      input.focus();
      input.select();
      announce(targetId, "Copying is blocked here: the link is selected, press Ctrl+C (or ⌘C).");
    };
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(input.value).then(done, function () {
        if (copyFallback(input)) {
          done();
        } else {
          failed();
        }
      });
    } else if (copyFallback(input)) {
      done();
    } else {
      failed();
    }
  });

  // Selecting the whole link on focus makes copying by hand easy too.
  document.addEventListener("focusin", function (event) {
    if (event.target.classList && event.target.classList.contains("share-url")) {
      event.target.select();
    }
  });
})();
