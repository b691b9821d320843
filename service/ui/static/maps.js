// Saliency arrays -> pixels, in the browser, as the server draws its overlays (service/codecs/image/maps.py):
// the same display scale, matplotlib's lookup tables, and the same float32 arithmetic, so that a canvas here
// equals the server's overlay PNG for the same map, colormap and opacity.

import { COLORMAPS } from "./colormaps.js";

const f32 = Math.fround;
const tables = new Map();

export const colormapNames = () => Object.keys(COLORMAPS);

function table(name) {
  if (!tables.has(name)) {
    const hex = COLORMAPS[name];
    const bytes = new Uint8Array(hex.length / 2);
    for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
    tables.set(name, bytes);
  }
  return tables.get(name);
}

// The response's {"shape", "dtype": "float32", "data": base64 of little-endian bytes} as a Float32Array.
export function decodeArray(saliency) {
  const bytes = Uint8Array.from(atob(saliency.data), (c) => c.charCodeAt(0));
  const view = new DataView(bytes.buffer);
  const values = new Float32Array(bytes.length / 4);
  for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(4 * i, true);
  return values;
}

// (lo, hi) that map to 0 and 1; signed maps are scaled by their peak magnitude around 0 (unit_limits).
export function unitLimits(values, signed) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (signed) {
    const peak = Math.max(Math.abs(lo), Math.abs(hi)) || 1;
    return [-peak, peak];
  }
  return [lo, hi];
}

// to_unit in float32, as numpy computes it on a float32 map.
export function toUnit(v, [lo, hi], signed) {
  if (signed) return f32(f32(Math.min(1, Math.max(-1, f32(v / f32(hi)))) / 2) + 0.5);
  return hi > lo ? f32(f32(v - lo) / f32(hi - lo)) : 0;
}

// matplotlib's lookup: entry floor(u * N), the last one for u = 1, the ends for values outside [0, 1].
const entry = (lut, unit) => 3 * Math.min(lut.length / 3 - 1, Math.max(0, Math.floor(f32(unit * (lut.length / 3)))));

export function colour(name, unit) {
  const lut = table(name);
  const i = entry(lut, unit);
  return [lut[i], lut[i + 1], lut[i + 2]];
}

// numpy's rint: halves go to the even neighbour.
function rint(x) {
  const floor = Math.floor(x);
  const rest = x - floor;
  if (rest !== 0.5) return rest < 0.5 ? floor : floor + 1;
  return floor % 2 === 0 ? floor : floor + 1;
}

// Draws the map over `base` (RGBA pixels of the same size) into the canvas: (1 - alpha) * base + alpha * colour.
export function paint(canvas, map, base, colormap, alpha) {
  const { values, width, height, signed } = map;
  const limits = map.limits ?? (map.limits = unitLimits(values, signed));
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext("2d");
  const out = context.createImageData(width, height);
  const keep = f32(1 - alpha);
  const add = f32(alpha);
  const lut = table(colormap);
  for (let p = 0; p < values.length; p++) {
    const i = entry(lut, toUnit(values[p], limits, signed));
    for (let c = 0; c < 3; c++) {
      const blended = f32(f32(keep * base[4 * p + c]) + f32(add * lut[i + c]));
      out.data[4 * p + c] = Math.min(255, Math.max(0, rint(blended)));
    }
    out.data[4 * p + 3] = 255;
  }
  context.putImageData(out, 0, 0);
}

// A CSS colour for a token's score on the server's scale for texts (highlighted() in codecs/text/render.py).
export function tokenColour(colormap, score, peak, signed, alpha) {
  const unit = score / (peak || 1);
  const [r, g, b] = colour(colormap, signed ? (unit + 1) / 2 : 0.5 + unit / 2);
  return `rgba(${r}, ${g}, ${b}, ${alpha})`;
}
