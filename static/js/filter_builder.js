// The row-filter builder: conditions of column, operator and value(s), all of which must
// hold, written as JSON into the form's row-filter field (a textarea marked
// data-filter-builder="<config JSON>", see sharing.access.filters.filter_builder_config).
// The server parses and checks that JSON as before, so the page works without this file,
// and whatever the builder cannot show stays editable as JSON. No inline script or style:
// the config travels in a data attribute, visibility in the `hidden` attribute.
(function () {
  "use strict";

  var NO_VALUE = ["is null", "is not null"];
  var LISTS = ["in", "not in"];
  var OPERATORS = ["=", "!=", "<", "<=", ">", ">=", "in", "not in", "is null", "is not null"];
  // Numbers are typed in text fields (inputmode decimal), so what was typed stays as typed,
  // even when the server refuses it; dates and times use the browser's pickers.
  var INPUT_TYPES = { date: "date", timestamp: "datetime-local", time: "time" };
  var PICKER_FORMS = {
    date: /^\d{4}-\d{2}-\d{2}$/,
    timestamp: /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/,
    time: /^\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/,
  };
  var counter = 0;

  function make(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      if (attrs[name] === true) {
        node.setAttribute(name, "");
      } else if (attrs[name] !== false && attrs[name] !== null && attrs[name] !== undefined) {
        node.setAttribute(name, attrs[name]);
      }
    });
    if (text !== undefined) {
      node.textContent = text;
    }
    return node;
  }

  function labelled(control, text, id) {
    var wrap = make("span", { class: "filter-part" });
    control.id = id;
    wrap.appendChild(make("label", { for: id, class: "visually-hidden" }, text));
    wrap.appendChild(control);
    return wrap;
  }

  // JSON text -> the builder's conditions, or null when it cannot show them.
  function parseConditions(text) {
    if (!text || !text.trim()) {
      return [];
    }
    var raw;
    try {
      raw = JSON.parse(text);
    } catch (error) {
      return null;
    }
    if (raw && !Array.isArray(raw) && typeof raw === "object") {
      raw = [raw];
    }
    if (!Array.isArray(raw)) {
      return null;
    }
    var conditions = [];
    for (var index = 0; index < raw.length; index++) {
      var item = raw[index];
      if (!item || typeof item !== "object" || typeof item.column !== "string") {
        return null;
      }
      var op = String(item.op || "").trim().toLowerCase();
      if (OPERATORS.indexOf(op) < 0) {
        return null;
      }
      if (LISTS.indexOf(op) >= 0 && !Array.isArray(item.value)) {
        return null;
      }
      var next = raw[index + 1];
      if (op === ">=" && next && next.column === item.column && String(next.op).trim() === "<=") {
        conditions.push({ column: item.column, op: "between", value: item.value, value2: next.value });
        index++;
        continue;
      }
      conditions.push({ column: item.column, op: op, value: item.value });
    }
    return conditions;
  }

  function typed(kind, text) {
    if (typeof text !== "string") {
      return text;
    }
    var trimmed = text.trim();
    if (kind === "number" && /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(trimmed)) {
      var number = Number(trimmed);
      // Whole numbers beyond 2^53 stay text, so no digit is lost; the server reads them.
      return Number.isSafeInteger(number) || !/^[+-]?\d+$/.test(trimmed) ? number : trimmed;
    }
    if (kind === "boolean" && (trimmed === "true" || trimmed === "false")) {
      return trimmed === "true";
    }
    return kind === "text" || kind === "other" ? text : trimmed;
  }

  function shown(value) {
    if (value === null || value === undefined) {
      return "";
    }
    return typeof value === "string" ? value : JSON.stringify(value);
  }

  // "is BE or NL", "is neither BE nor NL", as the server says it (filter_in_words).
  function listWords(op, values) {
    var last = values.length > 1 ? " or " + values[values.length - 1] : "";
    var listed = (values.length > 1 ? values.slice(0, -1) : values).join(", ") + last;
    if (op === "in") {
      return "is " + listed;
    }
    if (values.length === 1) {
      return "is not " + listed;
    }
    return values.length === 2 ? "is neither " + values[0] + " nor " + values[1] : "is none of " + listed;
  }

  function Builder(field, config) {
    this.field = field;
    this.config = config;
    this.columns = {};
    this.values = {}; // column -> distinct values (array), null (many), or a pending promise
    var self = this;
    config.columns.forEach(function (column) {
      self.columns[column.name] = column;
    });
    this.id = "filter-builder-" + ++counter;
    this.build();
  }

  Builder.prototype.build = function () {
    var self = this;
    var field = this.field;
    var label = field.id && document.querySelector('label[for="' + field.id + '"]');
    this.root = make("div", { class: "filter-builder", role: "group", id: this.id });
    if (label) {
      if (!label.id) {
        label.id = field.id + "_label";
      }
      this.root.setAttribute("aria-labelledby", label.id);
    }
    this.list = make("ol", { class: "filter-conditions" });
    this.empty = make("p", { class: "filter-empty muted small" }, "No condition: every row.");
    this.add = make("button", { type: "button", class: "button button-small" }, "Add a condition");
    this.toggle = make("button", { type: "button", class: "button button-small button-quiet" }, "Edit as JSON");
    this.words = make("p", { class: "filter-words small", "aria-live": "polite" });
    this.problem = make("p", { class: "field-error", role: "alert", hidden: true });
    var actions = make("div", { class: "filter-actions" });
    actions.appendChild(this.add);
    actions.appendChild(this.toggle);
    this.root.appendChild(this.empty);
    this.root.appendChild(this.list);
    this.root.appendChild(actions);
    this.root.appendChild(this.words);
    this.root.appendChild(this.problem);
    field.parentNode.insertBefore(this.root, field);

    this.add.addEventListener("click", function () {
      var row = self.addCondition({ column: "", op: "=", value: "" });
      row.querySelector("select").focus();
      self.write();
    });
    this.toggle.addEventListener("click", function () {
      self.showJson(!field.hidden ? false : true);
    });
    var form = field.form;
    if (form) {
      form.addEventListener("submit", function (event) {
        var submitter = event.submitter;
        if (submitter && submitter.hasAttribute("formnovalidate")) {
          return; // Deny: the filter does not matter
        }
        var missing = self.incomplete();
        if (missing) {
          event.preventDefault();
          self.problem.textContent = missing;
          self.problem.hidden = false;
          self.root.scrollIntoView({ block: "center" });
        }
      });
    }
    this.load();
  };

  // Show the builder (from the field's JSON) or the JSON itself.
  Builder.prototype.showJson = function (json) {
    if (json) {
      this.write();
      this.help(true);
      this.field.hidden = false;
      this.list.hidden = this.empty.hidden = this.add.hidden = this.words.hidden = true;
      this.toggle.textContent = "Use the builder";
      this.field.focus();
    } else {
      this.load();
    }
  };

  // The field's help tells how to write the JSON: shown with the JSON only.
  Builder.prototype.help = function (show) {
    var help = this.field.id && document.getElementById(this.field.id + "_help");
    if (help) {
      help.hidden = !show;
    }
  };

  Builder.prototype.load = function () {
    var conditions = parseConditions(this.field.value);
    var self = this;
    // A column not offered here, or a value its picker cannot show: shown as JSON.
    var unknown = (conditions || []).some(function (condition) {
      if (!self.columns[condition.column]) {
        return true;
      }
      var form = PICKER_FORMS[self.kindOf(condition.column)];
      var values = [condition.value, condition.value2].filter(function (value) {
        return value !== undefined && value !== null && LISTS.indexOf(condition.op) < 0;
      });
      return form && values.some(function (value) {
        return !form.test(String(value));
      });
    });
    this.list.textContent = "";
    if (conditions === null || unknown) {
      // Not something the builder can show (or a column not offered here): as JSON.
      this.help(true);
      this.field.hidden = false;
      this.list.hidden = this.empty.hidden = this.add.hidden = this.words.hidden = true;
      this.toggle.textContent = "Use the builder";
      if (this.loadedOnce) {
        this.problem.textContent =
          "The builder cannot show this filter: correct the JSON, or empty it to start again.";
        this.problem.hidden = false;
      }
      this.loadedOnce = true;
      return;
    }
    this.loadedOnce = true;
    this.problem.hidden = true;
    this.field.hidden = true;
    this.help(false);
    this.list.hidden = this.add.hidden = this.words.hidden = false;
    this.toggle.textContent = "Edit as JSON";
    conditions.forEach(function (condition) {
      self.addCondition(condition);
    });
    this.refresh();
  };

  Builder.prototype.addCondition = function (condition) {
    var self = this;
    var n = ++counter;
    var row = make("li", { class: "filter-condition" });
    var column = make("select", { "data-part": "column" });
    column.appendChild(make("option", { value: "" }, "Choose a column…"));
    this.config.columns.forEach(function (item) {
      var option = make("option", { value: item.name }, item.name);
      column.appendChild(option);
    });
    column.value = condition.column;
    var op = make("select", { "data-part": "op" });
    var value = make("span", { class: "filter-value", "data-part": "holder" });
    var remove = make("button", { type: "button", class: "button button-small button-quiet filter-remove" }, "Remove");
    row.appendChild(labelled(column, "Column", "fb-column-" + n));
    row.appendChild(labelled(op, "Condition", "fb-op-" + n));
    row.appendChild(value);
    row.appendChild(remove);
    row.condition = condition;
    row.n = n;
    this.list.appendChild(row);
    this.fillOperators(row, condition.op);
    this.fillValue(row, condition);

    column.addEventListener("change", function () {
      var current = self.read(row);
      current.column = column.value;
      self.fillOperators(row, current.op);
      current.op = op.value;
      self.fillValue(row, current);
      self.write();
    });
    op.addEventListener("change", function () {
      var current = self.read(row);
      self.fillValue(row, current);
      self.write();
    });
    value.addEventListener("input", function () {
      self.write();
    });
    value.addEventListener("change", function () {
      self.write();
    });
    remove.addEventListener("click", function () {
      var next = row.nextElementSibling || row.previousElementSibling;
      row.remove();
      self.write();
      (next ? next.querySelector("select") : self.add).focus();
    });
    this.refresh();
    return row;
  };

  Builder.prototype.kindOf = function (name) {
    var column = this.columns[name];
    return column ? column.kind : "other";
  };

  Builder.prototype.fillOperators = function (row, wanted) {
    var select = row.querySelector('[data-part="op"]');
    var name = row.querySelector('[data-part="column"]').value;
    var column = this.columns[name];
    var ops = column ? column.ops : ["=", "!=", "in", "not in", "is null", "is not null"];
    var words = this.config.words;
    select.textContent = "";
    ops.forEach(function (op) {
      select.appendChild(make("option", { value: op }, words[op] || op));
    });
    select.value = ops.indexOf(wanted) >= 0 ? wanted : ops[0];
  };

  Builder.prototype.input = function (row, kind, value, part, label) {
    var id = "fb-" + part + "-" + row.n;
    var control;
    if (kind === "boolean") {
      control = make("select", { "data-part": part });
      control.appendChild(make("option", { value: "true" }, "true"));
      control.appendChild(make("option", { value: "false" }, "false"));
      control.value = shown(value) === "false" ? "false" : "true";
    } else {
      control = make("input", {
        type: INPUT_TYPES[kind] || "text",
        "data-part": part,
        step: kind === "timestamp" || kind === "time" ? "1" : null,
        inputmode: kind === "number" ? "decimal" : null,
        autocomplete: "off",
      });
      var text = shown(value);
      if (kind === "timestamp") {
        text = text.replace(" ", "T").replace(/(Z|[+-]\d\d:?\d\d)$/, ""); // the input's form
      }
      control.value = text;
      var known = this.values[row.querySelector('[data-part="column"]').value];
      if (Array.isArray(known) && known.length && kind !== "date" && kind !== "timestamp") {
        var list = make("datalist", { id: id + "-values" });
        known.forEach(function (item) {
          list.appendChild(make("option", { value: shown(item) }));
        });
        control.setAttribute("list", list.id);
        var wrap = labelled(control, label, id);
        wrap.appendChild(list);
        return wrap;
      }
    }
    return labelled(control, label, id);
  };

  Builder.prototype.fillValue = function (row, condition) {
    var self = this;
    var holder = row.querySelector('[data-part="holder"]');
    var name = row.querySelector('[data-part="column"]').value;
    var op = row.querySelector('[data-part="op"]').value;
    var kind = this.kindOf(name);
    holder.textContent = "";
    if (!name || NO_VALUE.indexOf(op) >= 0) {
      return;
    }
    this.fetchValues(name);
    var known = this.values[name];
    if (op === "between") {
      holder.appendChild(this.input(row, kind, condition.value, "value", "From"));
      holder.appendChild(make("span", { class: "filter-and", "aria-hidden": "true" }, "and"));
      holder.appendChild(this.input(row, kind, condition.value2, "value2", "To"));
      return;
    }
    if (LISTS.indexOf(op) >= 0) {
      var chosen = (Array.isArray(condition.value) ? condition.value : [condition.value]).filter(
        function (item) {
          return item !== "" && item !== null && item !== undefined;
        }
      );
      if (Array.isArray(known) && known.length) {
        var box = make("fieldset", { class: "filter-choices", "data-part": "choices" });
        box.appendChild(make("legend", { class: "visually-hidden" }, "Values of " + name));
        var texts = chosen.map(shown);
        known.concat(
          chosen.filter(function (item) {
            return known.map(shown).indexOf(shown(item)) < 0; // kept, though not among them
          })
        ).forEach(function (item, index) {
          var id = "fb-choice-" + row.n + "-" + index;
          var label = make("label", { for: id });
          var tick = make("input", { type: "checkbox", id: id, value: shown(item) });
          tick.checked = texts.indexOf(shown(item)) >= 0;
          label.appendChild(tick);
          label.appendChild(document.createTextNode(" " + shown(item)));
          box.appendChild(label);
        });
        holder.appendChild(box);
      } else {
        var input = this.input(row, kind === "boolean" ? "text" : "textlist", chosen.map(shown).join(", "), "list", "Values, separated by commas");
        input.querySelector("input").setAttribute("placeholder", "BE, NL");
        holder.appendChild(input);
      }
      return;
    }
    holder.appendChild(this.input(row, kind, condition.value, "value", "Value"));
    self.refresh();
  };

  // Ask the server for the column's distinct values once; redraw the rows using it.
  Builder.prototype.fetchValues = function (name) {
    var self = this;
    var kind = this.kindOf(name);
    if (!this.config.valuesUrl || name in this.values || (kind !== "text" && kind !== "other")) {
      return; // numbers and dates are compared, not picked: no read for them
    }
    this.values[name] = "pending";
    var url = this.config.valuesUrl + (this.config.valuesUrl.indexOf("?") < 0 ? "?" : "&");
    url += "column=" + encodeURIComponent(name);
    var portField = this.field.form && this.field.form.querySelector('[name$="port"]');
    if (portField && portField.value && this.config.portParam !== false) {
      url += "&port=" + encodeURIComponent(portField.value);
    }
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.ok ? response.json() : { values: null };
      })
      .catch(function () {
        return { values: null };
      })
      .then(function (answer) {
        self.values[name] = Array.isArray(answer.values) ? answer.values : null;
        Array.prototype.forEach.call(self.list.children, function (other) {
          if (other.querySelector('[data-part="column"]').value !== name) {
            return;
          }
          if (other.querySelector('[data-part="holder"]').contains(document.activeElement)) {
            self.suggest(other, name); // typing: keep the field, offer the values under it
          } else {
            self.fillValue(other, self.read(other));
          }
        });
      });
  };

  // The column's values as suggestions of a row's typed value(s), without redrawing it.
  Builder.prototype.suggest = function (row, name) {
    var known = this.values[name];
    if (!Array.isArray(known) || !known.length) {
      return;
    }
    row.querySelectorAll('input[data-part="value"], input[data-part="value2"]').forEach(function (input) {
      if (input.getAttribute("list") || input.type === "date" || input.type === "datetime-local") {
        return;
      }
      var list = make("datalist", { id: input.id + "-values" });
      known.forEach(function (item) {
        list.appendChild(make("option", { value: shown(item) }));
      });
      input.parentNode.appendChild(list);
      input.setAttribute("list", list.id);
    });
  };

  // The condition a row shows now.
  Builder.prototype.read = function (row) {
    var name = row.querySelector('[data-part="column"]').value;
    var op = row.querySelector('[data-part="op"]').value;
    var kind = this.kindOf(name);
    var condition = { column: name, op: op };
    var one = row.querySelector('[data-part="value"]');
    var two = row.querySelector('[data-part="value2"]');
    var list = row.querySelector('[data-part="list"]');
    var choices = row.querySelector('[data-part="choices"]');
    if (choices) {
      condition.value = Array.prototype.filter
        .call(choices.querySelectorAll("input"), function (tick) {
          return tick.checked;
        })
        .map(function (tick) {
          return typed(kind, tick.value);
        });
    } else if (list) {
      condition.value = list.value
        .split(",")
        .map(function (part) {
          return part.trim();
        })
        .filter(function (part) {
          return part !== "";
        })
        .map(function (part) {
          return typed(kind, part);
        });
    } else if (one) {
      condition.value = typed(kind, one.value);
      if (two) {
        condition.value2 = typed(kind, two.value);
      }
    }
    return condition;
  };

  Builder.prototype.conditions = function () {
    var self = this;
    return Array.prototype.map.call(this.list.children, function (row) {
      return self.read(row);
    });
  };

  // What keeps the filter from being sent, in words, or "" when nothing does.
  Builder.prototype.incomplete = function () {
    if (this.list.hidden) {
      return "";
    }
    var conditions = this.conditions();
    for (var i = 0; i < conditions.length; i++) {
      var c = conditions[i];
      var which = conditions.length > 1 ? "Condition " + (i + 1) : "The condition";
      if (!c.column) {
        return which + " needs a column: choose one, or remove the condition.";
      }
      if (LISTS.indexOf(c.op) >= 0 && !(c.value || []).length) {
        return which + " (" + c.column + ") needs at least one value.";
      }
      if (c.op === "between" && (c.value === "" || c.value2 === "")) {
        return which + " (" + c.column + ") needs both ends of the range.";
      }
      if (NO_VALUE.indexOf(c.op) < 0 && LISTS.indexOf(c.op) < 0 && c.value === "") {
        return which + " (" + c.column + ") needs a value.";
      }
    }
    return "";
  };

  // The conditions as the JSON the server reads ("" for none).
  Builder.prototype.json = function () {
    var clauses = [];
    this.conditions().forEach(function (c) {
      if (!c.column) {
        return;
      }
      if (NO_VALUE.indexOf(c.op) >= 0) {
        clauses.push({ column: c.column, op: c.op });
      } else if (c.op === "between") {
        clauses.push({ column: c.column, op: ">=", value: c.value });
        clauses.push({ column: c.column, op: "<=", value: c.value2 });
      } else {
        clauses.push({ column: c.column, op: c.op, value: c.value });
      }
    });
    return clauses.length ? JSON.stringify(clauses) : "";
  };

  Builder.prototype.sentence = function () {
    var words = this.config.words;
    var parts = this.conditions()
      .filter(function (c) {
        return c.column;
      })
      .map(function (c) {
        var text = c.column + " " + (words[c.op] || c.op);
        if (c.op === "between") {
          return text + " " + shown(c.value) + " and " + shown(c.value2);
        }
        if (LISTS.indexOf(c.op) >= 0) {
          return c.column + " " + listWords(c.op, (c.value || []).map(shown));
        }
        return NO_VALUE.indexOf(c.op) >= 0 ? text : text + " " + shown(c.value);
      });
    return parts.length ? "Rows where " + parts.join(" and ") + "." : "";
  };

  Builder.prototype.refresh = function () {
    var rows = this.list.children.length;
    this.empty.hidden = rows > 0 || this.list.hidden;
    this.words.textContent = this.sentence();
  };

  Builder.prototype.write = function () {
    if (!this.list.hidden) {
      this.field.value = this.json();
      this.field.dispatchEvent(new Event("change", { bubbles: true }));
    }
    this.problem.hidden = true;
    this.refresh();
  };

  function start() {
    document.querySelectorAll("textarea[data-filter-builder]").forEach(function (field) {
      if (field.filterBuilder) {
        return;
      }
      try {
        field.filterBuilder = new Builder(field, JSON.parse(field.getAttribute("data-filter-builder")));
      } catch (error) {
        field.hidden = false; // the JSON field still works
      }
    });
    // A decision sent back with an error: bring it into view.
    var error = document.querySelector(".decision-form .field-error, .decision-form .form-errors");
    if (error) {
      error.closest(".decision-form").scrollIntoView({ block: "start" });
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
