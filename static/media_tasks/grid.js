/* The gallery grid: the one card of each upload, and where in the grid it stands. Cards go in
 * the API's order (newest first, then highest id), below the uploads still being sent.
 *
 * While an upload request is in flight its id is unknown, so a card for an unknown id is held
 * back until then: it may be the one being uploaded, which already has its card. */

const gallery = document.getElementById("gallery");
const emptyNote = document.getElementById("empty");

/** Cards by upload id. */
export const cards = new Map();
// Ids deleted from this page: late events about them must not bring them back.
export const deleted = new Set();
// Cards waiting for the uploads in flight to learn their ids.
export const heldBack = new Set();
let uploadsInFlight = 0;

export function updateEmpty() {
  emptyNote.hidden = gallery.children.length > 0;
}

/** Whether card `a` comes after card `b` in the API's order: newest first, then highest id. */
function olderThan(a, b) {
  const at = a.data ? a.data.created_at : "";
  const bt = b.data ? b.data.created_at : "";
  return at === bt ? a.id < b.id : at < bt;
}

/** Put a card (which has its data) in the grid in the API's order, below the uploads still
 * being sent. */
export function place(card) {
  // A card that another took over (see Card.bind) or that was deleted stays out.
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

/** A card for a file picked on this page: on top, where the newest upload will be. */
export function placeOnTop(card) {
  gallery.prepend(card.node);
}

export function uploadStarted() {
  uploadsInFlight += 1;
}

export function uploadEnded() {
  uploadsInFlight -= 1;
  if (uploadsInFlight === 0) releaseHeldBack();
}

function releaseHeldBack() {
  for (const card of [...heldBack]) {
    heldBack.delete(card);
    if (cards.get(card.id) === card && card.data) place(card);
    else if (cards.get(card.id) === card) card.refresh();
  }
}
