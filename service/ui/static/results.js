// One model's explanations of one input: the top-k predictions, then a grid with a card per method (the map
// over the image, or the text with its tokens highlighted) and its numbers. Colormap and opacity are applied
// here from the returned float maps, so changing them redraws without a request.

import { decodeArray, paint, tokenColour } from "./maps.js";
import { element } from "./params.js";

export const fixed = (value, digits = 3) => (typeof value === "number" ? value.toFixed(digits) : String(value));
export const diagnosticName = (name) => (name === "completeness_delta" ? "completeness Δ" : name);

function parameters(method) {
  const rest = Object.entries(method).filter(([name, value]) => name !== "name" && value !== null);
  return rest.map(([name, value]) => `${name} ${value}`).join(", ");
}

// A column for `model` with a progress bar, before its answer comes.
export function pendingColumn(model) {
  const progress = element("progress", { max: 1, value: 0 });
  const column = element("div", { class: "column", "data-model": model }, element("h2", {}, model), progress);
  column.progress = ({ done, total }) => {
    progress.max = total;
    progress.value = done;
    progress.title = `${done} / ${total} passes`;
  };
  column.items = [];
  return column;
}

function predictions(result, onTarget) {
  const list = element("ol", { class: "predictions", title: "top-k: pick one to explain it" });
  for (const p of result.predictions) {
    const chosen = p.index === result.target.index;
    const button = element(
      "button",
      { type: "button", "data-index": p.index, "aria-pressed": String(chosen) },
      `${p.label ?? p.index} `,
      element("span", { class: "prob" }, fixed(p.probability)),
    );
    button.addEventListener("click", () => onTarget(p.index));
    list.append(element("li", {}, button));
  }
  return list;
}

function numbers(result, explanation) {
  const rows = [["target", `${result.target.label ?? result.target.index}, p = ${fixed(result.target.probability)}`]];
  for (const [metric, f] of Object.entries(explanation.faithfulness ?? {})) {
    rows.push([`${metric} AUC`, `${fixed(f.auc)} (random ${fixed(f.random_auc)})`]);
  }
  for (const [name, value] of Object.entries(explanation.diagnostics ?? {})) {
    rows.push([diagnosticName(name), fixed(value, 4)]);
  }
  return termList(rows);
}

function imageCard(explanation, input, signed) {
  const canvas = element("canvas", { class: "map" });
  const { shape } = explanation.saliency;
  const map = { values: decodeArray(explanation.saliency), height: shape[0], width: shape[1], signed };
  // size=original: the map has the sent image's size (a white ground should it ever not).
  const fits = shape[0] === input.height && shape[1] === input.width;
  const base = fits ? input.pixels : new Uint8ClampedArray(4 * shape[0] * shape[1]).fill(255);
  const draw = ({ colormap, opacity }) => paint(canvas, map, base, colormap, opacity);
  return { node: canvas, draw };
}

function textCard(explanation, input, signed) {
  const { paragraph, spans } = tokenParagraph(input.text, explanation.tokens);
  const scores = explanation.tokens.map((token) => token.score);
  return { node: paragraph, draw: (display) => paintTokens(spans, scores, display, signed) };
}

// A text with a span per token that has its place in it: the paragraph, and each span with its token's index.
export function tokenParagraph(text, tokens) {
  const paragraph = element("p", { class: "tokens" });
  const spans = [];
  let cursor = 0;
  tokens.forEach((token, index) => {
    // Special tokens have no place in the text; overlapping offsets would repeat characters.
    if (token.special || token.start === null || token.start < cursor || token.end <= token.start) return;
    paragraph.append(text.slice(cursor, token.start));
    const span = element("span", { class: "token" }, text.slice(token.start, token.end));
    spans.push({ span, index });
    paragraph.append(span);
    cursor = token.end;
  });
  paragraph.append(text.slice(cursor));
  return { paragraph, spans };
}

// Colours each span by scores[its index], scaled by the largest |score| shown (the server's scale for texts).
export function paintTokens(spans, scores, { colormap, opacity }, signed) {
  const peak = Math.max(0, ...spans.map(({ index }) => Math.abs(scores[index])));
  for (const { span, index } of spans) {
    span.title = fixed(scores[index]);
    span.style.backgroundColor = tokenColour(colormap, scores[index], peak, signed, opacity);
  }
}

// A card's caption: the method's name and its parameters.
export function methodCaption(method) {
  const text = parameters(method);
  return element("figcaption", { title: text }, element("strong", {}, method.name), element("small", {}, ` ${text}`));
}

// A list of [term, value] rows.
export function termList(rows) {
  const list = element("dl");
  for (const [term, value] of rows) list.append(element("dt", {}, term), element("dd", {}, value));
  return list;
}

// Fills a pending column with the response of a multi-method explain request.
export function fillColumn(column, { response, input, signed, display, onTarget }) {
  column.querySelector("progress")?.remove();
  const result = response.results[0];
  const grid = element("div", { class: "grid" });
  column.items = [];
  for (const explanation of result.explanations) {
    const card = input.kind === "image" ? imageCard(explanation, input, signed) : textCard(explanation, input, signed);
    card.draw(display);
    column.items.push(card);
    const caption = methodCaption(explanation.method);
    const figure = element("figure", { class: "card", "data-method": explanation.method.name }, caption, card.node);
    grid.append(figure);
    figure.append(numbers(result, explanation));
  }
  column.append(predictions(result, onTarget), grid);
}

export function failColumn(column, error) {
  column.querySelector("progress")?.remove();
  column.append(element("p", { class: "error" }, error.message));
}

// Redraws every shown map and text with new display settings (no request).
export function repaint(root, display) {
  for (const column of root.querySelectorAll(".column")) for (const item of column.items ?? []) item.draw(display);
}
