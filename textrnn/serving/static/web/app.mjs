// The page's wiring: load the model, then classify as the user types, or stream generated text.
// window.textrnn exposes the loaded model and textrnn.mjs's functions (the browser tests use them).
import { classify, explain, generate, load } from "./textrnn.mjs";

const $ = (id) => document.getElementById(id);

function showBars(result) {
  const chosen = new Set(result.labels || [result.label]);
  $("bars").replaceChildren(...Object.entries(result.probabilities).sort((a, b) => b[1] - a[1]).map(([name, p]) => {
    const row = document.createElement("div");
    row.className = "bar" + (chosen.has(name) ? " chosen" : "");
    row.dataset.label = name;
    row.innerHTML = `<span class="name"></span><span class="track"><span class="fill" style="width:${(100 * p).toFixed(1)}%"></span></span><span class="value">${p.toFixed(3)}</span>`;
    row.querySelector(".name").textContent = name;
    return row;
  }));
}

function wireClassifier(model) {
  let latest = 0;
  const update = async () => {
    const asked = ++latest, text = $("text").value;
    if (!text.trim()) return $("bars").replaceChildren(), $("explanation").replaceChildren();
    const [result] = await classify(model, [text]);
    const explained = $("explain").checked ? await explain(model, text) : null; // showExplanation: highlight.js
    if (asked !== latest) return; // a slower earlier answer never overwrites a later one
    showBars(result);
    showExplanation($("explanation"), explained);
  };
  $("text").addEventListener("input", update);
  $("explain").addEventListener("change", update);
  $("classify").classList.remove("hidden");
}

function wireGenerator(model) {
  for (const id of ["temperature", "top_k"]) {
    $(id).addEventListener("input", () => ($(`${id}-value`).textContent = id === "top_k" && $(id).value === "0" ? "off" : $(id).value));
  }
  let stopped = false;
  $("stop").addEventListener("click", () => (stopped = true));
  $("run").addEventListener("click", async () => {
    $("error").textContent = "";
    stopped = false;
    $("run").disabled = true; $("stop").disabled = false;
    const prompt = $("prompt").value, ids = [];
    const shown = document.createElement("span");
    shown.className = "prompt"; shown.textContent = prompt;
    const continuation = document.createElement("span");
    $("output").replaceChildren(shown, continuation);
    const settings = { temperature: Number($("temperature").value), topK: Number($("top_k").value) || null,
                       maxNewTokens: Number($("max_new_tokens").value), seed: Math.floor(Math.random() * 2 ** 31) };
    const started = performance.now();
    try {
      for await (const id of generate(model, prompt, settings)) {
        ids.push(id);
        continuation.textContent = (model.meta.tokenizer_kind === "char" ? "" : " ") + model.tokenizer.decode(ids);
        if (stopped) break;
      }
      $("speed").textContent = `${ids.length} tokens, ${(1000 * ids.length / (performance.now() - started)).toFixed(1)} tokens/s`;
    } catch (e) { $("error").textContent = e.message; }
    $("run").disabled = false; $("stop").disabled = true;
  });
  $("generate").classList.remove("hidden");
}

try {
  const started = performance.now();
  const model = await load(".");
  const kind = model.meta.task === "classification" ? "classifier" : "language model";
  const cell = model.meta.cell.toUpperCase();
  $("about").textContent = `${cell === "LSTM" ? "An" : "A"} ${cell} ${kind}, ${model.tokenizer.size.toLocaleString()} ${model.meta.tokenizer_kind} tokens, running in this page.`;
  (model.meta.task === "classification" ? wireClassifier : wireGenerator)(model);
  window.textrnn = { model, classify, explain, generate, loadedMs: performance.now() - started };
} catch (e) {
  $("about").textContent = "";
  $("error").textContent = `the model did not load: ${e.message}`;
  window.textrnn = { error: e.message };
}
