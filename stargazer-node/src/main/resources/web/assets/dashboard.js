// The dashboard client: polls /api/streams every second; rates are the change of counters between two polls.
"use strict";
(function () {
  const body = document.querySelector("#streams tbody");
  const status = document.getElementById("status");
  const node = document.getElementById("node");
  let previous = null;

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function rate(now, before, seconds) {
    if (now == null || before == null || seconds <= 0) return "";
    return ((now - before) / seconds).toFixed(1);
  }

  function idle(ms) {
    if (ms < 10000) return ms + " ms";
    if (ms < 600000) return Math.round(ms / 1000) + " s";
    return Math.round(ms / 60000) + " min";
  }

  function render(data) {
    const seconds = previous ? (data.time_ms - previous.time_ms) / 1000 : 0;
    const before = {};
    if (previous) {
      for (const s of previous.streams) {
        before[s.stream] = {added: s.entries_added, groups: {}};
        for (const g of s.groups) before[s.stream].groups[g.group] = g.entries_read;
      }
    }
    node.textContent = "node " + data.node_id + " (" + data.role + ") · Redis " + data.server_version
      + (data.open_tabs == null ? "" : " · " + data.open_tabs + " open chat tab(s)");
    const rows = [];
    for (const s of data.streams) {
      const b = before[s.stream];
      const groups = s.groups.length ? s.groups : [null];
      groups.forEach(function (g, gi) {
        const consumers = g && g.consumers.length ? g.consumers : [null];
        consumers.forEach(function (c, ci) {
          const tr = document.createElement("tr");
          const first = gi === 0 && ci === 0;
          cell(tr, first ? s.stream : "", "name");
          cell(tr, first ? (s.exists ? s.length : "–") : "", "num");
          cell(tr, first ? rate(s.entries_added, b && b.added, seconds) : "", "num");
          const dead = cell(tr, first ? s.dead_letters : "", "num");
          if (first && s.dead_letters > 0) dead.classList.add("alert");
          cell(tr, ci === 0 && g ? g.group : "", "name");
          cell(tr, ci === 0 && g ? g.pending : "", "num");
          cell(tr, ci === 0 && g ? (g.lag == null ? "?" : g.lag) : "", "num");
          cell(tr, ci === 0 && g ? rate(g.entries_read, b && b.groups[g.group], seconds) : "", "num");
          cell(tr, c ? c.consumer : "", "name");
          cell(tr, c ? c.pending : "", "num");
          cell(tr, c ? idle(c.idle_ms) : "", "num");
          if (first) tr.className = "first";
          rows.push(tr);
        });
      });
    }
    body.replaceChildren.apply(body, rows);
    previous = data;
  }

  function poll() {
    fetch("/api/streams", {cache: "no-store"})
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); return r.json(); })
      .then(function (data) {
        render(data);
        status.textContent = "live · " + new Date(data.time_ms).toLocaleTimeString();
        status.className = "status ok";
      })
      .catch(function (e) { status.textContent = "error: " + e.message; status.className = "status down"; })
      .finally(function () { setTimeout(poll, 1000); });
  }
  poll();
})();
