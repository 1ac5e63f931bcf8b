/* Choosing and dropping pictures: each file gets a card on top of the grid and a place in the
 * upload queue, or is refused at once when it is larger than the server takes. The whole page
 * accepts a drop: a file dropped beside the zone must not replace the page. */

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
    addFiles(event.dataTransfer.files);
  });
}
