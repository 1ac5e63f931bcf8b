/* What crosses the wire the same way on every page, read from its one definition in Python
 * (wire/): base.html puts it in every page as JSON, in <script id="wire" type="application/json">.
 *
 * CLOSE: the websocket close codes by name, e.g. CLOSE.unauthenticated (wire/close.py).
 * errorText: the text to show for an error, which has one shape over HTTP and websockets
 * alike: {type, code, error}; `code` is for programs, `error` is for people (wire/errors.py). */

const wire = JSON.parse(document.getElementById("wire").textContent);

export const CLOSE = Object.freeze({ ...wire.close });

/** The `error` of an error payload, shown as it is; `fallback` if the payload has none. */
export function errorText(payload, fallback = "") {
  return payload && payload.error ? payload.error : fallback;
}
