/* What the upload page's markup tells its script (templates/media_tasks/uploads.html): the API
 * and websocket paths, the login page, the CSRF token and the size limit for one file. */

const root = document.getElementById("uploads");
const data = root ? root.dataset : {};

/** Whether this page is the upload page at all. */
export const ON_PAGE = root !== null;
export const API = data.api;
export const TUS_API = data.tus;
// Set on S3 only: files go straight to the bucket (direct.js), not through the site.
export const DIRECT_API = data.direct;
export const DIRECT_COMPLETE_API = data.directComplete;
export const WS_PATH = data.ws;
export const LOGIN_URL = data.login;
// The token at the time the page was made: the cookie's, if there is one, wins (api.js).
export const PAGE_CSRF = data.csrf;
export const MAX_BYTES = Number(data.maxBytes) || 0;
