/* A finished upload's picture: a responsive <picture> of its renditions (WebP sources, JPEG in
 * the img as the fallback), and checks on the values the card puts into styles and src. */

import { el } from "../site/dom.js";

// The image box is 4:3 in a grid column of at most ~20rem, or the whole width on a phone.
const SIZES = "(max-width: 40rem) calc(100vw - 1.5rem), 20rem";

/** A colour the card may put into a style: #rrggbb, nothing else. */
export function isColour(value) {
  return typeof value === "string" && /^#[0-9a-f]{6}$/i.test(value);
}

export function isDataImage(value) {
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

/** The <picture> of upload `data` (its JSON), with an img.thumb; null if no rendition fits. */
export function pictureOf(data) {
  const renditions = data.renditions;
  const webp = renditions.filter((r) => r.format === "WEBP");
  const jpeg = renditions.filter((r) => r.format === "JPEG");
  const fallback = jpeg.length ? jpeg : webp;
  if (!fallback.length) return null;
  // The img's own src: the smallest fallback that still fills a card on a dense screen.
  const sorted = [...fallback].sort((a, b) => a.width - b.width);
  const src = sorted.find((r) => r.width >= 640) || sorted[sorted.length - 1];

  const picture = el("picture");
  if (webp.length && jpeg.length) {
    const source = el("source");
    source.type = "image/webp";
    source.srcset = srcset(webp);
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
