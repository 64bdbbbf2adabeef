// The web chat client: one WebSocket per tab; every text shown is set with textContent, never parsed as HTML.
"use strict";
(function () {
  const list = document.getElementById("messages");
  const form = document.getElementById("composer");
  const input = document.getElementById("input");
  const status = document.getElementById("status");
  const channel = document.getElementById("channel");
  let socket = null;
  let retry = 500;

  function add(kind, text, meta) {
    const item = document.createElement("li");
    item.className = "msg " + kind;
    const body = document.createElement("div");
    body.className = "body";
    body.textContent = text;
    item.appendChild(body);
    if (meta) {
      const small = document.createElement("div");
      small.className = "meta";
      small.textContent = meta;
      item.appendChild(small);
    }
    list.appendChild(item);
    item.scrollIntoView({block: "end"});
    return item;
  }

  function setStatus(text, ok) {
    status.textContent = text;
    status.className = "status " + (ok ? "ok" : "down");
  }

  function connect() {
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    socket = new WebSocket(scheme + location.host + "/ws/chat");
    socket.onopen = function () { setStatus("connected", true); };
    socket.onclose = function (event) {
      // A gateway that holds all the tabs it may closes at once with a reason (1013): say it, and back off.
      setStatus((event.reason ? "disconnected (" + event.reason + ")" : "disconnected") + ", retrying…", false);
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 10000);
    };
    socket.onmessage = function (event) {
      let frame;
      try { frame = JSON.parse(event.data); } catch (e) { return; }
      if (frame.kind === "hello") {
        retry = 500; // taken as a tab: only then is the backoff over
        channel.textContent = "channel " + frame.channel_id + " · gateway " + frame.gateway_id;
      } else if (frame.kind === "message") {
        if (frame.type === "typing") return;
        const text = frame.content == null ? "" : String(frame.content);
        add("bot", text, "worker · " + (frame.trace_id || ""));
      } else if (frame.kind === "error") {
        add("error", String(frame.message));
      }
    };
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    const text = input.value;
    if (!text.trim() || !socket || socket.readyState !== WebSocket.OPEN) return;
    socket.send(JSON.stringify({content: text}));
    add("me", text);
    input.value = "";
    input.focus();
  });

  connect();
})();
