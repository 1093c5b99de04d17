// Upload pages: refuse a file above the size limit before sending it, and say that the
// upload is under way while the browser sends it and the portal checks it.
(function () {
  "use strict";

  document.addEventListener("submit", function (event) {
    var form = event.target.closest && event.target.closest("form[data-port-upload]");
    if (!form) {
      return;
    }
    var input = form.querySelector('input[type="file"]');
    var sizeError = form.querySelector("[data-upload-size-error]");
    var maxBytes = parseInt(form.getAttribute("data-max-bytes"), 10);
    var file = input && input.files && input.files[0];
    if (file && maxBytes && file.size > maxBytes) {
      event.preventDefault();
      if (sizeError) {
        sizeError.textContent =
          "This file is larger than " + form.getAttribute("data-max-size") +
          ", the most the portal takes in one upload. Split it, or write it as Parquet.";
        sizeError.hidden = false;
      }
      input.focus();
      return;
    }
    if (sizeError) {
      sizeError.hidden = true;
    }
    var progress = form.querySelector("[data-upload-progress]");
    if (progress) {
      progress.hidden = false;
    }
    var button = form.querySelector("[data-upload-submit]");
    if (button) {
      // After this submit has started: a disabled button would not be submitted.
      window.setTimeout(function () {
        button.disabled = true;
      }, 0);
    }
  });
})();
