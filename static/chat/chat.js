// The chat room page, an ES module: no build step, no framework, no innerHTML. Every piece of
// text other people wrote goes into the page through textContent, so it can only ever be text.
// Protocol: chat/events.py; close codes and the error shape: wire/ (site/wire.js). Messages are
// kept by seq (each shown once, in seq order); what we send waits in a pending list, keyed by
// its client_id, until it comes back with a seq.

import { el } from "../site/dom.js";
import { CLOSE, errorText } from "../site/wire.js";

const root = document.getElementById("chat");
const { room, user: me } = root ? root.dataset : {};
const log = document.getElementById("chat-log");
const list = document.getElementById("chat-messages");
const pendingList = document.getElementById("chat-pending");
const olderNote = document.getElementById("chat-older");
const statusEl = document.getElementById("chat-status");
const notice = document.getElementById("chat-notice");
const form = document.getElementById("chat-form");
const input = document.getElementById("chat-input");
const presenceList = document.getElementById("chat-presence");

const shown = new Map(); // seq -> <li>
const pending = new Map(); // client_id -> {body, state, li, label}
const present = new Set();
let highest = 0; // the highest seq shown: a reconnect asks for what came after it
let lowest = null; // the oldest seq shown: scrolling up asks for what came before it
let hasOlder = false;
let loadingOlder = false;
let loaded = false;
let socket = null;
let attempts = 0;
let reconnectTimer = null;
let stopped = false;
let noticeTimer = null;

function newClientId() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID needs a secure context; plain http on a LAN name still has getRandomValues.
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) =>
    b.toString(16).padStart(2, "0"),
  ).join("");
}

