/* What the upload page says about itself: the connection line above the gallery (connecting,
 * live, offline, or logged out with a link to log in again), and the announcements a screen
 * reader speaks (a picture is ready, failed, deleted). */

import { el } from "../site/dom.js";
import { LOGIN_URL } from "./config.js";

const connection = document.getElementById("connection");
const announcer = document.getElementById("announcer");

export function announce(text) {
  announcer.textContent = text;
}

export function setConnection(state, text) {
  // Logged out is final: a later state of the socket must not hide the way back in.
  if (connection.dataset.state === "ended") return;
  connection.dataset.state = state;
  connection.querySelector(".connection-text").textContent = text;
}

/** The server no longer knows this session (an HTTP 401, or the socket closed as unauthenticated). */
export function sessionEnded() {
  // Another page (the chat's) sends files with api.js and says this its own way.
  if (!connection) return;
  connection.dataset.state = "ended";
  const text = connection.querySelector(".connection-text");
  text.textContent = "";
  text.append("You are logged out. ", Object.assign(el("a", "", "Log in again"), { href: LOGIN_URL }));
}
