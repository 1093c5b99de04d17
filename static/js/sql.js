// The SQL page: insert a product key or a column from the browser at the cursor, filter
// the browser, and run with Ctrl+Enter (or Cmd+Enter). The page works without it.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("[data-sql-form]");
  const editor = document.querySelector("[data-sql-editor]");
  if (!form || !editor) return;
  document.querySelectorAll("[data-sql-insert]").forEach((button) => {
    button.addEventListener("click", (event) => {
      event.preventDefault();
      const text = button.dataset.sqlInsert;
      const start = editor.selectionStart ?? editor.value.length;
      const end = editor.selectionEnd ?? start;
      editor.setRangeText(text, start, end, "end");
      editor.focus();
    });
  });
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      form.querySelector('button[value="run"]').click();
    }
  });
  const filter = document.querySelector("[data-sql-browser-filter]");
  if (filter) {
    filter.addEventListener("input", () => {
      const words = filter.value.trim().toLowerCase();
      document.querySelectorAll("[data-sql-product]").forEach((item) => {
        item.hidden = words !== "" && !item.dataset.sqlProduct.toLowerCase().includes(words);
      });
    });
  }
});
