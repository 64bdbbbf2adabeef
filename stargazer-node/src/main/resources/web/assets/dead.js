// The dead-letter page: lists /api/dead with the filters, shows one entry from /api/dead/entry, and replays or purges
// one, the selected ones or every match (POST with the X-Stargazer-Action header the server requires).
"use strict";
(function () {
  const $ = function (id) { return document.getElementById(id); };
  const body = document.querySelector("#dead tbody");
  const status = $("status");
  let next = null;
  let shownEntry = null;

  function age(ms) {
    if (ms < 60000) return Math.round(ms / 1000) + " s";
    if (ms < 3600000) return Math.round(ms / 60000) + " min";
    if (ms < 172800000) return Math.round(ms / 3600000) + " h";
    return Math.round(ms / 86400000) + " d";
  }

  function cell(tr, text, cls) {
    const td = document.createElement("td");
    td.textContent = text == null ? "" : String(text);
    if (cls) td.className = cls;
    tr.appendChild(td);
    return td;
  }

  function query(after) {
    const q = new URLSearchParams();
    if ($("stream").value) q.set("stream", $("stream").value);
    if ($("error").value) q.set("error", $("error").value);
    if (after) q.set("after", after);
    return q.toString();
  }

  function get(path) {
    return fetch(path, {cache: "no-store"}).then(function (r) {
      return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || j.title || ("HTTP " + r.status)); return j; });
    });
  }

  function post(path, payload) {
    return fetch(path, {method: "POST", headers: {"Content-Type": "application/json", "X-Stargazer-Action": "1"}, body: JSON.stringify(payload)})
      .then(function (r) { return r.json().then(function (j) { if (!r.ok) throw new Error(j.error || j.title || ("HTTP " + r.status)); return j; }); });
  }

  function selected() {
    return Array.from(body.querySelectorAll("input[type=checkbox]:checked")).map(function (c) { return c.value; });
  }

  function updateButtons() {
    const n = selected().length;
    $("replay-selected").disabled = n === 0;
    $("purge-selected").disabled = n === 0;
    $("replay-selected").textContent = "Replay selected" + (n ? " (" + n + ")" : "");
    $("purge-selected").textContent = "Purge selected" + (n ? " (" + n + ")" : "");
  }

  function streams(list) {
    const select = $("stream");
    if (select.options.length > 1) return;
    const wanted = new URLSearchParams(location.search).get("stream");
    for (const s of list) {
      const o = document.createElement("option");
      o.value = s;
      o.textContent = s;
      if (s === wanted) o.selected = true;
      select.appendChild(o);
    }
  }

  function load(append) {
    return get("/api/dead?" + query(append ? next : null)).then(function (data) {
      streams(data.streams);
      const rows = [];
      for (const e of data.entries) {
        const tr = document.createElement("tr");
        tr.dataset.id = e.id;
        const pick = document.createElement("input");
        pick.type = "checkbox";
        // id@stream: two streams can hold an entry of one id (stored in the same millisecond), and a row is one of them.
        pick.value = e.id + "@" + e.dead_letter_stream;
        pick.addEventListener("change", updateButtons);
        pick.addEventListener("click", function (ev) { ev.stopPropagation(); });
        const td = document.createElement("td");
        td.appendChild(pick);
        tr.appendChild(td);
        cell(tr, e.id, "name id");
        cell(tr, e.dead_letter_stream, "name");
        cell(tr, age(e.age_ms), "num");
        cell(tr, e.deliveries || "?", "num");
        cell(tr, e.error, "wrap");
        cell(tr, e.channel_id, "name");
        cell(tr, e.preview, "wrap");
        tr.addEventListener("click", function () { show(e.id, e.dead_letter_stream); });
        rows.push(tr);
      }
      if (append) rows.forEach(function (r) { body.appendChild(r); });
      else body.replaceChildren.apply(body, rows);
      next = data.next;
      $("more").hidden = !next;
      status.textContent = body.children.length + " shown" + (next ? " (more)" : "")
          + ((data.not_streams || []).length ? "; not a stream, skipped: " + data.not_streams.join(", ") : "");
      status.className = "status ok";
      updateButtons();
    }).catch(function (e) { status.textContent = "error: " + e.message; status.className = "status down"; });
  }

  function show(id, stream) {
    get("/api/dead/entry?id=" + encodeURIComponent(id) + "&stream=" + encodeURIComponent(stream)).then(function (e) {
      shownEntry = e;
      $("entry-id").textContent = e.id;
      $("envelope").textContent = JSON.stringify(e, null, 2);
      $("entry").hidden = false;
    }).catch(function (e) { status.textContent = "error: " + e.message; });
  }

  function act(kind, payload, what) {
    if (!window.confirm(kind + " " + what + "?")) return;
    post("/api/dead/" + kind.toLowerCase(), payload).then(function (r) {
      $("result").textContent = kind === "Replay"
        ? "Replayed " + r.replayed + (r.already_replayed ? ", " + r.already_replayed + " already put back by an earlier run" : "")
          + (r.skipped > r.foreign_source ? ", " + (r.skipped - r.foreign_source) + " without a source stream (left)" : "")
          + (r.foreign_source ? ", " + r.foreign_source + " whose source stream is not that of its dead-letter stream (left)" : "") + "."
        : "Purged " + r.purged + ".";
      $("entry").hidden = true;
      return load(false);
    }).catch(function (e) { $("result").textContent = "error: " + e.message; });
  }

  function matching() {
    // Blank filters are "any" in the list shown, so null here: the API refuses blank text rather than widen a selection.
    return {all: true, stream: $("stream").value.trim() || null, error: $("error").value.trim() || null};
  }

  $("filter").addEventListener("submit", function (ev) { ev.preventDefault(); load(false); });
  $("more").addEventListener("click", function () { load(true); });
  $("select-all").addEventListener("change", function () {
    body.querySelectorAll("input[type=checkbox]").forEach(function (c) { c.checked = $("select-all").checked; });
    updateButtons();
  });
  $("replay-selected").addEventListener("click", function () { act("Replay", {ids: selected()}, selected().length + " selected"); });
  $("purge-selected").addEventListener("click", function () { act("Purge", {ids: selected()}, selected().length + " selected"); });
  $("replay-all").addEventListener("click", function () { act("Replay", matching(), "every matching dead letter"); });
  $("purge-all").addEventListener("click", function () { act("Purge", matching(), "every matching dead letter"); });
  $("replay-one").addEventListener("click", function () { act("Replay", {ids: [shownEntry.id + "@" + shownEntry.dead_letter_stream]}, shownEntry.id + " of " + shownEntry.dead_letter_stream); });
  $("purge-one").addEventListener("click", function () { act("Purge", {ids: [shownEntry.id + "@" + shownEntry.dead_letter_stream]}, shownEntry.id + " of " + shownEntry.dead_letter_stream); });
  load(false);
})();
