// The dashboard: wires the controls to the public API and the views (explain, compare, sanity).

import { fillAnswers } from "./answers.js";
import { apiKey, askForKey, getJSON, setApiKey, streamed } from "./api.js";
import { loadSamples, watchImageInputs } from "./inputs.js";
import { fillDetections } from "./detections.js";
import { colormapNames } from "./maps.js";
import { checkedNames, methodSpecs, showMethods } from "./methods.js";
import { element } from "./params.js";
import { failColumn, fillColumn, pendingColumn, repaint } from "./results.js";
import { sanityColumn } from "./sanity.js";

const $ = (id) => document.getElementById(id);
const state = { models: [], methods: [], image: null, view: "explain", colormapTouched: false };
// The demo's pairs: the same network with and without a learnt shortcut.
const PAIRS = {
  shapes: "shapes-watermark",
  "shapes-vit": "shapes-vit-watermark",
  "shapes-detector": "shapes-detector-watermark",
  reviews: "reviews-shortcut",
};

const model = () => state.models.find((m) => m.name === $("model").value);
const TEXT_KINDS = ["text", "causal_lm"];
const display = () => ({ colormap: $("colormap").value, opacity: Number($("opacity").value) });

function showError(error) {
  $("error").textContent = error ? error.message : "";
}

function options(select, names, preferred) {
  const previous = select.value;
  select.replaceChildren(...names.map((name) => element("option", { value: name }, name)));
  select.value = names.includes(previous) ? previous : names.includes(preferred) ? preferred : names[0] ?? "";
}

function onModel() {
  const chosen = model();
  if (!chosen) return;
  document.body.dataset.kind = chosen.kind;
  const peers = state.models.filter((m) => m.kind === chosen.kind).map((m) => m.name);
  options($("model-b"), peers.filter((name) => name !== chosen.name), PAIRS[chosen.name]);
  options($("reference-model"), peers.filter((name) => name !== chosen.name), `${chosen.name}-random-labels`);
  if (!state.colormapTouched) $("colormap").value = TEXT_KINDS.includes(chosen.kind) ? "RdBu_r" : "jet";
  // Only classifiers have a shuffled-labels twin to compare with.
  const classifier = ["image", "text"].includes(chosen.kind);
  $("sanity-test").querySelector("[value=data_randomization]").disabled = !classifier;
  if (!classifier) $("sanity-test").value = "model_randomization";
  document.body.dataset.test = $("sanity-test").value;
  const previous = checkedNames($("methods"));
  showMethods($("methods"), state.methods, chosen, previous);
  setTarget("predicted");
}

function setTarget(value, label) {
  const select = $("target");
  const choices = [element("option", { value: "predicted" }, "predicted class")];
  if (value !== "predicted") choices.push(element("option", { value }, label ?? `class ${value}`));
  select.replaceChildren(...choices);
  select.value = String(value);
}

function input() {
  if (TEXT_KINDS.includes(model().kind)) {
    const text = $("text").value;
    if (!text.trim()) throw new Error(model().kind === "text" ? "write a text first" : "write a prompt first");
    return { kind: "text", text };
  }
  if (!state.image) throw new Error("choose an image first (a demo sample, a file, a drop or a paste)");
  return state.image;
}

// The answer written for a language model to explain (by teacher forcing); null: explain the model's own.
function answerTarget() {
  const answer = $("answer").value;
  return answer.trim() ? answer : null;
}

function generation() {
  const tokens = $("max-new-tokens").valueAsNumber;
  if (!Number.isInteger(tokens) || tokens < 1) throw new Error("max new tokens: a whole number, 1 or more");
  return { max_new_tokens: tokens };
}

function body(given) {
  const normalize = $("normalize").value || undefined;
  if (model().kind === "causal_lm") {
    const request = { methods: methodSpecs($("methods")), texts: [given.text] };
    const answer = answerTarget();
    if (answer) request.target = answer;
    else request.generate = generation();
    return request;
  }
  const target = $("target").value === "predicted" ? "predicted" : Number($("target").value);
  const request = { methods: methodSpecs($("methods")), target, top_k: Math.min(5, model().num_classes) };
  if (model().kind === "detection") {
    // Every box the detector reports, each with its own maps (no class target, no faithfulness curves yet).
    return { methods: request.methods, images: [given.b64], target: "detections",
      output: { saliency: "float32", size: "original", normalize } };
  }
  if (given.kind === "image") {
    request.images = [given.b64];
    request.output = { saliency: "float32", size: "original", normalize };
    if ($("evaluate").checked) request.evaluate = { metrics: ["deletion", "insertion"], steps: 16 };
  } else {
    request.texts = [given.text];
    request.output = { saliency: "none", normalize };
  }
  return request;
}

