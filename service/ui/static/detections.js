// A detection model's answer: the photo with every box, a button per box, and a card per method showing the
// chosen box's map (with that box outlined). A click on a box, in the list or on any card, shows its maps.

import { decodeArray, paint } from "./maps.js";
import { element } from "./params.js";

const COLOURS = ["#e6194b", "#3cb44b", "#ffe119", "#0082c8", "#f58231", "#911eb4"];
const caption = (d) => `${d.label ?? d.index} ${d.score.toFixed(2)}`;

function outline(canvas, detections, chosen) {
  const context = canvas.getContext("2d");
  const width = Math.max(2, Math.round(Math.min(canvas.width, canvas.height) / 160));
  detections.forEach((d, i) => {
    const [x0, y0, x1, y1] = d.box;
    context.lineWidth = i === chosen ? 2 * width : width;
    context.strokeStyle = COLOURS[d.index % COLOURS.length];
    context.setLineDash(i === chosen ? [] : [4 * width, 2 * width]);
    context.strokeRect(x0, y0, x1 - x0, y1 - y0);
  });
}

// The smallest box under a click (canvas pixels are the photo's), or -1.
function boxAt(detections, x, y) {
  let found = -1;
  let area = Infinity;
  detections.forEach((d, i) => {
    const [x0, y0, x1, y1] = d.box;
    const size = (x1 - x0) * (y1 - y0);
    if (x >= x0 && x < x1 && y >= y0 && y < y1 && size < area) [found, area] = [i, size];
  });
  return found;
}

export function fillDetections(column, { response, input, signed, display }) {
  column.querySelector("progress")?.remove();
  const { detections } = response.results[0];
  let chosen = 0;
  let shown = display;
  const list = element("ol", { class: "detections", title: "the boxes: pick one to see its maps" });
  const buttons = detections.map((d, i) => {
    const button = element("button", { type: "button", class: "box", "data-index": i }, caption(d));
    button.addEventListener("click", () => choose(i));
    list.append(element("li", {}, button));
    return button;
  });
  const grid = element("div", { class: "grid" });
  column.items = [];
  response.methods.forEach((method, m) => {
    const canvas = element("canvas", { class: "map", "data-box": "0" });
    const draw = (settings) => {
      shown = settings;
      const saliency = detections[chosen]?.explanations[m].saliency;
      if (!saliency) {
        [canvas.width, canvas.height] = [input.width, input.height];
        canvas.getContext("2d").putImageData(new ImageData(input.pixels, input.width, input.height), 0, 0);
      } else {
        const [height, width] = saliency.shape;
        const map = { values: decodeArray(saliency), height, width, signed };
        paint(canvas, map, input.pixels, settings.colormap, settings.opacity);
      }
      canvas.dataset.box = String(chosen);
      outline(canvas, detections, chosen);
    };
    canvas.addEventListener("click", (event) => {
      const bounds = canvas.getBoundingClientRect();
      const x = ((event.clientX - bounds.left) * canvas.width) / bounds.width;
      const y = ((event.clientY - bounds.top) * canvas.height) / bounds.height;
      const hit = boxAt(detections, x, y);
      if (hit >= 0) choose(hit);
    });
    column.items.push({ draw });
    const title = element("figcaption", {}, element("strong", {}, method.name));
    grid.append(element("figure", { class: "card", "data-method": method.name }, title, canvas));
  });
  function choose(i) {
    chosen = i;
    buttons.forEach((b, j) => b.setAttribute("aria-pressed", String(j === i)));
    for (const item of column.items) item.draw(shown);
  }
  const none = element("p", { class: "none" }, "no detection over the model's min_score");
  column.append(detections.length ? list : none, grid);
  if (detections.length) choose(0);
  else for (const item of column.items) item.draw(display);
}
