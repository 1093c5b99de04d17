// Copy buttons: <button data-copy-from="ID"> copies the value of the input or textarea
// with that id, or the text of any other element (a <pre> snippet), and says so in the
// element marked data-copy-status-for="ID". Falls back to selecting the text when the
// browser refuses the clipboard (plain http, permissions), so Ctrl+C still works.
(function () {
  "use strict";

  function textOf(element) {
    if ("value" in element && typeof element.value === "string") {
      return element.value;
    }
    return element.textContent;
  }

  function select(element) {
    if (typeof element.select === "function") {
      element.focus();
      element.select();
      return;
    }
    var range = document.createRange();
    range.selectNodeContents(element);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function copyBySelection(element) {
    select(element);
    try {
      return document.execCommand("copy");
    } catch (error) {
      return false;
    }
  }

  function announce(id, text) {
    var status = document.querySelector('[data-copy-status-for="' + id + '"]');
    if (status) {
      status.textContent = text;
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy-from]");
    if (!button) {
      return;
    }
    var id = button.getAttribute("data-copy-from");
    var source = document.getElementById(id);
    if (!source) {
      return;
    }
    var label = button.getAttribute("data-copy-label") || button.textContent;
    button.setAttribute("data-copy-label", label);
    var done = function () {
      button.textContent = "Copied";
      announce(id, button.getAttribute("data-copied-message") || "Copied to your clipboard.");
      window.setTimeout(function () {
        button.textContent = label;
      }, 2500);
    };
    var failed = function () {
      select(source);
      announce(id, "Copying is blocked here: the text is selected, press Ctrl+C (or ⌘C).");
    };
    var text = textOf(source);
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(done, function () {
        if (copyBySelection(source)) {
          done();
        } else {
          failed();
        }
      });
    } else if (copyBySelection(source)) {
      done();
    } else {
      failed();
    }
  });
})();
