/* One card per upload. Its phase: "waiting" to be sent, "uploading", "rejected" (refused
 * before processing: nothing was stored), then as its jobs go (jobs.js) "queued",
 * "processing", "done" or "failed"; a gallery card starts as "new", not rendered yet, since
 * its first state is not news to announce. Its one button cancels (the upload, or its
 * processing while queued or running), dismisses, retries, or deletes after a second click. */

import { el } from "../site/dom.js";
import { api, uploadUrl } from "./api.js";
import { detailsOf } from "./details.js";
import { formatBytes } from "./format.js";
import { cards, deleted, heldBack, place, updateEmpty } from "./grid.js";
import { KINDS, deriveState, mergeJob, runningMessage } from "./jobs.js";
import { isColour, pictureOf, placeholderOf } from "./picture.js";
import { abort, enqueue, withdraw } from "./queue.js";
import { announce } from "./status.js";

export class Card {
  constructor({ name, local }) {
    this.id = null;
    this.data = null;
    this.jobs = {};
    this.local = local; // uploaded from this page: keeps its bar at 100 % once done
    this.phase = local ? "waiting" : "new";
    this.refreshing = null;
    this.refreshAgain = false;
    this.build(name);
  }

  build(name) {
    const node = (this.node = el("article", "upload-card"));
    node.dataset.state = this.phase;

    this.media = el("div", "media");
    this.placeholder = el("img", "placeholder");
    this.placeholder.alt = "";
    this.placeholder.hidden = true;
    this.media.append(this.placeholder, el("span", "media-icon"));

    const body = el("div", "body");
    this.title = el("h3", "name", name);
    this.title.title = name;

    this.meter = el("div", "meter");
    this.bar = el("div", "track");
    this.bar.setAttribute("role", "progressbar");
    this.bar.setAttribute("aria-valuemin", "0");
    this.bar.setAttribute("aria-valuemax", "100");
    this.bar.setAttribute("aria-valuenow", "0");
    this.bar.setAttribute("aria-label", `Progress of ${name}`);
    this.fill = el("span", "fill");
    this.bar.append(this.fill);
    this.status = el("p", "status");
    this.meter.append(this.bar, this.status);

    this.error = el("p", "error");
    this.error.setAttribute("role", "alert");
    this.error.hidden = true;

    this.facts = el("p", "facts");
    this.swatches = el("ul", "swatches");
    this.swatches.setAttribute("aria-label", "Dominant colours");
    this.more = el("details", "more");
    this.more.append(el("summary", "", "Details"));
    this.more.hidden = true;
    this.more.addEventListener("toggle", () => this.more.open && this.loadSimilar());

    const actions = el("div", "actions");
    this.button = el("button", "secondary", "Cancel");
    this.button.type = "button";
    this.button.addEventListener("click", () => this.onButton());
    this.button.addEventListener("blur", () => this.disarm());
    this.download = el("a", "download-original", "Download original");
    this.download.hidden = true;
    actions.append(this.button, this.download);

    body.append(this.title, this.meter, this.error, this.facts, this.swatches, this.more, actions);
    node.append(this.media, body);
  }

  // ---- state

  setPhase(phase) {
    if (phase === this.phase) return;
    const before = this.phase;
    this.phase = phase;
    this.node.dataset.state = phase;
    if (before !== "new" && this.node.isConnected) {
      const name = this.title.textContent;
      if (phase === "done") announce(`${name} is ready.`);
      if (phase === "failed" || phase === "rejected") announce(`${name} failed: ${this.error.textContent}`);
    }
    this.disarm();
  }

  setBar(percent, text) {
    const value = Math.max(0, Math.min(100, Math.round(percent)));
    this.bar.setAttribute("aria-valuenow", String(value));
    this.bar.setAttribute("aria-valuetext", text);
    // Through CSSOM: the page's CSP allows no style attributes.
    this.fill.style.width = `${value}%`;
    this.status.textContent = text;
  }

