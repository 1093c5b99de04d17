// The live tail of a stream port on the Data tab: the API's Server-Sent Events (the same
// governed read as every channel), newest message first, the last few kept. The browser's
// EventSource reconnects by itself and resumes after the last message (Last-Event-ID).
(function () {
  "use strict";

  function cell(value) {
    const td = document.createElement("td");
    if (value === null || value === undefined) {
      td.className = "muted";
      td.textContent = "—";
    } else {
      td.textContent = typeof value === "object" ? JSON.stringify(value) : String(value);
    }
    return td;
  }

  function start(table) {
    const url = table.dataset.streamTail;
    const keep = parseInt(table.dataset.streamTailKeep || "50", 10);
    const body = table.tBodies[0];
    const section = table.closest(".stream-tail");
    const status = section.querySelector("[data-stream-tail-status]");
    const toggle = section.querySelector("[data-stream-tail-toggle]");
    const columns = Array.from(table.tHead.rows[0].cells)
      .slice(1)
      .map((th) => th.querySelector("code").textContent);
    let received = 0;
    let paused = false;
    let source = null;

    function show(text) {
      status.textContent = text;
    }

    function open() {
      source = new EventSource(url, { withCredentials: true });
      source.onopen = () => show(received ? "Following new messages." : "Waiting for messages…");
      source.onmessage = (event) => {
        received += 1;
        const message = JSON.parse(event.data);
        const row = document.createElement("tr");
        const seq = cell(event.lastEventId);
        seq.className = "num";
        row.appendChild(seq);
        columns.forEach((name) => row.appendChild(cell(message[name])));
        body.insertBefore(row, body.firstChild);
        while (body.rows.length > keep) body.deleteRow(body.rows.length - 1);
        show(`${received} message${received === 1 ? "" : "s"} received; following new ones.`);
      };
      // The portal's own ending: access revoked or changed (an "error" event with data).
      source.addEventListener("error", (event) => {
        if (event.data) {
          source.close();
          show(JSON.parse(event.data).error);
        } else if (source.readyState === EventSource.CONNECTING) {
          show("Connection lost: reconnecting…");
        }
      });
      source.addEventListener("end", () => {
        source.close();
        show("The subscription ended: reload the page to follow again.");
      });
    }

    toggle.addEventListener("click", () => {
      paused = !paused;
      toggle.setAttribute("aria-pressed", String(paused));
      toggle.textContent = paused ? "Resume" : "Pause";
      if (paused) {
        source.close();
        show("Paused.");
      } else {
        while (body.rows.length) body.deleteRow(0); // the tail starts again from -20
        received = 0;
        open();
      }
    });
    open();
  }

  document.addEventListener("DOMContentLoaded", () => {
    document.querySelectorAll("table[data-stream-tail]").forEach(start);
  });
})();
