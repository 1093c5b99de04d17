// The port form's table browser: once a data source is chosen, the schema and table
// fields offer what the product's domain may use on it (fetched from the portal, which
// applies the source's allowances), and say when the source cannot be listed.
(function () {
  "use strict";

  function fill(list, names) {
    list.replaceChildren();
    names.forEach(function (name) {
      var option = document.createElement("option");
      option.value = name;
      list.appendChild(option);
    });
  }

  function refresh(form) {
    var source = form.querySelector("[name=source]");
    var schema = form.querySelector("[name=schema_name]");
    var status = form.querySelector("[data-relations-status]");
    var schemas = document.getElementById("schema-options");
    var tables = document.getElementById("table-options");
    if (!source || !schema || !schemas || !tables) return;
    if (!source.value) {
      fill(schemas, []);
      fill(tables, []);
      status.textContent = "";
      return;
    }
    var url = new URL(form.getAttribute("data-relations-url"), window.location.href);
    url.searchParams.set("source", source.value);
    url.searchParams.set("schema", schema.value.trim());
    status.textContent = "Looking up the tables you may use…";
    fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
      .then(function (response) {
        return response.ok ? response.json() : { schemas: [], tables: [] };
      })
      .then(function (found) {
        fill(schemas, found.schemas || []);
        fill(tables, found.tables || []);
        if (!(found.schemas || []).length) {
          status.textContent =
            "This source is not available to your domain, or it cannot be reached now.";
        } else {
          var count = (found.tables || []).length;
          status.textContent =
            count + " table" + (count === 1 ? "" : "s") + " you may use in schema " +
            (found.schema || "") + ".";
        }
      })
      .catch(function () {
        status.textContent = "The tables could not be listed; type the name instead.";
      });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("form[data-relations-url]").forEach(function (form) {
      var source = form.querySelector("[name=source]");
      var schema = form.querySelector("[name=schema_name]");
      if (source) source.addEventListener("change", function () { refresh(form); });
      if (schema) schema.addEventListener("change", function () { refresh(form); });
      refresh(form);
    });
  });
})();
