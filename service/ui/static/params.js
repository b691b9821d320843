// Method parameters as form controls, generated from the JSON schemas of GET /v1/methods.

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value !== undefined && value !== null && value !== false) node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children);
  return node;
}

export { element };

// The schema of a property without its "or null" branch: {"anyOf": [{...}, {"type": "null"}]} -> {...}.
function concrete(property) {
  if (!property.anyOf) return { ...property, nullable: false };
  const branches = property.anyOf.filter((branch) => branch.type !== "null");
  return { ...property, ...branches[0], anyOf: undefined, nullable: branches.length < property.anyOf.length };
}

function control(name, property, model) {
  const schema = concrete(property);
  const id = `param-${Math.random().toString(36).slice(2)}`;
  let input;
  if (schema.enum) {
    input = element("select", { id });
    for (const value of schema.enum) {
      input.append(element("option", { value, selected: value === schema.default }, value));
    }
  } else if (name === "layer" && model && model.layers) {
    // A CAM layer: the layers the loaded model accepts, the model's default first.
    input = element("select", { id }, element("option", { value: "" }, `default: ${model.default_layer ?? "auto"}`));
    for (const layer of model.layers) input.append(element("option", { value: layer }, layer));
  } else if (schema.type === "boolean") {
    input = element("input", { id, type: "checkbox", checked: schema.default === true });
  } else if (schema.type === "integer" || schema.type === "number") {
    const low = schema.minimum ?? schema.exclusiveMinimum;
    input = element("input", {
      id,
      type: "number",
      min: low,
      max: schema.maximum ?? schema.exclusiveMaximum,
      step: schema.type === "integer" ? 1 : "any",
      value: schema.default ?? undefined,
      placeholder: schema.default === null ? "default" : undefined,
    });
  } else {
    input = element("input", { id, type: "text", value: schema.default ?? undefined, placeholder: "default" });
  }
  input.dataset.param = name;
  input.dataset.type = schema.type ?? "string";
  const label = element("label", { for: id, title: schema.description }, schema.title ?? name);
  return element("div", { class: "param" }, label, input);
}

// A form for one method's parameters; read() gives {name: value} of the filled-in controls (an empty one is
// left out, so the server's default applies; the server checks the ranges and names a bad field).
export function parameterForm(schema, model) {
  const form = element("div", { class: "params" });
  for (const [name, property] of Object.entries(schema.properties ?? {})) form.append(control(name, property, model));
  form.read = () => {
    const values = {};
    for (const input of form.querySelectorAll("[data-param]")) {
      const { param, type } = input.dataset;
      if (input.validity && input.validity.badInput) throw new Error(`${param}: not a number`);
      if (type === "boolean") values[param] = input.checked;
      else if (input.value === "") continue;
      else if (type === "integer" || type === "number") values[param] = Number(input.value);
      else values[param] = input.value;
    }
    return values;
  };
  return form;
}
