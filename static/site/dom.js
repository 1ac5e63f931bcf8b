/* Small DOM helpers for the pages' scripts. Text goes in through textContent only, never as
 * markup, so what other people wrote (file names, chat messages) can only ever be text. */

/** A new element with an optional class and text. */
export function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