  /** The id the server gave the upload sent from this card. */
  bind(id) {
    this.id = id;
    this.node.dataset.uploadId = String(id);
    const other = cards.get(id);
    if (other && other !== this) {
      // Events for this id arrived before the upload's response: take over what they knew.
      for (const kind of KINDS) if (other.jobs[kind]) this.applyJob(kind, other.jobs[kind]);
      if (other.data) this.applyData(other.data);
      other.node.remove();
      heldBack.delete(other);
    }
    cards.set(id, this);
  }

  applyJob(kind, job) {
    const merged = mergeJob(this.jobs[kind], job);
    if (!merged) return;
    this.jobs[kind] = merged;
    this.render();
  }

  applyData(data) {
    this.data = data;
    if (!this.id) this.bind(data.id);
    for (const job of data.jobs || []) this.applyJob(job.kind, job);
    this.render();
    this.renderData();
  }

  // ---- what the upload's file went through

  /** The server took the file as upload `id`; its processing comes next. */
  accepted(id) {
    this.setBar(0, "Waiting for a worker · 0 %");
    this.setPhase("queued");
    this.bind(id);
    this.render();
  }

  /** Refused before processing began: nothing was stored, so the card can only go away. */
  reject(reason, retryFile) {
    this.error.textContent = reason;
    this.error.hidden = false;
    this.setBar(100, "Not uploaded");
    this.setPhase("rejected");
    this.node.classList.add("with-meter");
    this.retryFile = retryFile || null;
    this.button.textContent = retryFile ? "Retry" : "Dismiss";
  }

  /** Off the page, for a file that was never stored. */
  dismiss() {
    this.node.remove();
    updateEmpty();
  }

  // ---- rendering

  render() {
    if (this.phase === "waiting" || this.phase === "uploading" || this.phase === "rejected") return;
    const { status, progress, error } = deriveState(this.jobs, this.data);
    if (status === "done") {
      this.setBar(100, "Done");
    } else if (status === "failed") {
      this.setBar(100, "Failed");
    } else if (status === "processing") {
      const message = runningMessage(this.jobs);
      this.setBar(progress, `Processing ${Math.round(progress)} %${message ? ` · ${message}` : ""}`);
    } else {
      this.setBar(progress, `Waiting for a worker · ${Math.round(progress)} %`);
    }
    this.error.textContent = error;
    this.error.hidden = !error;
    this.setPhase(status);
    this.node.classList.toggle("with-meter", this.local || status !== "done");
    if (!this.armed && !this.button.disabled) {
      this.button.textContent = this.processing() ? "Cancel" : "Delete";
    }
  }

  renderData() {
    const data = this.data;
    const analysis = data.analysis;
    this.title.textContent = data.name;
    this.title.title = data.name;
    this.bar.setAttribute("aria-label", `Progress of ${data.name}`);

    const colour = analysis && isColour(analysis.average_colour) ? analysis.average_colour : "";
    if (colour) this.media.style.backgroundColor = colour;
    if (data.original_url && this.download.getAttribute("href") !== data.original_url) {
      // The owner's own original (the API answers only them), metadata and all.
      this.download.href = data.original_url;
      this.download.download = data.name;
      this.download.hidden = false;
    }
    const placeholder = placeholderOf(data);
    if (placeholder && this.placeholder.dataset.kind !== placeholder.kind) {
      this.placeholder.src = placeholder.url;
      this.placeholder.dataset.kind = placeholder.kind;
      this.placeholder.hidden = false;
    }
    if (data.renditions && data.renditions.length && !this.picture) this.renderPicture();

    const facts = [`${data.width} × ${data.height}`, data.format, formatBytes(data.bytes)];
    if (analysis && analysis.animated) facts.push(`${analysis.frames} frames`);
    this.facts.textContent = facts.filter(Boolean).join(" · ");

    if (analysis && !this.swatches.children.length) {
      for (const hex of analysis.dominant_colours || []) {
        if (!isColour(hex)) continue;
        const swatch = el("li", "swatch");
        swatch.style.backgroundColor = hex;
        swatch.title = hex;
        swatch.append(el("span", "visually-hidden", hex));
        this.swatches.append(swatch);
      }
    }
    this.renderDetails();
  }

