// The dashboard client: polls /api/streams every second; rates are the change of counters between two polls. Keeps
// the last 5 minutes per stream and draws them with uPlot; pauses and resumes groups through /api/pause|resume.
// On Redis 6.2 (no entries-added, no entries-read) it computes what it can: entries added from the length, entries
// read from added minus the lag's change (the server counts the lag by reading).
"use strict";
(function () {
  const body = document.querySelector("#streams tbody");
  const status = document.getElementById("status");
  const node = document.getElementById("node");
  const chartsBox = document.getElementById("charts");
  const KEEP = 300;
  const history = {};   // stream -> {t: [], series: {label: []}}
  const charts = {};    // stream -> {plot, key, box}
  let previous = null;

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function perSecond(now, before, seconds) {
    if (now == null || before == null || seconds <= 0) return null;
    return Math.max(0, (now - before) / seconds);
  }

  function shown(v) {
    return v == null ? "–" : v.toFixed(1);
  }

  function idle(ms) {
    if (ms < 10000) return ms + " ms";
    if (ms < 600000) return Math.round(ms / 1000) + " s";
    return Math.round(ms / 60000) + " min";
  }

  function act(path, stream, group) {
    return fetch(path, {method: "POST", headers: {"Content-Type": "application/json", "X-Stargazer-Action": "1"},
      body: JSON.stringify({stream: stream, group: group})})
      .then(function (r) { if (!r.ok) throw new Error("HTTP " + r.status); });
  }

  function groupCell(tr, s, g) {
    const td = cell(tr, "", "name");
    if (!g) return;
    td.appendChild(document.createTextNode(g.group + " "));
    if (g.paused) {
      const badge = document.createElement("span");
      badge.className = "badge paused";
      badge.textContent = "PAUSED";
      td.appendChild(badge);
    }
    const b = document.createElement("button");
    b.className = "small";
    b.textContent = g.paused ? "Resume" : "Pause";
    b.dataset.stream = s.stream;
    b.dataset.group = g.group;
    b.addEventListener("click", function () {
      act(g.paused ? "/api/resume" : "/api/pause", s.stream, g.group).catch(function (e) { status.textContent = "error: " + e.message; });
    });
    td.appendChild(b);
  }

  /** Rates of one stream between two polls: added/s (entries-added, else the length) and read/s per group. */
  function rates(s, b, seconds) {
    const out = {added: null, read: {}};
    if (!b) return out;
    out.added = s.entries_added != null ? perSecond(s.entries_added, b.added, seconds)
      : perSecond(s.length, b.length, seconds);
    for (const g of s.groups) {
      const bg = b.groups[g.group];
      if (!bg) continue;
      if (g.entries_read != null) out.read[g.group] = perSecond(g.entries_read, bg.read, seconds);
      else if (out.added != null && g.lag != null && bg.lag != null) out.read[g.group] = Math.max(0, out.added - (g.lag - bg.lag) / seconds);
    }
    return out;
  }

  function record(s, t, r) {
    const h = history[s.stream] || (history[s.stream] = {t: [], series: {}});
    const values = {"added/s": r.added, "dead letters": s.dead_letters};
    for (const g of s.groups) {
      values["read/s " + g.group] = r.read[g.group] == null ? null : r.read[g.group];
      values["lag " + g.group] = g.lag;
      values["pending " + g.group] = g.pending;
    }
    const n = h.t.length;
    for (const label of Object.keys(values)) {
      if (!h.series[label]) h.series[label] = new Array(n).fill(null);
    }
    h.t.push(t);
    for (const label of Object.keys(h.series)) h.series[label].push(label in values ? values[label] : null);
    if (h.t.length > KEEP) {
      h.t.shift();
      for (const label of Object.keys(h.series)) h.series[label].shift();
    }
  }

  const COLORS = ["#7aa2ff", "#ff6b6b", "#4cd190", "#f5c04a", "#c17aff", "#4ad3f5", "#ff9f4a", "#9ad14c"];

  function draw(stream) {
    const h = history[stream];
    const labels = Object.keys(h.series);
    const key = labels.join("|");
    let c = charts[stream];
    const width = Math.max(260, Math.floor((c ? c.box : chartsBox).clientWidth) - 16);
    if (!c || c.key !== key) {
      if (c) c.plot.destroy();
      const box = c ? c.box : document.createElement("div");
      if (!c) {
        box.className = "chart";
        const title = document.createElement("h3");
        title.textContent = stream;
        box.appendChild(title);
        chartsBox.appendChild(box);
      }
      const series = [{}].concat(labels.map(function (l, i) {
        return {label: l, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: false,
          scale: l.indexOf("/s") >= 0 ? "rate" : "count", value: function (u, v) { return v == null ? "–" : (+v).toFixed(l.indexOf("/s") >= 0 ? 1 : 0); }};
      }));
      const axis = {stroke: "#8d96b0", grid: {stroke: "#222b45"}, ticks: {stroke: "#222b45"}};
      const plot = new uPlot({width: Math.max(260, box.clientWidth - 16), height: 180, series: series,
        scales: {x: {time: true}, rate: {range: function (u, min, max) { return [0, Math.max(1, max)]; }},
          count: {range: function (u, min, max) { return [0, Math.max(1, max)]; }}},
        axes: [Object.assign({}, axis), Object.assign({scale: "rate", label: "per second"}, axis),
          Object.assign({scale: "count", side: 1, label: "entries"}, axis)],
        legend: {live: false}}, [h.t].concat(labels.map(function (l) { return h.series[l]; })), box);
      c = charts[stream] = {plot: plot, key: key, box: box};
    } else {
      c.plot.setData([h.t].concat(labels.map(function (l) { return h.series[l]; })));
      if (Math.abs(c.plot.width - width) > 4) c.plot.setSize({width: width, height: 180});
    }
  }

  function render(data) {
    const seconds = previous ? (data.time_ms - previous.time_ms) / 1000 : 0;
    const before = {};
    if (previous) {
      for (const s of previous.streams) {
        before[s.stream] = {added: s.entries_added, length: s.length, groups: {}};
        for (const g of s.groups) before[s.stream].groups[g.group] = {read: g.entries_read, lag: g.lag};
      }
    }
    node.textContent = "node " + data.node_id + " (" + data.role + ") · Redis " + data.server_version
      + (data.open_tabs == null ? "" : " · " + data.open_tabs + " open chat tab(s)");
    const rows = [];
    for (const s of data.streams) {
      const r = rates(s, before[s.stream], seconds);
      record(s, data.time_ms / 1000, r);
      const groups = s.groups.length ? s.groups : [null];
      groups.forEach(function (g, gi) {
        const consumers = g && g.consumers.length ? g.consumers : [null];
        consumers.forEach(function (c, ci) {
          const tr = document.createElement("tr");
          const first = gi === 0 && ci === 0;
          cell(tr, first ? s.stream : "", "name");
          cell(tr, first ? (s.exists ? s.length : "–") : "", "num");
          cell(tr, first && previous ? shown(r.added) : "", "num");
          const dead = cell(tr, "", "num");
          if (first) {
            if (s.dead_letters > 0) {
              const a = document.createElement("a");
              a.href = "/dashboard/dead?stream=" + encodeURIComponent(s.dead_letter_stream);
              a.textContent = s.dead_letters;
              dead.appendChild(a);
              dead.classList.add("alert");
            } else {
              dead.textContent = "0";
            }
          }
          if (ci === 0) groupCell(tr, s, g); else cell(tr, "", "name");
          cell(tr, ci === 0 && g ? g.pending : "", "num");
          cell(tr, ci === 0 && g ? (g.lag == null ? "–" : g.lag + (g.lag_at_least ? "+" : "")) : "", "num");
          cell(tr, ci === 0 && g && previous ? shown(r.read[g.group]) : "", "num");
          cell(tr, c ? c.consumer : "", "name");
          cell(tr, c ? c.pending : "", "num");
          cell(tr, c ? idle(c.idle_ms) : "", "num");
          if (first) tr.className = "first";
          rows.push(tr);
        });
      });
    }
    body.replaceChildren.apply(body, rows);
    for (const s of data.streams) draw(s.stream);
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
