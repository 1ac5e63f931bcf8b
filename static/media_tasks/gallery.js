/* The gallery's pages of uploads from the API: the first page when the page opens and on every
 * (re)connect of the socket, older pages on "Show older pictures". */

import { api } from "./api.js";
import { Card } from "./cards.js";
import { API } from "./config.js";
import { cards, deleted, place, updateEmpty } from "./grid.js";

const loadMore = document.getElementById("load-more");
let nextPage = null;

/** The card for upload `id`, made (not yet shown) if this page has not seen it. */
export function cardFor(id) {
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

/** Read and show page `page` of the user's uploads; resolves to the API's answer. */
export async function loadPage(page) {
  const response = await api(page > 1 ? `${API}?page=${page}` : API);
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  const body = await response.json();
  for (const upload of body.uploads) showUpload(upload);
  if (page === 1) {
    // Re-reading the first page must not forget how far "Show older pictures" has gone.
    if (nextPage === null) nextPage = body.next;
  } else {
    nextPage = body.next;
  }
  loadMore.hidden = !nextPage;
  updateEmpty();
  return body;
}

export function listenForMore() {
  loadMore.addEventListener("click", async () => {
    if (!nextPage) return;
    loadMore.disabled = true;
    try {
      await loadPage(nextPage);
    } finally {
      loadMore.disabled = false;
    }
  });
}