function signedFor(kind) {
  const normalize = $("normalize").value || (kind === "text" ? "percentile" : "minmax");
  return normalize === "percentile";
}

async function explainInto(column, name, request, given) {
  try {
    const response = await streamed(name, "explain", request, column.progress);
    const onTarget = (index) => {
      const prediction = response.results[0].predictions.find((p) => p.index === index);
      setTarget(index, prediction?.label ?? undefined);
      run();
    };
    const shown = { response, input: given, signed: signedFor(given.kind), display: display(), onTarget };
    if (response.results[0].detections) fillDetections(column, shown);
    else if (response.results[0].answer) fillAnswers(column, shown);
    else fillColumn(column, shown);
  } catch (error) {
    failColumn(column, error);
    throw error;
  }
}

async function runSanity(given) {
  // A language model's own answer is generated as its settings say: sanity takes no generation options.
  const target = model().kind === "causal_lm" ? answerTarget() ?? "predicted" : "predicted";
  const request = { methods: methodSpecs($("methods")), target, test: $("sanity-test").value };
  request[given.kind === "image" ? "images" : "texts"] = [given.kind === "image" ? given.b64 : given.text];
  if (request.test === "data_randomization") request.reference_model = $("reference-model").value;
  const column = pendingColumn(model().name);
  $("results").replaceChildren(column);
  try {
    $("results").replaceChildren(sanityColumn(await streamed(model().name, "sanity", request, column.progress)));
  } catch (error) {
    failColumn(column, error);
    throw error;
  }
}

async function run() {
  showError(null);
  const button = $("run");
  button.disabled = true;
  try {
    const given = input();
    if (state.view === "sanity") return await runSanity(given);
    const request = body(given);
    const names = state.view === "compare" ? [$("model").value, $("model-b").value] : [$("model").value];
    if (names.some((name) => !name)) throw new Error("pick a second model of the same kind");
    const columns = names.map(pendingColumn);
    $("results").replaceChildren(...columns);
    document.body.dataset.busy = "true";
    const outcomes = await Promise.allSettled(names.map((name, i) => explainInto(columns[i], name, request, given)));
    const failed = outcomes.find((o) => o.status === "rejected");
    if (failed) showError(failed.reason);
  } catch (error) {
    showError(error);
  } finally {
    button.disabled = false;
    delete document.body.dataset.busy;
  }
}

function showImage(given) {
  state.image = given;
  $("preview").src = given.url;
  $("preview").hidden = false;
  $("preview").alt = given.name;
  setTarget("predicted");
}

function setView(view) {
  state.view = view;
  document.body.dataset.view = view;
  for (const button of $("views").querySelectorAll("button")) {
    button.setAttribute("aria-pressed", String(button.dataset.view === view));
  }
  $("run").textContent = { explain: "Explain", compare: "Compare", sanity: "Run sanity check" }[view];
  $("results").replaceChildren();
}

function showKeyStatus() {
  $("key-status").textContent = apiKey() ? "API key: set for this session" : "";
  $("key-button").textContent = apiKey() ? "Forget key" : "API key…";
}

function wire() {
  $("colormap").replaceChildren(...colormapNames().map((name) => element("option", { value: name }, name)));
  $("model").addEventListener("change", onModel);
  $("sanity-test").addEventListener("change", () => (document.body.dataset.test = $("sanity-test").value));
  $("target").addEventListener("change", run);
  $("run").addEventListener("click", run);
  // A written answer is explained as it is: there is nothing to generate.
  $("answer").addEventListener("input", () => ($("max-new-tokens").disabled = Boolean(answerTarget())));
  $("colormap").addEventListener("change", () => {
    state.colormapTouched = true;
    repaint($("results"), display());
  });
  $("opacity").addEventListener("input", () => {
    $("opacity-value").textContent = $("opacity").value;
    repaint($("results"), display());
  });
  for (const button of $("views").querySelectorAll("button")) {
    button.addEventListener("click", () => setView(button.dataset.view));
  }
  $("key-button").addEventListener("click", () => {
    if (apiKey()) setApiKey(null);
    else askForKey("Enter an API key.").then(() => document.body.dataset.ready || load(), () => {});
  });
  document.addEventListener("api-key", showKeyStatus);
  watchImageInputs({ onImage: showImage, onError: showError });
}

// Models, methods and samples; again after a key is entered if the first try was refused.
async function load() {
  showError(null);
  try {
    [state.models, state.methods] = await Promise.all([getJSON("v1/models"), getJSON("v1/methods")]);
    options($("model"), state.models.map((m) => m.name), "shapes");
    onModel();
    await loadSamples({ onImage: showImage, onText: (text) => ($("text").value = text), onError: showError });
    document.body.dataset.ready = "true";
  } catch (error) {
    showError(error);
  }
}

wire();
showKeyStatus();
document.body.dataset.test = $("sanity-test").value;
load();
