// The method picker: a checkbox per method the model's kind supports, each with its parameter form.

import { element, parameterForm } from "./params.js";

const DEFAULTS = {
  image: ["gradient", "gradcam"],
  text: ["gradient", "integrated_gradients"],
  detection: ["gradcam", "drise"],
  causal_lm: ["gradient", "integrated_gradients"],
};
const COST = "forward + backward passes per image at 224 x 224 with the default parameters";

// Rebuilds the list for `model` (from GET /v1/models), keeping the methods checked before when they apply.
export function showMethods(container, methods, model, previous) {
  const kind = model.kind;
  const chosen = new Set(previous && previous.size ? previous : DEFAULTS[kind]);
  container.replaceChildren();
  for (const method of methods) {
    if (!method.capabilities.modalities.includes(kind)) continue;
    // The attention methods read a transformer's attention: a loaded model without one would answer 422.
    if (method.capabilities.reads_attention && model.state === "loaded" && !model.attention) continue;
    // A classifier's texts and a language model's prompts take the text parameters (in tokens, not pixels).
    const schema = kind === "text" || kind === "causal_lm" ? method.text_parameters : method.parameters;
    const form = parameterForm(schema, model);
    const box = element("input", { type: "checkbox", value: method.name, checked: chosen.has(method.name) });
    const label = element(
      "label",
      { class: "method", title: method.description },
      box,
      ` ${method.name} `,
      element("small", { title: COST }, passesText(method.passes_per_image, model)),
    );
    const row = element("div", { class: "method-row", "data-method": method.name }, label);
    if (form.children.length) row.append(form);
    form.hidden = !box.checked;
    box.addEventListener("change", () => {
      form.hidden = !box.checked;
    });
    row.spec = () => ({ name: method.name, ...form.read() });
    row.box = box;
    container.append(row);
  }
}

// Score-CAM runs a forward pass per channel of its layer: the model's default layer, when the model is loaded.
function passesText(cost, model) {
  const passes = cost.forward + cost.backward;
  const perChannel = cost.forward_per_layer_channel;
  if (!perChannel) return `${passes} passes`;
  const channels = model.layer_channels && model.layer_channels[model.default_layer];
  if (channels === undefined || channels === null) return `${passes} + ${perChannel} per layer channel passes`;
  return `${passes + perChannel * channels} passes`;
}

const checkedRows = (container) => [...container.querySelectorAll(".method-row")].filter((row) => row.box.checked);

export const checkedNames = (container) => new Set(checkedRows(container).map((row) => row.dataset.method));

// The checked methods as specs for `methods` in an explain or sanity request.
export function methodSpecs(container) {
  const specs = checkedRows(container).map((row) => row.spec());
  if (!specs.length) throw new Error("pick at least one method");
  return specs;
}
