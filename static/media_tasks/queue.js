/* The upload queue: picked files wait for one of PARALLEL_UPLOADS resumable uploads
 * (resumable.js), and each card shows its file's bytes going up, across a dropped connection
 * too, until the server accepts the file (processing comes next) or refuses it (the card says
 * why, and offers a retry if the fault was the server's or the network's: the retry resumes
 * from what the server has; on S3 the file goes straight to the bucket, direct.js). */

import { errorText } from "../site/wire.js";
import { formatBytes } from "./format.js";
import { uploadEnded, uploadStarted } from "./grid.js";
import { DIRECT_API } from "./config.js";
import { sendDirect } from "./direct.js";
import { sendResumable } from "./resumable.js";

// Straight to the bucket where the site stores on S3, else resumably through the site.
const sendUpload = DIRECT_API ? sendDirect : sendResumable;

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

/** Cancel the upload of a card whose file is being sent (the server deletes its bytes). */
export function abort(card) {
  const upload = sending.get(card);
  if (!upload) return;
  upload.abort();
  sending.delete(card);
  card.dismiss();
  pump();
  uploadEnded();
}

function pump() {
  while (sending.size < PARALLEL_UPLOADS && waiting.length) {
    const { card, file } = waiting.shift();
    send(card, file);
  }
}

function send(card, file) {
  let high = 0;
  card.setPhase("uploading");
  card.setBar(0, "Uploading 0 %");
  uploadStarted();
  const finished = () => {
    sending.delete(card);
    pump();
    uploadEnded();
  };
  const upload = sendUpload(file, {
    progress(sent, total) {
      // After a cut the client goes on from the server's offset, which may be up to a chunk
      // behind what this bar showed: the bar holds until the bytes pass it again.
      high = Math.max(high, sent);
      const percent = total ? (high / total) * 100 : 0;
      card.node.dataset.bytesSent = String(high);
      card.setBar(
        percent,
        percent >= 100
          ? "Uploaded · checking…"
          : `Uploading ${Math.floor(percent)} % · ${formatBytes(sent)} of ${formatBytes(total)}`,
      );
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
      card.reject(reason, status >= 500 || status === 429 ? file : null);
      finished();
    },
    error() {
      card.reject(`${file.name}: the upload did not reach the server (network error)`, file);
      finished();
    },
  });
  sending.set(card, upload);
}
