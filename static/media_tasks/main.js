/* The upload page: drop or pick pictures, watch each one's bytes go up (queue.js), then its
 * processing live from /ws/jobs/ (socket.js), and browse the gallery of past uploads
 * (gallery.js, grid.js), one card per upload (cards.js).
 *
 * Native ES modules, no build step and no inline code: the site runs under a strict
 * Content-Security-Policy, so widths and colours are set through CSSOM and every user-provided
 * text goes in through textContent. The server is the truth; the socket is only the fast path.
 *
 * This entry only starts the page; the modules it imports do the work. */

import { ON_PAGE } from "./config.js";
import { listenForMore, loadPage } from "./gallery.js";
import { updateEmpty } from "./grid.js";
import { listenForFiles } from "./picker.js";
import { connect, nudge } from "./socket.js";

if (ON_PAGE) {
  listenForMore();
  listenForFiles();
  window.addEventListener("online", () => nudge());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") nudge();
  });
  updateEmpty();
  // Show the gallery at once; the socket's first snapshot reads it again to stay in step.
  loadPage(1).catch(() => {});
  connect();
}
