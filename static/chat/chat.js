// The chat room page, an ES module: no build step, no framework, no innerHTML. Every piece of
// text other people wrote goes into the page through textContent, so it can only ever be text.
// Protocol: chat/events.py; close codes and the error shape: wire/ (site/wire.js). Messages are
// kept by seq (each shown once, in seq order); what we send waits in a pending list, keyed by
// its client_id, until it comes back with a seq. Edits, deletes and reactions come as
// chat.update frames with seqs of their own, carrying the message as it is now: the page
// draws that message again. A picture goes up as any upload (the uploads API), then as a
// chat.picture frame naming it; its processing shows from chat.progress frames (not stored)
// until the chat.update that says it is done or failed.

import { sendFile } from "../media_tasks/api.js";
import { pictureOf, placeholderOf } from "../media_tasks/picture.js";
import { el } from "../site/dom.js";
import { CLOSE, errorText } from "../site/wire.js";

const root = document.getElementById("chat");
const { room, user: me } = root ? root.dataset : {};
const isOwner = root ? root.dataset.owner === "1" : false;
const reactionSet = root ? root.dataset.reactions.split(" ") : [];
// How far this user had read when the page opened: the "new messages" line goes after it.
let readAtOpen = root ? Number(root.dataset.readSeq || 0) : 0;
// How long a name stays in "… is typing" without a new notice (CHAT["TYPING_EXPIRE"]).
const TYPING_EXPIRE = 5000;
const TYPING_EVERY = 2000;
const log = document.getElementById("chat-log");
const list = document.getElementById("chat-messages");
const pendingList = document.getElementById("chat-pending");
const olderNote = document.getElementById("chat-older");
const statusEl = document.getElementById("chat-status");
const notice = document.getElementById("chat-notice");
const form = document.getElementById("chat-form");
const input = document.getElementById("chat-input");
const presenceList = document.getElementById("chat-presence");
const typingLine = document.getElementById("chat-typing");
const fileInput = document.getElementById("chat-file");
const uploadsApi = root ? root.dataset.uploadsApi : "";

const shown = new Map(); // seq -> <li>
const pending = new Map(); // client_id -> {body, state, li, label}
const present = new Set();
let presentCount = 0; // how many are in the room: `present` names some of them
let presentLimit = Infinity; // how many names the server lists (PRESENCE_LIST)
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
let readSent = 0; // the highest seq this page told the server it has read
let readTimer = null;
let typingSent = 0;
const typing = new Map(); // username -> timer that takes the name out
const messagesById = new Map(); // message id -> the latest payload drawn
const progressOf = new Map(); // upload id -> Map(job id -> percent), from chat.progress

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

// A body with its mentions of members highlighted: text nodes and spans, never markup.
function bodyNodes(message) {
  const names = new Set(message.mentions || []);
  if (!names.size) return [document.createTextNode(message.body)];
  const nodes = [];
  const pattern = /@([\w.@+-]{1,150})/g;
  let at = 0;
  for (const match of message.body.matchAll(pattern)) {
    const name = match[1].replace(/\.+$/, "");
    if (!names.has(name)) continue;
    nodes.push(document.createTextNode(message.body.slice(at, match.index)));
    nodes.push(el("span", "chat-mention", `@${name}`));
    at = match.index + 1 + name.length;
  }
  nodes.push(document.createTextNode(message.body.slice(at)));
  return nodes;
}

function toolButton(text, onClick) {
  const button = el("button", "link", text);
  button.type = "button";
  button.addEventListener("click", onClick);
  return button;
}

function send(frame) {
  if (!isOpen()) {
    showNotice("Not connected: try again in a moment.");
    return;
  }
  socket.send(JSON.stringify(frame));
}

