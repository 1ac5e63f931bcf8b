/* The "Details" of a card: camera, lens, exposure, location and colour mode from the analysis,
 * when it was uploaded, a link to the original, and how many pictures look alike. */

import { el } from "../site/dom.js";
import { formatDate, formatExposure } from "./format.js";

function link(text, href, rel) {
  const a = el("a", "", text);
  a.href = href;
  a.target = "_blank";
  a.rel = rel;
  return a;
}

function analysisRows(analysis) {
  const rows = [];
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
    const map = `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=15/${lat}/${lon}`;
    rows.push(["Location", link(`${lat.toFixed(5)}, ${lon.toFixed(5)}`, map, "noopener noreferrer")]);
  }
  if (analysis.mode) rows.push(["Colour mode", analysis.mode]);
  return rows;
}

/** The <dl> of upload `data` (its JSON); `similar` is the number of look-alikes, if known. */
export function detailsOf(data, similar) {
  const rows = data.analysis ? analysisRows(data.analysis) : [];
  rows.push(["Uploaded", formatDate(data.created_at)]);
  rows.push(["File", link("Open the original", data.original_url, "noopener")]);
  if (similar !== undefined) {
    rows.push(["Similar", similar === 1 ? "1 other picture" : `${similar} other pictures`]);
  }

  const list = el("dl");
  for (const [term, value] of rows) {
    list.append(el("dt", "", term));
    const dd = el("dd");
    if (value instanceof Node) dd.append(value);
    else dd.textContent = value;
    list.append(dd);
  }
  return list;
}
