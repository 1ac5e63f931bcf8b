/* The upload page: drop or pick pictures, watch each one's bytes go up (XHR upload progress),
 * then its processing live from /ws/jobs/, and browse the gallery of past uploads.
 *
 * No build step and no inline code: the page may run under a strict Content-Security-Policy,
 * so widths and colours are set through CSSOM and every user-provided text goes in through
 * textContent. The server is the truth; the socket is only the fast path. On every (re)connect
 * the page applies the snapshot of unfinished jobs and re-reads the newest uploads, so nothing
 * that finished while it was away is missed. */
(() => {
  "use strict";

  const root = document.getElementById("uploads");
  if (!root) return;

  const API = root.dataset.api;
  const WS_PATH = root.dataset.ws;
  const LOGIN_URL = root.dataset.login;
  const MAX_BYTES = Number(root.dataset.maxBytes) || 0;
  const PARALLEL_UPLOADS = 3;
  const BACKOFF_FIRST_MS = 500;
  const BACKOFF_MAX_MS = 10000;
  // The image box is 4:3 in a grid column of at most ~20rem, or the whole width on a phone.
  const SIZES = "(max-width: 40rem) calc(100vw - 1.5rem), 20rem";

  const gallery = document.getElementById("gallery");
  const dropzone = document.getElementById("dropzone");
  const fileInput = document.getElementById("file-input");
  const loadMore = document.getElementById("load-more");
  const emptyNote = document.getElementById("empty");
  const connection = document.getElementById("connection");
  const announcer = document.getElementById("announcer");

  // Job kinds by the named channel they run on (DESIGN.md: thumbnails, compute).
  const KIND_BY_CHANNEL = { thumbnails: "thumbnails", compute: "analysis" };
  const KINDS = ["thumbnails", "analysis"];
  // Events can arrive out of order with API reads; a job never moves back down this ladder.
  const RANK = { queued: 0, running: 1, succeeded: 2, failed: 2, cancelled: 2 };

  /** @type {Map<number, Card>} cards by upload id */
  const cards = new Map();
  // Ids deleted from this page: late events about them must not bring them back.
  const deleted = new Set();
  // While an upload request is in flight its id is unknown, so a card for an unknown id is held
  // back until then: it may be the one being uploaded, which already has its card.
  let uploadsInFlight = 0;
  const heldBack = new Set();
  const uploadQueue = [];
  let activeUploads = 0;
  let nextPage = null;

  // ------------------------------------------------------------------ small helpers

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function csrfToken() {
    const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
    return cookie ? decodeURIComponent(cookie.slice("csrftoken=".length)) : root.dataset.csrf;
  }

  function announce(text) {
    announcer.textContent = text;
  }

  function formatBytes(bytes) {
    if (!Number.isFinite(bytes)) return "";
    if (bytes < 1000) return `${bytes} B`;
    if (bytes < 1e6) return `${(bytes / 1e3).toFixed(bytes < 1e4 ? 1 : 0)} kB`;
    return `${(bytes / 1e6).toFixed(1)} MB`;
  }

  function isColour(value) {
    return typeof value === "string" && /^#[0-9a-f]{6}$/i.test(value);
  }

  function isDataImage(value) {
    return typeof value === "string" && value.startsWith("data:image/");
  }

  // srcset splits on commas and spaces, which a storage URL could in principle contain.
  function srcsetUrl(url) {
    return url.replace(/ /g, "%20").replace(/,/g, "%2C");
  }

  function srcset(renditions) {
    const byWidth = new Map();
    for (const r of renditions) if (!byWidth.has(r.width)) byWidth.set(r.width, r);
    return [...byWidth.values()]
      .sort((a, b) => a.width - b.width)
      .map((r) => `${srcsetUrl(r.url)} ${r.width}w`)
      .join(", ");
  }

  async function api(url, options = {}) {
    const response = await fetch(url, {
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
      ...options,
    });
    if (response.status === 401) {
      sessionEnded();
      throw new Error("logged out");
    }
    return response;
  }

  function sessionEnded() {
    connection.dataset.state = "ended";
    const text = connection.querySelector(".connection-text");
    text.textContent = "";
    text.append("You are logged out. ", Object.assign(el("a", "", "Log in again"), { href: LOGIN_URL }));
  }

  function updateEmpty() {
    emptyNote.hidden = gallery.children.length > 0;
  }

  // ------------------------------------------------------------------ one card per upload

  class Card {
    constructor({ name, local }) {
      this.id = null;
      this.data = null;
      this.jobs = {};
      this.local = local; // uploaded from this page: keeps its bar at 100 % once done
      // "new": not rendered yet; a gallery card's first state is not news to announce.
      this.phase = local ? "waiting" : "new";
      this.refreshing = null;
      this.refreshAgain = false;
      this.xhr = null;
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
      actions.append(this.button);

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
      const current = this.jobs[kind];
      const status = job.status in RANK ? job.status : "queued";
      if (current && RANK[status] < RANK[current.status]) return;
      const sameStatus = current && current.status === status;
      this.jobs[kind] = {
        status,
        progress: sameStatus ? Math.max(current.progress, job.progress || 0) : job.progress || 0,
        message: job.message || "",
        error: job.error || (current && current.error) || "",
      };
      this.render();
    }

    applyData(data) {
      this.data = data;
      if (!this.id) this.bind(data.id);
      for (const job of data.jobs || []) this.applyJob(job.kind, job);
      this.render();
      this.renderData();
    }

    /** The upload's state from its jobs, like the server's: failed if one failed, done if all did. */
    derived() {
      const jobs = KINDS.map((kind) => this.jobs[kind]).filter(Boolean);
      if (!jobs.length) {
        const data = this.data || {};
        return { status: data.status || "queued", progress: data.progress || 0, error: data.error || "" };
      }
      const failed = jobs.find((j) => j.status === "failed" || j.status === "cancelled");
      if (failed) {
        const reason = failed.status === "cancelled" ? "processing was cancelled" : failed.error;
        return { status: "failed", progress: 100, error: reason || (this.data && this.data.error) || "processing failed" };
      }
      const progress = KINDS.reduce((sum, kind) => {
        const job = this.jobs[kind];
        return sum + (!job ? 0 : job.status === "succeeded" ? 100 : job.progress);
      }, 0) / KINDS.length;
      if (jobs.length === KINDS.length && jobs.every((j) => j.status === "succeeded")) {
        return { status: "done", progress: 100, error: "" };
      }
      const started = jobs.some((j) => j.status !== "queued");
      return { status: started ? "processing" : "queued", progress, error: "" };
    }

    render() {
      if (this.phase === "waiting" || this.phase === "uploading" || this.phase === "rejected") return;
      const { status, progress, error } = this.derived();
      if (status === "done") {
        this.setBar(100, "Done");
      } else if (status === "failed") {
        this.setBar(100, "Failed");
      } else if (status === "processing") {
        const messages = KINDS.map((k) => this.jobs[k]).filter((j) => j && j.status === "running" && j.message);
        const detail = messages.length ? ` · ${messages[messages.length - 1].message}` : "";
        this.setBar(progress, `Processing ${Math.round(progress)} %${detail}`);
      } else {
        this.setBar(progress, `Waiting for a worker · ${Math.round(progress)} %`);
      }
      this.error.textContent = error;
      this.error.hidden = !error;
      this.setPhase(status);
      this.node.classList.toggle("with-meter", this.local || status !== "done");
      if (!this.armed && !this.button.disabled) this.button.textContent = "Delete";
    }

    renderData() {
      const data = this.data;
      const analysis = data.analysis;
      this.title.textContent = data.name;
      this.title.title = data.name;
      this.bar.setAttribute("aria-label", `Progress of ${data.name}`);

      const colour = analysis && isColour(analysis.average_colour) ? analysis.average_colour : "";
      if (colour) this.media.style.backgroundColor = colour;
      if (isDataImage(data.placeholder) && this.placeholder.getAttribute("src") !== data.placeholder) {
        this.placeholder.src = data.placeholder;
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
      const renditions = this.data.renditions;
      const webp = renditions.filter((r) => r.format === "WEBP");
      const jpeg = renditions.filter((r) => r.format === "JPEG");
      const fallback = jpeg.length ? jpeg : webp;
      if (!fallback.length) return;
      // The img's own src: the smallest fallback that still fills a card on a dense screen.
      const sorted = [...fallback].sort((a, b) => a.width - b.width);
      const src = sorted.find((r) => r.width >= 640) || sorted[sorted.length - 1];

      const picture = (this.picture = el("picture"));
      if (webp.length && jpeg.length) {
        const source = el("source");
        source.type = "image/webp";
        source.srcset = srcset(webp);
        source.sizes = SIZES;
        picture.append(source);
      }
      const img = el("img", "thumb");
      img.alt = this.data.name;
      img.width = src.width;
      img.height = src.height;
      img.decoding = "async";
      img.loading = "lazy";
      img.sizes = SIZES;
      img.srcset = srcset(fallback);
      img.src = src.url;
      img.addEventListener("load", () => this.node.classList.add("loaded"));
      img.addEventListener("error", () => this.node.classList.add("broken"));
      picture.append(img);
      const link = el("a", "open");
      link.href = this.data.original_url;
      link.target = "_blank";
      link.rel = "noopener";
      link.append(picture);
      this.media.append(link);
    }

    renderDetails() {
      const data = this.data;
      const analysis = data.analysis;
      const rows = [];
      if (analysis) {
        const exif = analysis.exif || {};
        const model = exif.model || "";
        const camera = exif.make && !model.toLowerCase().startsWith(exif.make.toLowerCase())
          ? `${exif.make} ${model}`.trim()
          : model || exif.make;
        if (camera) rows.push(["Camera", camera]);
        if (exif.lens) rows.push(["Lens", exif.lens]);
        if (exif.date_taken) rows.push(["Taken", formatDate(exif.date_taken)]);
        const exposure = [];
        if (exif.exposure_time) exposure.push(formatExposure(exif.exposure_time));
        if (exif.f_number) exposure.push(`f/${exif.f_number}`);
        if (exif.iso) exposure.push(`ISO ${exif.iso}`);
        if (exif.focal_length) exposure.push(`${exif.focal_length} mm`);
        if (exposure.length) rows.push(["Exposure", exposure.join(" · ")]);
        if (exif.gps && Number.isFinite(exif.gps.lat) && Number.isFinite(exif.gps.lon)) {
          const { lat, lon } = exif.gps;
          const link = el("a", "", `${lat.toFixed(5)}, ${lon.toFixed(5)}`);
          link.href = `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=15/${lat}/${lon}`;
          link.target = "_blank";
          link.rel = "noopener noreferrer";
          rows.push(["Location", link]);
        }
        if (analysis.mode) rows.push(["Colour mode", analysis.mode]);
      }
      rows.push(["Uploaded", formatDate(data.created_at)]);
      const original = el("a", "", "Open the original");
      original.href = data.original_url;
      original.target = "_blank";
      original.rel = "noopener";
      rows.push(["File", original]);
      if (this.similar !== undefined) {
        rows.push(["Similar", this.similar === 1 ? "1 other picture" : `${this.similar} other pictures`]);
      }

      const list = el("dl");
      for (const [term, value] of rows) {
        list.append(el("dt", "", term));
        const dd = el("dd");
        if (value instanceof Node) dd.append(value);
        else dd.textContent = value;
        list.append(dd);
      }
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

    // ---- the upload itself

    upload(file) {
      this.setPhase("uploading");
      this.setBar(0, "Uploading 0 %");
      uploadsInFlight += 1;
      const form = new FormData();
      form.append("image", file, file.name);
      const xhr = (this.xhr = new XMLHttpRequest());
      xhr.open("POST", API);
      xhr.setRequestHeader("X-CSRFToken", csrfToken());
      xhr.setRequestHeader("Accept", "application/json");
      xhr.upload.addEventListener("progress", (event) => {
        if (!event.lengthComputable) return;
        const percent = (event.loaded / event.total) * 100;
        this.setBar(percent, percent >= 100 ? "Uploaded · checking…" : `Uploading ${Math.floor(percent)} %`);
      });
      const finished = () => {
        this.xhr = null;
        uploadsInFlight -= 1;
        activeUploads -= 1;
        pumpUploads();
        if (uploadsInFlight === 0) releaseHeldBack();
      };
      xhr.addEventListener("load", () => {
        let body = null;
        try {
          body = JSON.parse(xhr.responseText);
        } catch {
          body = null;
        }
        if (xhr.status === 202 && body && body.uploads && body.uploads.length) {
          this.setBar(0, "Waiting for a worker · 0 %");
          this.phase = "queued";
          this.node.dataset.state = "queued";
          this.bind(body.uploads[0].id);
          this.render();
          finished();
          this.refresh();
          return;
        }
        if (xhr.status === 401) sessionEnded();
        const reason = body && body.error
          ? body.error
          : xhr.status === 413
            ? `${file.name}: the file is too large for the server`
            : `${file.name}: the upload failed (HTTP ${xhr.status})`;
        this.reject(reason, xhr.status >= 500 ? file : null);
        finished();
      });
      xhr.addEventListener("error", () => {
        this.reject(`${file.name}: the upload did not reach the server (network error)`, file);
        finished();
      });
      xhr.addEventListener("abort", () => {
        this.node.remove();
        updateEmpty();
        finished();
      });
      xhr.send(form);
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
            const response = await api(`${API}${this.id}/`);
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

    onButton() {
      if (this.phase === "waiting") {
        const index = uploadQueue.findIndex((item) => item.card === this);
        if (index >= 0) uploadQueue.splice(index, 1);
        this.node.remove();
        updateEmpty();
        return;
      }
      if (this.phase === "uploading") {
        if (this.xhr) this.xhr.abort();
        return;
      }
      if (this.phase === "rejected") {
        if (this.retryFile) {
          this.error.hidden = true;
          this.setPhase("waiting");
          this.button.textContent = "Cancel";
          enqueueUpload(this, this.retryFile);
        } else {
          this.node.remove();
          updateEmpty();
        }
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
        const response = await api(`${API}${this.id}/`, { method: "DELETE" });
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

  function formatDate(value) {
    const date = new Date(value);
    if (Number.isNaN(date.getTime())) return String(value);
    return date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  function formatExposure(seconds) {
    if (seconds >= 1) return `${Math.round(seconds * 10) / 10} s`;
    return `1/${Math.round(1 / seconds)} s`;
  }

  // ------------------------------------------------------------------ the gallery grid

  /** Whether card `a` comes after card `b` in the API's order: newest first, then highest id. */
  function olderThan(a, b) {
    const at = a.data ? a.data.created_at : "";
    const bt = b.data ? b.data.created_at : "";
    return at === bt ? a.id < b.id : at < bt;
  }

  /** Put a card (which has its data) in the grid in the API's order, below the uploads still
   * being sent. */
  function place(card) {
    // A card that another took over (see bind) or that was deleted stays out.
    if (card.node.isConnected || deleted.has(card.id) || cards.get(card.id) !== card) return;
    if (uploadsInFlight > 0 && !card.local) {
      heldBack.add(card);
      return;
    }
    let before = null;
    for (const node of gallery.children) {
      const other = cards.get(Number(node.dataset.uploadId));
      if (other && other.data && olderThan(other, card)) {
        before = node;
        break;
      }
    }
    gallery.insertBefore(card.node, before);
    updateEmpty();
  }

  function releaseHeldBack() {
    for (const card of [...heldBack]) {
      heldBack.delete(card);
      if (cards.get(card.id) === card && card.data) place(card);
      else if (cards.get(card.id) === card) card.refresh();
    }
  }

  /** The card for upload `id`, made (not yet shown) if this page has not seen it. */
  function cardFor(id) {
    let card = cards.get(id);
    if (!card) {
      card = new Card({ name: `Upload ${id}`, local: false });
      card.id = id;
      card.node.dataset.uploadId = String(id);
      cards.set(id, card);
    }
    return card;
  }

  function showUpload(data) {
    if (deleted.has(data.id)) return;
    const card = cardFor(data.id);
    card.applyData(data);
    place(card);
  }

  async function loadPage(page) {
    const response = await api(page > 1 ? `${API}?page=${page}` : API);
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const body = await response.json();
    for (const upload of body.uploads) showUpload(upload);
    if (page === 1) {
      if (nextPage === null) nextPage = body.next;
    } else {
      nextPage = body.next;
    }
    loadMore.hidden = !nextPage;
    updateEmpty();
    return body;
  }

  loadMore.addEventListener("click", async () => {
    if (!nextPage) return;
    loadMore.disabled = true;
    try {
      await loadPage(nextPage);
    } finally {
      loadMore.disabled = false;
    }
  });

  // ------------------------------------------------------------------ picking and dropping

  function enqueueUpload(card, file) {
    uploadQueue.push({ card, file });
    pumpUploads();
  }

  function pumpUploads() {
    while (activeUploads < PARALLEL_UPLOADS && uploadQueue.length) {
      const { card, file } = uploadQueue.shift();
      activeUploads += 1;
      card.upload(file);
    }
  }

  function addFiles(fileList) {
    const files = [...fileList].filter((file) => file.size > 0 || file.type);
    // Newest first, like the gallery: the last file picked ends up on top.
    for (const file of files) {
      const card = new Card({ name: file.name, local: true });
      card.button.textContent = "Cancel";
      card.setBar(0, "Waiting to upload");
      gallery.prepend(card.node);
      if (MAX_BYTES && file.size > MAX_BYTES) {
        card.reject(`${file.name}: the file is ${formatBytes(file.size)}, the limit is ${formatBytes(MAX_BYTES)}`);
        continue;
      }
      enqueueUpload(card, file);
    }
    updateEmpty();
    if (files.length) announce(files.length === 1 ? `Uploading ${files[0].name}` : `Uploading ${files.length} files`);
  }

  fileInput.addEventListener("change", () => {
    addFiles(fileInput.files);
    fileInput.value = "";
  });

  function hasFiles(event) {
    return event.dataTransfer && [...event.dataTransfer.types].includes("Files");
  }

  // The whole page accepts a drop: a file dropped beside the zone must not replace the page.
  let dragDepth = 0;
  document.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    dragDepth += 1;
    dropzone.classList.add("dragging");
  });
  document.addEventListener("dragleave", (event) => {
    if (!hasFiles(event)) return;
    dragDepth = Math.max(0, dragDepth - 1);
    if (!dragDepth) dropzone.classList.remove("dragging");
  });
  document.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
  });
  document.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth = 0;
    dropzone.classList.remove("dragging");
    addFiles(event.dataTransfer.files);
  });

  // ------------------------------------------------------------------ the jobs websocket

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

  function setConnection(state, text) {
    if (connection.dataset.state === "ended") return;
    connection.dataset.state = state;
    connection.querySelector(".connection-text").textContent = text;
  }

  const socket = {
    ws: null,
    attempt: 0,
    timer: null,
    stopped: false,

    connect() {
      clearTimeout(this.timer);
      this.timer = null;
      if (this.stopped || (this.ws && this.ws.readyState <= WebSocket.OPEN)) return;
      const scheme = location.protocol === "https:" ? "wss:" : "ws:";
      const ws = (this.ws = new WebSocket(`${scheme}//${location.host}${WS_PATH}`));
      setConnection("connecting", this.attempt ? "Reconnecting…" : "Connecting…");
      ws.addEventListener("message", (message) => {
        let frame;
        try {
          frame = JSON.parse(message.data);
        } catch {
          return;
        }
        if (frame.type === "jobs.snapshot") this.resync(frame.jobs || []);
        else if (frame.type === "job.progress" || frame.type === "job.done" || frame.type === "job.failed") {
          onJobEvent(frame);
        }
      });
      ws.addEventListener("close", (event) => {
        if (this.ws !== ws) return;
        this.ws = null;
        if (event.code === 4401) {
          this.stopped = true;
          sessionEnded();
          return;
        }
        this.retry();
      });
    },

    /** After a (re)connect: what runs now, then the newest uploads, then anything still open. */
    async resync(snapshot) {
      this.attempt = 0;
      setConnection("live", "Live");
      const seen = new Set();
      // The first page usually holds the snapshot's uploads: read it before fetching any one.
      for (const event of snapshot) onJobEvent(event, false);
      try {
        const body = await loadPage(1);
        for (const upload of body.uploads) seen.add(upload.id);
      } catch (error) {
        setConnection("offline", "Could not load the gallery; retrying…");
        if (this.ws) this.ws.close();
        return;
      }
      for (const card of cards.values()) {
        const open = card.phase === "new" || card.phase === "queued" || card.phase === "processing";
        if (card.id !== null && open && !seen.has(card.id)) card.refresh();
      }
    },

    retry() {
      if (this.stopped || this.timer) return;
      // Exponential backoff with jitter, so that many pages do not reconnect in step.
      const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.attempt);
      const delay = base / 2 + Math.random() * (base / 2);
      this.attempt += 1;
      setConnection("offline", `Offline · reconnecting in ${Math.ceil(delay / 1000)} s`);
      this.timer = setTimeout(() => this.connect(), delay);
    },

    /** The network is back or the tab is visible again: do not wait out the backoff. */
    nudge() {
      if (this.timer && !this.stopped) this.connect();
    },
  };

  window.addEventListener("online", () => socket.nudge());
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") socket.nudge();
  });

  updateEmpty();
  // Show the gallery at once; the socket's first snapshot reads it again to stay in step.
  loadPage(1).catch(() => {});
  socket.connect();
})();