function startEdit(li, message) {
  if (li.querySelector(".chat-edit-box")) return;
  const box = el("form", "chat-edit-box");
  const area = el("textarea");
  area.value = message.body;
  area.maxLength = 2000;
  area.rows = 2;
  area.setAttribute("aria-label", "Edit the message");
  const save = el("button", "", "Save");
  save.type = "submit";
  const cancel = toolButton("Cancel", () => box.remove());
  box.append(area, save, cancel);
  box.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = area.value.trim();
    if (body && body !== message.body) send({ type: "chat.edit", message: message.id, body });
    box.remove();
  });
  // Under the text, or under the picture of a message that has none.
  (li.querySelector(".chat-body") || li.querySelector(".chat-picture")).after(box);
  area.focus();
}

function renderReactions(message) {
  const bar = el("div", "chat-reactions");
  for (const reaction of message.reactions || []) {
    const mine = reaction.users.includes(me);
    const button = toolButton(`${reaction.emoji} ${reaction.count}`, () =>
      send({ type: "chat.react", message: message.id, emoji: reaction.emoji, on: !mine }),
    );
    button.className = "chat-reaction";
    button.setAttribute("aria-pressed", mine ? "true" : "false");
    button.title = reaction.users.join(", ");
    bar.append(button);
  }
  return bar;
}

function pictureProgress(uploadId) {
  const jobs = progressOf.get(uploadId);
  if (!jobs || !jobs.size) return 0;
  let sum = 0;
  for (const percent of jobs.values()) sum += percent;
  // An upload has two jobs (thumbnails, analysis): one not heard of yet counts as 0.
  return Math.round(sum / Math.max(2, jobs.size));
}

function renderPicture(picture) {
  const figure = el("figure", "chat-picture");
  figure.dataset.upload = String(picture.upload);
  figure.dataset.status = picture.status;
  figure.dataset.progress = String(Math.max(picture.progress || 0, pictureProgress(picture.upload)));
  if (picture.status === "done" && picture.renditions.length) {
    const drawn = pictureOf({ ...picture, name: "picture" });
    if (drawn) {
      const link = el("a");
      const largest = picture.renditions[picture.renditions.length - 1];
      link.href = largest.url;
      link.target = "_blank";
      link.rel = "noopener";
      link.append(drawn);
      figure.append(link);
      return figure;
    }
  }
  // A box of the picture's shape: its ThumbHash once the analysis made one, else neutral.
  const box = el("div", "chat-picture-box");
  const ratio = picture.width && picture.height ? picture.width / picture.height : 4 / 3;
  box.style.aspectRatio = String(Math.min(4, Math.max(0.25, ratio)));
  const placeholder = placeholderOf(picture);
  if (placeholder) box.style.backgroundImage = `url("${placeholder.url}")`;
  if (picture.status === "failed") {
    figure.append(box, el("figcaption", "chat-picture-error", `The picture failed: ${picture.error}`));
    return figure;
  }
  const bar = el("progress", "chat-picture-progress");
  bar.max = 100;
  bar.value = Number(figure.dataset.progress);
  const label = picture.status === "queued" ? "waiting for a worker…" : "processing…";
  figure.append(box, bar, el("figcaption", "chat-picture-state", label));
  return figure;
}

function onProgress(frame) {
  const jobs = progressOf.get(frame.upload) || new Map();
  jobs.set(frame.job, Math.max(jobs.get(frame.job) || 0, Number(frame.progress) || 0));
  progressOf.set(frame.upload, jobs);
  const figure = list.querySelector(`figure.chat-picture[data-upload="${Number(frame.upload)}"]`);
  if (!figure || figure.dataset.status === "done" || figure.dataset.status === "failed") return;
  const percent = pictureProgress(frame.upload);
  figure.dataset.progress = String(Math.max(Number(figure.dataset.progress) || 0, percent));
  figure.dataset.status = "processing";
  const bar = figure.querySelector("progress");
  if (bar) bar.value = Number(figure.dataset.progress);
  const label = figure.querySelector(".chat-picture-state");
  if (label) label.textContent = frame.message || "processing…";
}

