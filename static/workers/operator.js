/* The operators' page: /ws/operator/ sends the figures every few seconds; buttons send
 * ops.cancel, ops.retry, ops.pause and ops.resume (workers/operator.py). */

import { CLOSE, errorText } from "../site/wire.js";

const status = document.getElementById("ops-status");
const channels = document.querySelector("#ops-channels tbody");
const workers = document.querySelector("#ops-workers tbody");
const canChange = document.getElementById("ops-channels").dataset.canChange === "1";
let ws = null;

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function send(frame) {
  if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify(frame));
}

function render(overview) {
  document.getElementById("ops-window").textContent = String(Math.round(overview.window / 60));
  channels.replaceChildren(
    ...Object.entries(overview.channels).map(([name, row]) => {
      const tr = document.createElement("tr");
      const age = row.oldest_ready_age;
      tr.append(
        cell(row.paused ? `${name} (paused)` : name),
        cell(String(row.counts.queued)),
        cell(String(row.counts.running)),
        cell(String(row.counts.waiting)),
        cell(String(row.counts.failed)),
        cell(age === null ? "–" : `${age.toFixed(1)} s`),
        cell((row.throughput * 60).toFixed(1)),
        cell(`${(row.failure_rate * 100).toFixed(1)} %`),
      );
      const actions = document.createElement("td");
      if (canChange) {
        const button = document.createElement("button");
        button.type = "button";
        button.textContent = row.paused ? "Resume" : "Pause";
        button.addEventListener("click", () =>
          send({ type: row.paused ? "ops.resume" : "ops.pause", channel: name }),
        );
        actions.append(button);
      }
      tr.append(actions);
      return tr;
    }),
  );
  workers.replaceChildren(
    ...overview.workers.map((worker) => {
      const tr = document.createElement("tr");
      const running = Object.entries(worker.running).map(([c, job]) => `${c}: job ${job}`);
      tr.append(
        cell(worker.worker),
        cell(worker.channels.join(", ")),
        cell(running.join(", ") || "idle"),
        cell(`${worker.heartbeat_age.toFixed(0)} s ago`),
      );
      return tr;
    }),
  );
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  ws = new WebSocket(`${scheme}//${location.host}/ws/operator/`);
  ws.addEventListener("message", (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type === "ops.overview") {
      status.textContent = `Live · ${new Date().toLocaleTimeString()}`;
      render(frame);
    } else if (frame.type === "ops.done") {
      status.textContent = `${frame.action}: ${frame.changed ? "done" : "nothing to change"}`;
    } else if (frame.type === "ops.error") {
      status.textContent = errorText(frame, "refused");
    }
  });
  ws.addEventListener("close", (event) => {
    if (event.code === CLOSE.unauthenticated || event.code === CLOSE.not_found) {
      status.textContent = "Not allowed: log in as staff.";
      return;
    }
    status.textContent = "Reconnecting…";
    setTimeout(connect, 2000);
  });
}

const form = document.getElementById("ops-job");
if (form) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const job = Number(new FormData(form).get("job"));
    send({ type: `ops.${event.submitter.value}`, job });
  });
}
connect();