  renderPicture() {
    const picture = pictureOf(this.data);
    if (!picture) return;
    this.picture = picture;
    const img = picture.querySelector("img.thumb");
    img.addEventListener("load", () => this.node.classList.add("loaded"));
    img.addEventListener("error", () => this.node.classList.add("broken"));
    const link = el("a", "open");
    link.href = this.data.original_url;
    link.target = "_blank";
    link.rel = "noopener";
    link.append(picture);
    this.media.append(link);
  }

  renderDetails() {
    const list = detailsOf(this.data, this.similar);
    const old = this.more.querySelector("dl");
    if (old) old.replaceWith(list);
    else this.more.append(list);
    this.more.hidden = false;
  }

  async loadSimilar() {
    if (this.similar !== undefined || !this.data) return;
    const response = await api(this.data.url);
    if (!response.ok) return;
    const detail = await response.json();
    this.similar = (detail.similar || []).length;
    this.renderDetails();
  }

  // ---- reading the server's view

  /** Re-read the upload; concurrent calls collapse into one more read after the current one. */
  refresh() {
    if (!this.id) return Promise.resolve();
    if (this.refreshing) {
      this.refreshAgain = true;
      return this.refreshing;
    }
    this.refreshing = (async () => {
      try {
        do {
          this.refreshAgain = false;
          const response = await api(uploadUrl(this.id));
          if (response.status === 404) {
            this.forget();
            return;
          }
          if (response.ok) this.applyData(await response.json());
        } while (this.refreshAgain);
      } catch (error) {
        // Offline for a moment: the next (re)connect reads everything again.
      } finally {
        this.refreshing = null;
      }
      if (this.data && !this.node.isConnected) place(this);
    })();
    return this.refreshing;
  }

  forget() {
    if (this.id !== null) {
      if (cards.get(this.id) === this) cards.delete(this.id);
      deleted.add(this.id);
    }
    heldBack.delete(this);
    this.node.remove();
    updateEmpty();
  }

  // ---- the one button: cancel, dismiss, retry or delete (delete asks for a second click)

  /** Whether the server still works on the upload: its button cancels that work. */
  processing() {
    return this.id !== null && (this.phase === "queued" || this.phase === "processing");
  }

  async cancel() {
    this.button.disabled = true;
    this.button.textContent = "Cancelling…";
    try {
      const response = await api(`${uploadUrl(this.id)}cancel`, { method: "POST" });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      this.button.disabled = false;
      this.applyData(await response.json());
      announce(`${this.title.textContent}: processing cancelled.`);
    } catch (error) {
      this.button.disabled = false;
      this.button.textContent = "Cancel";
      this.error.textContent = `Could not cancel: ${error.message}. Try again.`;
      this.error.hidden = false;
    }
  }

  onButton() {
    if (this.phase === "waiting") {
      withdraw(this);
      this.dismiss();
      return;
    }
    if (this.phase === "uploading") {
      abort(this);
      return;
    }
    if (this.phase === "rejected") {
      if (this.retryFile) {
        this.error.hidden = true;
        this.setPhase("waiting");
        this.button.textContent = "Cancel";
        enqueue(this, this.retryFile);
      } else {
        this.dismiss();
      }
      return;
    }
    if (this.processing()) {
      this.cancel();
      return;
    }
    if (!this.armed) {
      this.armed = true;
      this.button.textContent = "Confirm delete";
      this.button.classList.add("danger");
      this.disarmTimer = setTimeout(() => this.disarm(), 4000);
      return;
    }
    this.delete();
  }

  disarm() {
    if (!this.armed) return;
    this.armed = false;
    clearTimeout(this.disarmTimer);
    this.button.classList.remove("danger");
    this.button.textContent = "Delete";
  }

  async delete() {
    this.armed = false;
    clearTimeout(this.disarmTimer);
    this.button.disabled = true;
    this.button.textContent = "Deleting…";
    try {
      const response = await api(uploadUrl(this.id), { method: "DELETE" });
      if (response.status === 204 || response.status === 404) {
        announce(`${this.title.textContent} deleted.`);
        this.forget();
        return;
      }
      throw new Error(`HTTP ${response.status}`);
    } catch (error) {
      this.button.disabled = false;
      this.button.classList.remove("danger");
      this.button.textContent = "Delete";
      this.error.textContent = `Could not delete: ${error.message}. Try again.`;
      this.error.hidden = false;
    }
  }
}
