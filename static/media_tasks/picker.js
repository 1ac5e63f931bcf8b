/* Choosing, dropping (files or whole folders) and pasting pictures: each file gets a card on top
 * of the grid and a place in the upload queue, or is refused at once when it is larger than the
 * server takes. The whole page accepts a drop: a file dropped beside the zone must not replace
 * the page. */

import { Card } from "./cards.js";
import { MAX_BYTES } from "./config.js";
import { formatBytes } from "./format.js";
import { placeOnTop, updateEmpty } from "./grid.js";
import { enqueue } from "./queue.js";
import { announce } from "./status.js";

const dropzone = document.getElementById("dropzone");
const fileInput = document.getElementById("file-input");
let dragDepth = 0;

function addFiles(fileList) {
  const files = [...fileList].filter((file) => file.size > 0 || file.type);
  // Newest first, like the gallery: the last file picked ends up on top.
  for (const file of files) {
    const card = new Card({ name: file.name, local: true });
    card.setBar(0, "Waiting to upload");
    placeOnTop(card);
    if (MAX_BYTES && file.size > MAX_BYTES) {
      card.reject(`${file.name}: the file is ${formatBytes(file.size)}, the limit is ${formatBytes(MAX_BYTES)}`);
      continue;
    }
    enqueue(card, file);
  }
  updateEmpty();
  if (files.length) announce(files.length === 1 ? `Uploading ${files[0].name}` : `Uploading ${files.length} files`);
}

// A dropped folder is read to this depth and this many files at most.
const FOLDER_DEPTH = 8;
const FOLDER_FILES = 1000;

function entryFile(entry) {
  return new Promise((resolve) => entry.file(resolve, () => resolve(null)));
}

function entriesOf(directory) {
  // readEntries answers in batches until it answers an empty one.
  const reader = directory.createReader();
  const all = [];
  return new Promise((resolve) => {
    const next = () =>
      reader.readEntries(
        (batch) => {
          if (!batch.length || all.length >= FOLDER_FILES) resolve(all);
          else {
            all.push(...batch);
            next();
          }
        },
        () => resolve(all),
      );
    next();
  });
}

/** The files of dropped entries, folders walked (pictures only: a folder holds other files).
 * At most FOLDER_FILES entries are looked at, folders included. */
async function filesOf(entries, depth = 0, found = [], seen = { count: 0 }) {
  for (const entry of entries) {
    seen.count += 1;
    if (seen.count > FOLDER_FILES) break;
    if (entry.isFile) {
      const file = await entryFile(entry);
      if (file && (depth === 0 || file.type.startsWith("image/"))) found.push(file);
    } else if (entry.isDirectory && depth < FOLDER_DEPTH) {
      await filesOf(await entriesOf(entry), depth + 1, found, seen);
    }
  }
  return found;
}

function dropped(transfer) {
  const entries = [...(transfer.items || [])]
    .filter((item) => item.kind === "file" && item.webkitGetAsEntry)
    .map((item) => item.webkitGetAsEntry())
    .filter(Boolean);
  if (!entries.some((entry) => entry.isDirectory)) {
    addFiles(transfer.files);
    return;
  }
  filesOf(entries).then((files) => addFiles(files));
}

function hasFiles(event) {
  return event.dataTransfer && [...event.dataTransfer.types].includes("Files");
}

export function listenForFiles() {
  fileInput.addEventListener("change", () => {
    addFiles(fileInput.files);
    fileInput.value = "";
  });
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
    dropped(event.dataTransfer);
  });
  // A picture pasted anywhere on the page (a screenshot, an image copied in another app).
  document.addEventListener("paste", (event) => {
    const files = event.clipboardData ? [...event.clipboardData.files] : [];
    if (!files.length) return;
    event.preventDefault();
    addFiles(files);
  });
}
