// A small inline SVG line chart: one line per series over named steps, y on a fixed range.

const SVG = "http://www.w3.org/2000/svg";

function svg(tag, attributes = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

// series: [{name, values, colour}], one value per step; null values leave a gap. marks: [{value, label}],
// dashed horizontal lines (thresholds).
export function lineChart({ steps, series, marks = [], yMin = -1, yMax = 1, width = 360, height = 200 }) {
  const pad = { left: 36, right: 40, top: 26, bottom: 50 };
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const x = (i) => pad.left + (steps.length > 1 ? (i * plotW) / (steps.length - 1) : plotW / 2);
  const y = (v) => pad.top + ((yMax - Math.min(yMax, Math.max(yMin, v))) * plotH) / (yMax - yMin);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, class: "chart", role: "img" });
  for (const tick of [yMin, (yMin + yMax) / 2, yMax]) {
    chart.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y(tick), y2: y(tick), class: "gridline" }));
    chart.append(svg("text", { x: pad.left - 4, y: y(tick) + 4, "text-anchor": "end", class: "tick" }, String(tick)));
  }
  for (const { value, label } of marks) {
    chart.append(svg("line", { x1: pad.left, x2: width - pad.right, y1: y(value), y2: y(value), class: "mark" }));
    chart.append(svg("text", { x: width - pad.right + 2, y: y(value) + 3, class: "tick" }, label));
  }
  steps.forEach((step, i) => {
    // Cumulative steps ("fc", "fc+block4", ...) are labelled by what each adds: "fc", "+block4", ...
    const shown = i > 0 && step.startsWith(`${steps[i - 1]}+`) ? step.slice(steps[i - 1].length) : step;
    const label = svg("text", { x: x(i), y: height - pad.bottom + 12, class: "tick", "data-step": step }, shown);
    label.setAttribute("transform", `rotate(35 ${x(i)} ${height - pad.bottom + 12})`);
    chart.append(label);
  });
  for (const { name, values, colour } of series) {
    const points = values.map((v, i) => (v === null || Number.isNaN(v) ? null : `${x(i)},${y(v)}`));
    const line = svg("polyline", { points: points.filter(Boolean).join(" "), fill: "none", stroke: colour });
    line.setAttribute("stroke-width", "2");
    line.dataset.series = name;
    chart.append(line);
    values.forEach((v, i) => {
      if (v === null || Number.isNaN(v)) return;
      const dot = svg("circle", { cx: x(i), cy: y(v), r: 3, fill: colour });
      dot.append(svg("title", {}, `${name} at ${steps[i]}: ${v.toFixed(3)}`));
      chart.append(dot);
    });
  }
  const legend = svg("g", { class: "legend" });
  series.forEach(({ name, colour }, i) => {
    const left = pad.left + i * 90;
    legend.append(svg("rect", { x: left, y: 4, width: 10, height: 10, fill: colour }));
    legend.append(svg("text", { x: left + 14, y: 13, class: "tick" }, name));
  });
  chart.append(legend);
  return chart;
}