function timeOf(iso) {
  const when = new Date(iso);
  return Number.isNaN(when.getTime())
    ? ""
    : when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function nearBottom() {
  return log.scrollHeight - log.scrollTop - log.clientHeight < 80;
}

function scrollToBottom() {
  log.scrollTop = log.scrollHeight;
}

function setStatus(state, text) {
  statusEl.dataset.state = state;
  statusEl.textContent = text;
  form.classList.toggle("offline", state !== "live");
}

function showNotice(text, sticky) {
  notice.textContent = text;
  notice.hidden = false;
  clearTimeout(noticeTimer);
  if (!sticky) noticeTimer = setTimeout(() => (notice.hidden = true), 6000);
}

function renderMessage(message) {
  const li = el("li", message.author === me ? "chat-message mine" : "chat-message");
  li.dataset.seq = String(message.seq);
  const meta = el("div", "chat-meta");
  meta.append(el("span", "chat-author", message.author));
  const time = el("time", "chat-time", timeOf(message.created_at));
  time.dateTime = message.created_at;
  meta.append(time);
  li.append(meta, el("p", "chat-body", message.body));
  return li;
}

function addMessage(message) {
  if (typeof message.seq !== "number" || shown.has(message.seq)) return;
  const li = renderMessage(message);
  // Almost always the newest: append. Older pages and late arrivals go in their place.
  let after = null;
  if (message.seq < highest) {
    for (const node of list.children) {
      if (Number(node.dataset.seq) > message.seq) {
        after = node;
        break;
      }
    }
  }
  list.insertBefore(li, after);
  shown.set(message.seq, li);
  highest = Math.max(highest, message.seq);
  lowest = lowest === null ? message.seq : Math.min(lowest, message.seq);
  if (message.author === me && pending.has(message.client_id)) {
    pending.get(message.client_id).li.remove();
    pending.delete(message.client_id);
  }
}

function clearMessages() {
  list.replaceChildren();
  shown.clear();
  highest = 0;
  lowest = null;
}

function onHistory(frame) {
  if (frame.before !== undefined) {
    // An older page: keep what the reader looks at where it is.
    const fromBottom = log.scrollHeight - log.scrollTop;
    frame.messages.forEach(addMessage);
    log.scrollTop = log.scrollHeight - fromBottom;
    hasOlder = frame.has_more;
    loadingOlder = false;
    olderNote.hidden = true;
    maybeLoadOlder();
    return;
  }
  const stick = !loaded || frame.reset || nearBottom();
  if (frame.reset) {
    clearMessages();
    showNotice("You were away for a long while: showing the latest messages.");
  }
  if (!loaded || frame.reset) hasOlder = frame.has_more;
  loaded = true;
  frame.messages.forEach(addMessage);
  if (stick) scrollToBottom();
  maybeLoadOlder();
}

function maybeLoadOlder() {
  const wantMore = log.scrollTop < 80 || log.scrollHeight <= log.clientHeight;
  if (!wantMore || !hasOlder || loadingOlder || lowest === null || !isOpen()) return;
  loadingOlder = true;
  olderNote.hidden = false;
  socket.send(JSON.stringify({ type: "chat.history", before: lowest }));
}

// Sending, with a pending entry until the message comes back numbered.

function setPendingState(entry, state, text) {
  entry.state = state;
  entry.li.dataset.state = state;
  entry.label.textContent = text;
}

function transmit(clientId, entry) {
  if (!isOpen()) {
    setPendingState(entry, "queued", "waiting for the connection…");
    return;
  }
  socket.send(JSON.stringify({ type: "chat.message", body: entry.body, client_id: clientId }));
  setPendingState(entry, "sending", "sending…");
}

function addPending(body) {
  const clientId = newClientId();
  const li = el("li", "chat-message mine pending");
  const meta = el("div", "chat-meta");
  meta.append(el("span", "chat-author", me));
  const label = el("span", "chat-state");
  meta.append(label);
  const actions = el("span", "chat-actions");
  const retry = el("button", "link", "Retry");
  retry.type = "button";
  retry.addEventListener("click", () => transmit(clientId, entry));
  const discard = el("button", "link", "Discard");
  discard.type = "button";
  discard.addEventListener("click", () => {
    li.remove();
    pending.delete(clientId);
  });
  actions.append(retry, discard);
  meta.append(actions);
  li.append(meta, el("p", "chat-body", body));
  pendingList.append(li);
  const entry = { body, state: "new", li, label };
  pending.set(clientId, entry);
  transmit(clientId, entry);
  scrollToBottom();
}

function onAck(frame) {
  const entry = pending.get(frame.client_id);
  if (!entry) return;
  if (frame.status === "sequenced" && shown.has(frame.seq)) {
    entry.li.remove();
    pending.delete(frame.client_id);
  } else if (frame.status === "sequenced") {
    setPendingState(entry, "sent", "sent");
  } else if (entry.state !== "sent") {
    // Stored; its number (and so its place) follows. The two acks may cross.
    setPendingState(entry, "sent", "sent, ordering…");
  }
}

function onError(frame) {
  const entry = frame.client_id && pending.get(frame.client_id);
  if (!entry) {
    showNotice(errorText(frame));
    return;
  }
  if (frame.code === "rate_limited") {
    const wait = Math.max(1, frame.retry_after || 1);
    setPendingState(entry, "waiting", `slow down: sending again in ${Math.ceil(wait)} s`);
    setTimeout(() => {
      if (pending.get(frame.client_id) === entry && entry.state === "waiting") {
        transmit(frame.client_id, entry);
      }
    }, wait * 1000);
  } else {
    setPendingState(entry, "failed", `not sent: ${errorText(frame)}`);
  }
}

// Presence.

function renderPresence() {
  const names = Array.from(present).sort((a, b) => a.localeCompare(b));
  presenceList.replaceChildren(
    ...names.map((name) => el("li", name === me ? "me" : "", name === me ? `${name} (you)` : name)),
  );
}

function onPresence(frame) {
  if (Array.isArray(frame.users)) {
    present.clear();
    frame.users.forEach((name) => present.add(name));
  }
  (frame.joined || []).forEach((name) => present.add(name));
  (frame.left || []).forEach((name) => present.delete(name));
  renderPresence();
}

// The connection, reconnecting with backoff and resuming from the highest seq shown.

function isOpen() {
  return socket !== null && socket.readyState === WebSocket.OPEN;
}

function connect() {
  clearTimeout(reconnectTimer);
  reconnectTimer = null;
  if (stopped || socket !== null) return;
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const since = loaded ? `?since=${highest}` : "";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/chat/${encodeURIComponent(room)}/${since}`);
  socket = ws;
  setStatus(attempts ? "reconnecting" : "connecting", attempts ? "Reconnecting…" : "Connecting…");

  ws.addEventListener("open", () => {
    attempts = 0;
    setStatus("live", "Connected");
    // Anything not yet numbered goes again; the server knows repeats by client_id.
    for (const [clientId, entry] of pending) {
      if (entry.state !== "failed" && entry.state !== "waiting") transmit(clientId, entry);
    }
  });

  ws.addEventListener("message", (event) => {
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch {
      return;
    }
    switch (frame.type) {
      case "chat.history":
        onHistory(frame);
        break;
      case "chat.message": {
        const stick = nearBottom();
        addMessage(frame);
        if (stick || frame.author === me) scrollToBottom();
        break;
      }
      case "chat.ack":
        onAck(frame);
        break;
      case "chat.presence":
        onPresence(frame);
        break;
      case "chat.error":
        onError(frame);
        break;
    }
  });

  ws.addEventListener("close", (event) => {
    socket = null;
    loadingOlder = false;
    olderNote.hidden = true;
    present.clear();
    renderPresence();
    if (event.code === CLOSE.unauthenticated) {
      stopped = true;
      setStatus("offline", "Logged out");
      showNotice("You are not logged in: log in again to chat.", true);
      return;
    }
    if (event.code === CLOSE.bad_room) {
      stopped = true;
      setStatus("offline", "No such room");
      showNotice("This room name is not allowed.", true);
      return;
    }
    if (event.code === CLOSE.not_found) {
      stopped = true;
      setStatus("offline", "No such room");
      showNotice("There is no such room, or you are not one of its members.", true);
      return;
    }
    for (const [, entry] of pending) {
      if (entry.state === "sending") setPendingState(entry, "queued", "waiting for the connection…");
    }
    // Too many sockets or connects: wait long before trying again. Too slow (the page left too
    // much unread): reconnect at once, `since` fills in what was dropped.
    attempts = event.code === CLOSE.too_many ? 6 : event.code === CLOSE.too_slow ? 0 : attempts + 1;
    // Exponential backoff with jitter, so that a restarted server is not hit all at once.
    const delay = Math.min(30000, 500 * 2 ** Math.min(attempts, 6)) * (0.5 + Math.random() / 2);
    setStatus("reconnecting", `Reconnecting in ${Math.ceil(delay / 1000)} s…`);
    reconnectTimer = setTimeout(connect, delay);
  });
}

if (root) {
  window.addEventListener("online", () => {
    if (socket === null && !stopped) connect();
  });
  document.addEventListener("visibilitychange", () => {
    // A laptop waking up: do not wait out the backoff.
    if (document.visibilityState === "visible" && socket === null && !stopped) connect();
  });

  log.addEventListener("scroll", maybeLoadOlder, { passive: true });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = input.value.trim();
    if (!body) return;
    input.value = "";
    addPending(body);
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  connect();
}
