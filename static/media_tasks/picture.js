/* A finished upload's picture: a responsive <picture> of its renditions, the best format first
 * (AVIF, then WebP sources; the img takes JPEG if there is one, else the most widely read of
 * the rest), and checks on the values the card puts into styles and src. */

import { el } from "../site/dom.js";
import { thumbHashToDataURL } from "./vendor/thumbhash/thumbhash.js";

// The image box is 4:3 in a grid column of at most ~20rem, or the whole width on a phone.
const SIZES = "(max-width: 40rem) calc(100vw - 1.5rem), 20rem";

/** A colour the card may put into a style: #rrggbb, nothing else. */
export function isColour(value) {
  return typeof value === "string" && /^#[0-9a-f]{6}$/i.test(value);
}

export function isDataImage(value) {
  return typeof value === "string" && value.startsWith("data:image/");
}

/** What to show before the picture loads: the upload's ThumbHash drawn (alpha and aspect ratio
 * kept), else its 16 px WebP; null if it has neither yet. */
export function placeholderOf(data) {
  if (typeof data.thumbhash === "string" && /^[A-Za-z0-9+/]{8,64}={0,2}$/.test(data.thumbhash)) {
    try {
      const bytes = Uint8Array.from(atob(data.thumbhash), (ch) => ch.charCodeAt(0));
      return { kind: "thumbhash", url: thumbHashToDataURL(bytes) };
    } catch {
      // A hash the decoder cannot read: the WebP placeholder, if any, will do.
    }
  }
  return isDataImage(data.placeholder) ? { kind: "webp", url: data.placeholder } : null;
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

// Best first: a browser takes the first source whose type it reads.
const FORMATS = [
  ["AVIF", "image/avif"],
  ["WEBP", "image/webp"],
  ["JPEG", "image/jpeg"],
];
// What the img itself carries: the format most browsers read.
const FALLBACK_ORDER = ["JPEG", "WEBP", "AVIF"];

/** The <picture> of upload `data` (its JSON), with an img.thumb; null if no rendition fits. */
export function pictureOf(data) {
  const byFormat = new Map(FORMATS.map(([format]) => [format, []]));
  for (const r of data.renditions) byFormat.get(r.format)?.push(r);
  const fallbackFormat = FALLBACK_ORDER.find((format) => byFormat.get(format).length);
  if (!fallbackFormat) return null;
  const fallback = byFormat.get(fallbackFormat);
  // The img's own src: the smallest fallback that still fills a card on a dense screen.
  const sorted = [...fallback].sort((a, b) => a.width - b.width);
  const src = sorted.find((r) => r.width >= 640) || sorted[sorted.length - 1];

  const picture = el("picture");
  for (const [format, type] of FORMATS) {
    const renditions = byFormat.get(format);
    if (format === fallbackFormat || !renditions.length) continue;
    const source = el("source");
    source.type = type;
    source.srcset = srcset(renditions);
    source.sizes = SIZES;
    picture.append(source);
  }
  const img = el("img", "thumb");
  img.alt = data.name;
  img.width = src.width;
  img.height = src.height;
  img.decoding = "async";
  img.loading = "lazy";
  img.sizes = SIZES;
  img.srcset = srcset(fallback);
  img.src = src.url;
  picture.append(img);
  return picture;
}
