// The sanity-check view: per method, how similar its maps stay as the model is randomized (Spearman and
// SSIM per step), with the server's verdict and the threshold it applied.

import { lineChart } from "./chart.js";
import { element } from "./params.js";

const SERIES = [
  ["spearman", "#1f77b4"],
  ["ssim", "#d62728"],
];

// The server's threshold: its rule in words when it gives one, else its numbers.
function threshold(value) {
  if (value === null || typeof value !== "object") return String(value);
  if (typeof value.rule === "string") return value.rule;
  return Object.entries(value)
    .filter(([, v]) => v !== null)
    .map(([name, v]) => `${name.replaceAll("_", " ")} ${v}`)
    .join(", ");
}

export function sanityColumn(response) {
  const reference = response.reference_model ? ` against ${response.reference_model}` : "";
  const column = element("div", { class: "column sanity", "data-model": response.model });
  column.append(element("h2", {}, `${response.test.replaceAll("_", " ")}: ${response.model}${reference}`));
  // A language model's: the answer every set of scores explains.
  for (const answer of response.answers ?? []) {
    column.append(element("p", { class: "answer-note" }, `answer: ${answer}`));
  }
  const grid = element("div", { class: "grid" });
  for (const result of response.results) {
    const series = SERIES.filter(([name]) => (result[name] ?? []).some((v) => v !== null)).map(([name, colour]) => ({
      name,
      colour,
      values: result[name],
    }));
    const verdict = element("span", { class: `verdict ${result.verdict}` }, result.verdict);
    const caption = element("figcaption", {}, element("strong", {}, result.method.name), " ", verdict);
    const limits = Object.entries(result.threshold ?? {}).filter(([name, v]) => name.endsWith("_below") && v !== null);
    const marks = [...new Set(limits.map(([, v]) => v))].map((value) => ({ value, label: "pass" }));
    const chart = lineChart({ steps: result.steps, series, marks });
    const note = element("p", { class: "threshold" }, threshold(result.threshold));
    grid.append(element("figure", { class: "card", "data-method": result.method.name }, caption, chart, note));
  }
  column.append(grid);
  column.items = [];
  return column;
}