function renderMessage(message) {
  const classes = ["chat-message"];
  if (message.author === me) classes.push("mine");
  if (message.deleted) classes.push("deleted");
  if ((message.mentions || []).includes(me)) classes.push("mentions-me");
  const li = el("li", classes.join(" "));
  li.dataset.seq = String(message.seq);
  li.dataset.id = String(message.id);
  const meta = el("div", "chat-meta");
  meta.append(el("span", "chat-author", message.author));
  const time = el("time", "chat-time", timeOf(message.created_at));
  time.dateTime = message.created_at;
  meta.append(time);
  if (message.edited_at && !message.deleted) {
    const edited = el("span", "chat-edited", "edited");
    edited.title = `edited ${new Date(message.edited_at).toLocaleString()}`;
    meta.append(edited);
  }
  if (!message.deleted) {
    const tools = el("span", "chat-tools");
    const picker = el("span", "chat-picker");
    for (const emoji of reactionSet) {
      const button = toolButton(emoji, () =>
        send({ type: "chat.react", message: message.id, emoji, on: true }),
      );
      button.setAttribute("aria-label", `React with ${emoji}`);
      picker.append(button);
    }
    tools.append(picker);
    if (message.author === me) tools.append(toolButton("Edit", () => startEdit(li, message)));
    if (message.author === me || isOwner) {
      tools.append(
        toolButton("Delete", () => {
          if (window.confirm("Delete this message?")) {
            send({ type: "chat.delete", message: message.id });
          }
        }),
      );
    }
    if (message.edited_at && (message.author === me || isOwner)) {
      tools.append(toolButton("Earlier texts", () => send({ type: "chat.revisions", message: message.id })));
    }
    meta.append(tools);
  }
  const body = message.deleted
    ? el("p", "chat-body", "This message was deleted.")
    : el("p", "chat-body");
  if (!message.deleted) body.append(...bodyNodes(message));
  li.append(meta);
  if (message.picture && !message.deleted) li.append(renderPicture(message.picture));
  if (message.body || message.deleted || !message.picture) li.append(body);
  li.append(renderReactions(message));
  return li;
}

function onUpdate(update) {
  const message = update.message;
  const old = shown.get(message.seq);
  if (!old) return; // not on the page (scrolled out of history): it comes right when paged in
  const li = renderMessage(message);
  old.replaceWith(li);
  shown.set(message.seq, li);
  messagesById.set(message.id, message);
}

function onRevisions(frame) {
  const li = list.querySelector(`li[data-id="${Number(frame.message)}"]`);
  if (!li) return;
  li.querySelector(".chat-revisions")?.remove();
  const older = el("ol", "chat-revisions");
  for (const revision of frame.revisions) {
    const when = new Date(revision.replaced_at).toLocaleString();
    older.append(el("li", "", `${revision.body} (until ${when})`));
  }
  li.append(older);
}

// The "new messages" line, read markers and the sidebar's unread counts.

function markNewLine() {
  if (list.querySelector(".chat-new-line")) return;
  for (const node of list.children) {
    const seq = Number(node.dataset.seq);
    if (seq > readAtOpen && !node.classList.contains("mine")) {
      const line = el("li", "chat-new-line", "new messages");
      line.dataset.seq = String(seq - 0.5);
      node.before(line);
      return;
    }
  }
}

function sendRead() {
  clearTimeout(readTimer);
  readTimer = null;
  if (document.visibilityState !== "visible" || !isOpen() || highest <= readSent) return;
  readSent = highest;
  socket.send(JSON.stringify({ type: "chat.read", seq: highest }));
}

function readSoon() {
  // At most one marker a second, however fast messages come.
  if (readTimer === null) readTimer = setTimeout(sendRead, 1000);
}

