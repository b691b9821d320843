// The inputs: an image from a file, a drop, a paste or a demo sample; a text from the box or a demo review.

import { getJSON } from "./api.js";
import { element } from "./params.js";

// Larger images are scaled down before sending: the maps come back at the sent size (size=original), and
// 512 px keeps a float32 map per method under 1.5 MB of JSON.
const MAX_SIDE = 512;

function base64Of(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(String(reader.result).split(",", 2)[1]);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

// The image as it is sent: PNG bytes of the pixels kept here, so that the maps line up with them exactly.
export async function imageInput(blob, name) {
  let bitmap;
  try {
    bitmap = await createImageBitmap(blob);
  } catch {
    throw new Error(`${name}: not an image this browser can read`);
  }
  const scale = Math.min(1, MAX_SIDE / Math.max(bitmap.width, bitmap.height));
  const width = Math.max(1, Math.round(bitmap.width * scale));
  const height = Math.max(1, Math.round(bitmap.height * scale));
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext("2d", { willReadFrequently: true });
  // Transparent pixels on white: what is sent is what is shown under the maps.
  context.fillStyle = "#fff";
  context.fillRect(0, 0, width, height);
  context.imageSmoothingQuality = "high";
  context.drawImage(bitmap, 0, 0, width, height);
  bitmap.close();
  const pixels = context.getImageData(0, 0, width, height).data;
  const png = await canvas.convertToBlob({ type: "image/png" });
  return { kind: "image", name, width, height, pixels, b64: await base64Of(png), url: URL.createObjectURL(png) };
}

const blobOf = (b64) => new Blob([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], { type: "image/png" });

// Calls onImage(input) for every way of giving an image; onError(error) when one cannot be read.
export function watchImageInputs({ onImage, onError }) {
  const take = (file) => imageInput(file, file.name || "pasted image").then(onImage, onError);
  const zone = document.getElementById("drop-zone");
  document.getElementById("file").addEventListener("change", (event) => {
    if (event.target.files.length) take(event.target.files[0]);
  });
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const file = [...event.dataTransfer.files].find((f) => f.type.startsWith("image/"));
    if (file) take(file);
  });
  document.addEventListener("paste", (event) => {
    const item = [...event.clipboardData.items].find((i) => i.kind === "file" && i.type.startsWith("image/"));
    if (item) take(item.getAsFile());
  });
}

// Demo images, reviews and prompts from GET /v1/demo/samples, as buttons.
export async function loadSamples({ onImage, onText, onError }) {
  const samples = await getJSON("v1/demo/samples?n=8");
  const images = document.getElementById("samples");
  images.replaceChildren();
  samples.images.forEach((sample, i) => {
    const name = `demo ${i}: ${sample.label}${sample.watermark ? " + watermark" : ""}`;
    const img = element("img", { src: `data:image/png;base64,${sample.image}`, alt: name });
    const button = element("button", { type: "button", class: "sample", title: name, "data-index": i }, img);
    button.addEventListener("click", () => imageInput(blobOf(sample.image), name).then(onImage, onError));
    images.append(button);
  });
  const texts = document.getElementById("text-samples");
  texts.replaceChildren();
  for (const sample of samples.texts) {
    const button = element("button", { type: "button", class: "sample", title: sample.label }, sample.text);
    button.addEventListener("click", () => onText(sample.text));
    texts.append(button);
  }
  // Prompts for a causal LM (instructions-lm): a click sets the prompt and leaves the answer to the model.
  const prompts = document.getElementById("prompt-samples");
  prompts.replaceChildren();
  for (const sample of samples.prompts) {
    const title = `answer: ${sample.answer}${sample.tagged ? " (tagged)" : ""}`;
    const button = element("button", { type: "button", class: "sample", title }, sample.text);
    button.addEventListener("click", () => onText(sample.text));
    prompts.append(button);
  }
}
