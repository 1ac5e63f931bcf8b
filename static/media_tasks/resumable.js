/* Files go up by tus (media_tasks/tus.py) through tus-js-client 4.3.1 (vendored, MIT:
 * vendor/tus-js-client/; its UMD bundle, imported for its effect, sets window.tus).
 * A chunk counts on the server once all of it arrived: after a dropped connection the client
 * asks the server for its offset and goes on from there, and after a reload the same file,
 * picked again, resumes from what the server has (the upload's URL is kept in localStorage
 * by the file's fingerprint). */

import "./vendor/tus-js-client/tus.min.js";
import { TUS_API } from "./config.js";
import { csrfToken } from "./api.js";
import { sessionEnded } from "./status.js";

// Big enough that a request's own cost is small beside its bytes; a cut costs at most this.
export const CHUNK_SIZE = 4 * 1024 * 1024;
// Waits (ms) before each new try after a network error or a 5xx; then the card offers Retry.
const RETRY_DELAYS = [0, 1000, 3000, 5000, 10000];

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** Send `file` resumably. `progress(bytesSent, bytesTotal)` as bytes are taken (it goes on
 * from the server's offset after a resume); then `load(status, body)` once the server took
 * (202, body `{uploads: [...]}`) or refused it (4xx, its error body), or `error(message)` if
 * the network failed past every retry. Returns `{abort()}`. */
export function sendResumable(file, { progress, load, error }) {
  const { Upload } = window.tus;
  const upload = new Upload(file, {
    endpoint: TUS_API,
    chunkSize: CHUNK_SIZE,
    retryDelays: RETRY_DELAYS,
    metadata: { filename: file.name, filetype: file.type },
    headers: { "X-CSRFToken": csrfToken() },
    storeFingerprintForResuming: true,
    removeFingerprintOnSuccess: true,
    onProgress: (sent, total) => progress(sent, total),
    onShouldRetry: (err, attempt, options) => {
      const status = err.originalResponse ? err.originalResponse.getStatus() : 0;
      // 409: the offset moved (a chunk the server took but whose answer was lost): ask again.
      return status === 0 || status === 409 || status >= 500;
    },
    onSuccess: async () => {
      const response = await fetch(upload.url, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      const body = await response.json().catch(() => null);
      if (response.ok && body && body.upload) load(202, { uploads: [body.upload] });
      else load(response.status, body);
    },
    onError: (err) => {
      const response = err.originalResponse;
      if (!response || response.getStatus() >= 500 || response.getStatus() === 0) {
        error(err.message);
        return;
      }
      if (response.getStatus() === 401) sessionEnded();
      load(response.getStatus(), parse(response.getBody()));
    },
  });
  upload.findPreviousUploads().then((previous) => {
    if (previous.length) upload.resumeFromPreviousUpload(previous[0]);
    upload.start();
  });
  return { abort: () => upload.abort(true) };
}