function badgeOf(roomName) {
  const link = document.querySelector(`.chat-room-links a[data-room="${CSS.escape(roomName)}"]`);
  return link ? link.parentElement.querySelector(".chat-unread") : null;
}

function setUnread(roomName, count, mentioned) {
  const badge = badgeOf(roomName);
  if (!badge || roomName === room) return;
  badge.dataset.unread = String(count);
  badge.textContent = String(count);
  badge.hidden = count <= 0;
  if (mentioned) badge.classList.add("mentioned");
  if (count <= 0) badge.classList.remove("mentioned");
}

function onActivity(frame) {
  if (frame.author === me) return;
  const badge = badgeOf(frame.room);
  if (badge) setUnread(frame.room, Number(badge.dataset.unread || 0) + 1, false);
}

function onMention(frame) {
  if (frame.room === room) return; // the message itself shows here, highlighted
  const badge = badgeOf(frame.room);
  if (badge) setUnread(frame.room, Number(badge.dataset.unread || 0), true);
  showNotice(`${frame.author} mentioned you in ${frame.title}: ${frame.body}`, false);
}

function onRead(frame) {
  if (frame.room === room) {
    // Read on another of this user's pages: nothing up to there is new here either, so the
    // "new messages" line moves past it (or goes), and this page need not say it again.
    readSent = Math.max(readSent, frame.seq);
    if (frame.seq <= readAtOpen) return;
    readAtOpen = frame.seq;
    root.dataset.readSeq = String(readAtOpen);
    const line = list.querySelector(".chat-new-line");
    if (line && Number(line.dataset.seq) < readAtOpen) {
      line.remove();
      markNewLine();
    }
    return;
  }
  setUnread(frame.room, frame.unread, false);
}

// Typing.

function renderTyping() {
  const names = Array.from(typing.keys()).sort((a, b) => a.localeCompare(b));
  typingLine.textContent = !names.length
    ? ""
    : names.length === 1
      ? `${names[0]} is typing…`
      : names.length <= 3
        ? `${names.join(", ")} are typing…`
        : `${names.length} people are typing…`;
}

function onTyping(frame) {
  for (const name of frame.users || []) {
    if (name === me) continue;
    clearTimeout(typing.get(name));
    typing.set(
      name,
      setTimeout(() => {
        typing.delete(name);
        renderTyping();
      }, TYPING_EXPIRE),
    );
  }
  renderTyping();
}

function noteTyping() {
  const now = Date.now();
  if (now - typingSent < TYPING_EVERY || !isOpen()) return;
  typingSent = now;
  socket.send(JSON.stringify({ type: "chat.typing" }));
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
  messagesById.set(message.id, message);
  if (typing.has(message.author)) {
    clearTimeout(typing.get(message.author));
    typing.delete(message.author);
    renderTyping();
  }
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
  const first = !loaded;
  loaded = true;
  frame.messages.forEach(addMessage);
  (frame.updates || []).forEach(onUpdate);
  if (first) markNewLine();
  if (stick) scrollToBottom();
  readSoon();
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
  if (entry.upload === null) {
    setPendingState(entry, "sending", "uploading…");
    return; // sendPicture sends the frame once the upload is accepted
  }
  const frame =
    entry.upload === undefined
      ? { type: "chat.message", body: entry.body, client_id: clientId }
      : { type: "chat.picture", upload: entry.upload, body: entry.body, client_id: clientId };
  socket.send(JSON.stringify(frame));
  setPendingState(entry, "sending", "sending…");
}

function addPending(body, upload) {
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
  const entry = { body, state: "new", li, label, upload };
  pending.set(clientId, entry);
  transmit(clientId, entry);
  scrollToBottom();
  return [clientId, entry];
}

