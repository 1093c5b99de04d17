// The SQL page: insert a product key or a column from the browser at the cursor, filter
// the browser, complete product keys and column names while typing (Tab or Enter takes
// the highlighted one, arrows move, Escape closes), and run with Ctrl+Enter (Cmd+Enter).
// The page works without it.
document.addEventListener("DOMContentLoaded", () => {
  const form = document.querySelector("[data-sql-form]");
  const editor = document.querySelector("[data-sql-editor]");
  if (!form || !editor) return;

  const insert = (text, start, end) => {
    editor.setRangeText(text, start, end, "end");
    editor.focus();
  };
  document.querySelectorAll("[data-sql-insert]").forEach((button) => {
    button.addEventListener("click", (event) => {
      event.preventDefault();
      const start = editor.selectionStart ?? editor.value.length;
      insert(button.dataset.sqlInsert, start, editor.selectionEnd ?? start);
    });
  });

  // Completion: every key and column the browser lists, once each.
  const words = [...new Set([...document.querySelectorAll("[data-sql-insert]")].map((b) => b.dataset.sqlInsert))];
  const list = document.createElement("ul");
  list.className = "sql-completions";
  list.id = "sql-completions";
  list.setAttribute("role", "listbox");
  list.hidden = true;
  editor.after(list);
  editor.setAttribute("aria-controls", list.id);
  let choices = [];
  let chosen = 0;
  let wordStart = 0;

  const close = () => {
    list.hidden = true;
    choices = [];
  };
  const show = () => {
    list.replaceChildren(
      ...choices.map((word, index) => {
        const item = document.createElement("li");
        item.textContent = word;
        item.setAttribute("role", "option");
        item.setAttribute("aria-selected", index === chosen ? "true" : "false");
        item.addEventListener("mousedown", (event) => {
          event.preventDefault();
          chosen = index;
          accept();
        });
        return item;
      })
    );
    list.hidden = choices.length === 0;
  };
  const accept = () => {
    insert(choices[chosen], wordStart, editor.selectionStart);
    close();
  };
  editor.addEventListener("input", () => {
    const before = editor.value.slice(0, editor.selectionStart);
    const match = before.match(/[A-Za-z_][\w.-]*$/);
    if (!match || match[0].length < 2) return close();
    const typed = match[0].toLowerCase();
    wordStart = editor.selectionStart - match[0].length;
    choices = words.filter((word) => word.toLowerCase().startsWith(typed) && word.toLowerCase() !== typed).slice(0, 8);
    chosen = 0;
    show();
  });
  editor.addEventListener("blur", close);
  editor.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      close();
      form.querySelector('button[value="run"]').click();
      return;
    }
    if (list.hidden || !choices.length) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      chosen = (chosen + (event.key === "ArrowDown" ? 1 : choices.length - 1)) % choices.length;
      show();
    } else if (event.key === "Tab" || event.key === "Enter") {
      event.preventDefault();
      accept();
    } else if (event.key === "Escape") {
      close();
    }
  });

  const filter = document.querySelector("[data-sql-browser-filter]");
  if (filter) {
    filter.addEventListener("input", () => {
      const text = filter.value.trim().toLowerCase();
      document.querySelectorAll("[data-sql-product]").forEach((item) => {
        item.hidden = text !== "" && !item.dataset.sqlProduct.toLowerCase().includes(text);
      });
    });
  }
});
