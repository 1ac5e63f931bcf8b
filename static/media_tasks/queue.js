/* The upload queue: picked files wait for one of PARALLEL_UPLOADS requests, and each card shows
 * its file's bytes going up until the server accepts the file (processing comes next) or
 * refuses it (the card says why, and offers a retry if the fault was the server's or the
 * network's). */

import { errorText } from "../site/wire.js";
import { sendFile } from "./api.js";
import { uploadEnded, uploadStarted } from "./grid.js";

const PARALLEL_UPLOADS = 3;
const waiting = []; // {card, file}, first in first out
const sending = new Map(); // card -> its request

export function enqueue(card, file) {
  waiting.push({ card, file });
  pump();
}

/** A waiting card leaves the queue (its Cancel, before its turn came). */
export function withdraw(card) {
  const index = waiting.findIndex((item) => item.card === card);
  if (index >= 0) waiting.splice(index, 1);
}

/** Cancel the request of a card whose file is being sent. */
export function abort(card) {
  const xhr = sending.get(card);
  if (xhr) xhr.abort();
}

function pump() {
  while (sending.size < PARALLEL_UPLOADS && waiting.length) {
    const { card, file } = waiting.shift();
    send(card, file);
  }
}

function send(card, file) {
  card.setPhase("uploading");
  card.setBar(0, "Uploading 0 %");
  uploadStarted();
  const finished = () => {
    sending.delete(card);
    pump();
    uploadEnded();
  };
  const xhr = sendFile(file, {
    progress(percent) {
      card.setBar(percent, percent >= 100 ? "Uploaded · checking…" : `Uploading ${Math.floor(percent)} %`);
    },
    load(status, body) {
      if (status === 202 && body && body.uploads && body.uploads.length) {
        card.accepted(body.uploads[0].id);
        finished();
        card.refresh();
        return;
      }
      const reason = errorText(
        body,
        status === 413
          ? `${file.name}: the file is too large for the server`
          : `${file.name}: the upload failed (HTTP ${status})`,
      );
      card.reject(reason, status >= 500 ? file : null);
      finished();
    },
    error() {
      card.reject(`${file.name}: the upload did not reach the server (network error)`, file);
      finished();
    },
    abort() {
      card.dismiss();
      finished();
    },
  });
  sending.set(card, xhr);
}
