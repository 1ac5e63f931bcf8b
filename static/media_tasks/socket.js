/* The /ws/jobs/ socket: the user's job events, live. It reconnects with backoff and jitter;
 * on every (re)connect the server first sends a snapshot of the unfinished jobs, after which
 * the page re-reads the newest uploads, so nothing that finished while it was away is missed.
 * Closed as unauthenticated (the wire's close code), it stops and the page says so. */

import { CLOSE } from "../site/wire.js";
import { WS_PATH } from "./config.js";
import { cardFor, loadPage } from "./gallery.js";
import { cards, deleted } from "./grid.js";
import { KIND_BY_CHANNEL } from "./jobs.js";
import { sessionEnded, setConnection } from "./status.js";

const BACKOFF_FIRST_MS = 500;
const BACKOFF_MAX_MS = 10000;

let ws = null;
let attempt = 0;
let timer = null;
let stopped = false;

/** Apply a job event; `read` says whether to fetch the upload when the event says too little. */
function onJobEvent(event, read = true) {
  if (typeof event.upload !== "number" || deleted.has(event.upload)) return;
  const kind = KIND_BY_CHANNEL[event.channel];
  if (!kind) return;
  const card = cardFor(event.upload);
  card.applyJob(kind, event);
  // Renditions and analysis live in the upload's JSON, not in the event.
  if (read && (event.type === "job.done" || event.type === "job.failed" || !card.data)) {
    card.refresh();
  }
}

export function connect() {
  clearTimeout(timer);
  timer = null;
  if (stopped || (ws && ws.readyState <= WebSocket.OPEN)) return;
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const socket = (ws = new WebSocket(`${scheme}//${location.host}${WS_PATH}`));
  setConnection("connecting", attempt ? "Reconnecting…" : "Connecting…");
  socket.addEventListener("message", (message) => {
    let frame;
    try {
      frame = JSON.parse(message.data);
    } catch {
      return;
    }
    if (frame.type === "jobs.snapshot") resync(frame.jobs || []);
    else if (frame.type === "job.progress" || frame.type === "job.done" || frame.type === "job.failed") {
      onJobEvent(frame);
    } else if (frame.type === "upload.ready" && cards.has(frame.upload)) {
      // Renditions and analysis both done: read the upload whole once more.
      cards.get(frame.upload).refresh();
    }
  });
  socket.addEventListener("close", (event) => {
    if (ws !== socket) return;
    ws = null;
    if (event.code === CLOSE.unauthenticated) {
      stopped = true;
      sessionEnded();
      return;
    }
    // Too many sockets or connects: wait the longest backoff before trying again.
    if (event.code === CLOSE.too_many) attempt = Math.max(attempt, 5);
    retry();
  });
}

/** After a (re)connect: what runs now, then the newest uploads, then anything still open. */
async function resync(snapshot) {
  attempt = 0;
  setConnection("live", "Live");
  const seen = new Set();
  // The first page usually holds the snapshot's uploads: read it before fetching any one.
  for (const event of snapshot) onJobEvent(event, false);
  try {
    const body = await loadPage(1);
    for (const upload of body.uploads) seen.add(upload.id);
  } catch (error) {
    setConnection("offline", "Could not load the gallery; retrying…");
    if (ws) ws.close();
    return;
  }
  for (const card of cards.values()) {
    const open = card.phase === "new" || card.phase === "queued" || card.phase === "processing";
    if (card.id !== null && open && !seen.has(card.id)) card.refresh();
  }
}

function retry() {
  if (stopped || timer) return;
  // Exponential backoff with jitter, so that many pages do not reconnect in step.
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** attempt);
  const delay = base / 2 + Math.random() * (base / 2);
  attempt += 1;
  setConnection("offline", `Offline · reconnecting in ${Math.ceil(delay / 1000)} s`);
  timer = setTimeout(connect, delay);
}

/** The network is back or the tab is visible again: do not wait out the backoff. */
export function nudge() {
  if (timer && !stopped) connect();
}