// A picture: up through the uploads API (its checks, limits and quota), then named in a
// chat.picture frame. Until the upload is accepted, its entry waits (upload: null).
function sendPicture(file) {
  if (!file || !file.type.startsWith("image/")) {
    showNotice(`${file ? file.name : "That"} is not a picture.`);
    return;
  }
  const body = input.value.trim();
  input.value = "";
  const [clientId, entry] = addPending(body || file.name, null);
  entry.body = body;
  entry.li.classList.add("picture");
  sendFile(file, {
    url: uploadsApi,
    progress: (percent) => setPendingState(entry, "sending", `uploading ${Math.round(percent)}%…`),
    load: (status, answer) => {
      const accepted = status === 202 && answer && answer.uploads && answer.uploads[0];
      if (!accepted) {
        setPendingState(entry, "failed", `not sent: ${(answer && answer.error) || `error ${status}`}`);
        return;
      }
      entry.upload = accepted.id;
      transmit(clientId, entry);
    },
    error: () => setPendingState(entry, "failed", "not sent: the upload did not reach the server"),
    abort: () => setPendingState(entry, "failed", "not sent: the upload was stopped"),
  });
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
  if (frame.code === "rate_limited" || frame.code === "unavailable") {
    // Too fast, or the site's database away for a moment: the same message again, later.
    const wait = Math.max(1, frame.retry_after || 1);
    const why = frame.code === "rate_limited" ? "slow down" : "the site is busy";
    setPendingState(entry, "waiting", `${why}: sending again in ${Math.ceil(wait)} s`);
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
  // As the server lists them: the first names (of those the page has heard of), and the
  // page's own. A join told to a page whose list is full is counted, not listed.
  const byName = (a, b) => a.localeCompare(b);
  const names = Array.from(present).sort(byName).slice(0, presentLimit);
  if (!names.includes(me)) {
    names.push(me);
    names.sort(byName);
  }
  const items = names.map((name) =>
    el("li", name === me ? "me" : "", name === me ? `${name} (you)` : name),
  );
  const more = presentCount - names.length;
  if (more > 0) items.push(el("li", "more", `and ${more} more`));
  presenceList.replaceChildren(...items);
}

function onPresence(frame) {
  if (Array.isArray(frame.users)) {
    present.clear();
    frame.users.forEach((name) => present.add(name));
    if (Number.isInteger(frame.limit)) presentLimit = frame.limit;
    present.add(me); // this page is connected, whether its name is among the first or not
  }
  (frame.joined || []).forEach((name) => present.add(name));
  (frame.left || []).forEach((name) => present.delete(name));
  if (Number.isInteger(frame.count)) presentCount = frame.count;
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
        readSoon();
        break;
      }
      case "chat.update":
        onUpdate(frame);
        break;
      case "chat.typing":
        onTyping(frame);
        break;
      case "chat.activity":
        onActivity(frame);
        break;
      case "chat.mention":
        onMention(frame);
        break;
      case "chat.read":
        onRead(frame);
        break;
      case "chat.revisions":
        onRevisions(frame);
        break;
      case "chat.progress":
        onProgress(frame);
        break;
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
    if (document.visibilityState === "visible") readSoon();
  });
  input.addEventListener("input", noteTyping);

  log.addEventListener("scroll", maybeLoadOlder, { passive: true });

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const body = input.value.trim();
    if (!body) return;
    input.value = "";
    addPending(body);
  });

  fileInput.addEventListener("change", () => {
    for (const file of fileInput.files) sendPicture(file);
    fileInput.value = "";
  });
  input.addEventListener("paste", (event) => {
    const files = Array.from(event.clipboardData?.files || []);
    if (!files.length) return;
    event.preventDefault();
    files.forEach(sendPicture);
  });
  root.addEventListener("dragover", (event) => {
    if (event.dataTransfer?.types.includes("Files")) event.preventDefault();
  });
  root.addEventListener("drop", (event) => {
    const files = Array.from(event.dataTransfer?.files || []);
    if (!files.length) return;
    event.preventDefault();
    files.forEach(sendPicture);
  });

  input.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });

  connect();
}
