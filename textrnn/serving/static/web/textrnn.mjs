// textrnn in the browser: the tokenizer, the classifier and the generator, with no DOM, so the
// tests run this same file in Node. `textrnn export --format web` writes it next to the model.
//
//   model.json + tokenizer.json + model.onnx --load()--> {session, tokenizer, meta}
//   classifier:  texts -> encode -> pad to (B, T) + lengths (B,) -> session -> probabilities (B, C)
//   explain:     text -> T ids -> the text and its T one-token deletions as one batch -> probability drops (T,)
//   generator:   prompt -> ids -> one step per id (state carried) -> logits (1, V) -> pick -> step ...
import * as ort from "./vendor/ort.wasm.bundle.min.mjs";
import { Tokenizer as BPETokenizer } from "./vendor/tokenizers.min.mjs";

export const PAD = 0, UNK = 1, EOS = 3;
const WASM = "ort-wasm-simd-threaded.wasm";
const MAX_TOKENS = 10000; // textrnn predict keeps the first 10,000 tokens of a text
const MAX_CHARS_PER_TOKEN = 64; // and drops text beyond 64 characters a token before encoding

// The Rust tokenizers' Whitespace pre-tokenizer is \w+|[^\w\s]+ with Unicode classes; JavaScript's \w
// and \s are not those, so the classes are spelled out (the tests compare every code point).
const WORD = "\\p{Alphabetic}\\p{M}\\p{Nd}\\p{Pc}\\p{Join_Control}";
export const WORD_PIECES = new RegExp(`[${WORD}]+|[^${WORD}\\p{White_Space}]+`, "gu");
const WHITESPACE_PIECES = /\P{White_Space}+/gu;

// The Rust Lowercase normalizer lowers code point by code point, with no context: a final capital
// sigma becomes σ, not ς, as String.toLowerCase would make it.
export const lower = (text) => Array.from(text, (ch) => ch.toLowerCase()).join("");

function escapeRegExp(text) {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

// Encodes exactly as textrnn's Python TextTokenizer.encode does.
//  char: one id per code point, read literally ("<pad>" is five characters);
//  word: special tokens split out first, then lowercase (if trained so), then the Whitespace split
//        (words and punctuation apart) or the WhitespaceSplit (tokenizer.split: whitespace);
//  bpe:  Hugging Face's tokenizers.js, which matches the Rust byte-level BPE.
export class TextTokenizer {
  constructor(json) {
    const split = json.pre_tokenizer?.type;
    this.kind = json.model.type === "BPE" ? "bpe" : split === "Whitespace" || split === "WhitespaceSplit" ? "word" : "char";
    this.words = split === "WhitespaceSplit" ? WHITESPACE_PIECES : WORD_PIECES; // PTB-style text: whitespace only
    this.lowercase = json.normalizer?.type === "Lowercase";
    this.vocab = new Map(Object.entries(json.model.vocab));
    for (const t of json.added_tokens) this.vocab.set(t.content, t.id);
    this.tokens = [];
    for (const [token, id] of this.vocab) this.tokens[id] = token;
    this.special = new Set(json.added_tokens.filter((t) => t.special).map((t) => t.id));
    const added = json.added_tokens.map((t) => t.content).sort((a, b) => b.length - a.length);
    this.addedPattern = new RegExp(`(${added.map(escapeRegExp).join("|")})`, "u");
    if (this.kind === "bpe") this.bpe = new BPETokenizer(json, {});
  }

  get size() {
    return this.tokens.length;
  }

  encode(text) {
    if (this.kind === "char") {
      const ids = [];
      for (const ch of this.lowercase ? lower(text) : text) ids.push(this.vocab.get(ch) ?? UNK);
      return ids;
    }
    if (this.kind === "bpe") return Array.from(this.bpe.encode(text, { add_special_tokens: false }).ids, Number);
    return Array.from(this.wordPieces(text), ([, id]) => id);
  }

  // A word tokenizer's [piece, id] pairs, the piece as the vocabulary knows it (lowercased if trained so).
  *wordPieces(text) {
    const parts = text.split(this.addedPattern);
    for (let i = 0; i < parts.length; i++) {
      if (i % 2 === 1) { yield [parts[i], this.vocab.get(parts[i])]; continue; } // special, matched before normalizing
      for (const word of (this.lowercase ? lower(parts[i]) : parts[i]).match(this.words) ?? []) {
        yield [word, this.vocab.get(word) ?? UNK];
      }
    }
  }

  // The text each of `ids` (the encoding of `text`) stands for, to show beside its attribution.
  pieces(text, ids) {
    if (this.kind === "char") return Array.from(text).slice(0, ids.length);
    if (this.kind === "bpe") return ids.map((id) => this.bpe.decode([id]));
    return Array.from(this.wordPieces(text), ([piece]) => piece).slice(0, ids.length);
  }

  // The text of generated ids, special tokens left out (Python's decode).
  decode(ids) {
    const kept = ids.filter((id) => !this.special.has(id));
    if (this.kind === "bpe") return this.bpe.decode(kept);
    return kept.map((id) => this.tokens[id]).join(this.kind === "char" ? "" : " ");
  }
}

// Fetch (browser) or read (Node, with a `read` that returns bytes) the exported files at `base`.
export async function load(base = ".", read = null) {
  const bytes = async (name) => (read ? read(`${base}/${name}`) : new Uint8Array(await (await fetch(`${base}/${name}`)).arrayBuffer()));
  const json = async (name) => JSON.parse(new TextDecoder().decode(await bytes(name)));
  const meta = await json("model.json");
  const tokenizer = new TextTokenizer(await json("tokenizer.json"));
  ort.env.wasm.numThreads = 1; // threads need cross-origin isolation, which static hosts do not give
  // The wasm is read like every other file (its JavaScript loader is inside the bundle already), so the
  // browser and Node load it the same way.
  ort.env.wasm.wasmBinary = await bytes(`vendor/${WASM}`);
  const session = await ort.InferenceSession.create(await bytes("model.onnx"), { executionProviders: ["wasm"] });
  return { meta, tokenizer, session };
}

function encodeForInference(tokenizer, text) {
  const ids = tokenizer.encode(text.slice(0, MAX_TOKENS * MAX_CHARS_PER_TOKEN + 1));
  return ids.slice(0, MAX_TOKENS);
}

// Token-id rows -> the classifier's probabilities, one array of C per row (one batch, padded with <pad>).
async function probabilities(model, rows) {
  const width = Math.max(1, ...rows.map((r) => r.length));
  const ids = new BigInt64Array(rows.length * width); // zeros are <pad>
  rows.forEach((r, i) => r.forEach((id, t) => (ids[i * width + t] = BigInt(id))));
  const lengths = BigInt64Array.from(rows, (r) => BigInt(r.length));
  const out = await model.session.run({
    input_ids: new ort.Tensor("int64", ids, [rows.length, width]),
    lengths: new ort.Tensor("int64", lengths, [rows.length]),
  });
  const size = model.meta.label_names.length, probs = out.probabilities.data;
  return rows.map((_, i) => Array.from(probs.slice(i * size, (i + 1) * size)));
}

// One result per text, as `textrnn predict` gives it: {label | labels, probabilities: {name: p}}.
export async function classify(model, texts) {
  const rows = await probabilities(model, texts.map((t) => encodeForInference(model.tokenizer, t)));
  const { label_names: names, thresholds, problem_type: problem } = model.meta;
  return rows.map((row) => {
    const probabilities = Object.fromEntries(names.map((n, c) => [n, row[c]]));
    if (problem === "multi_label") return { labels: names.filter((_, c) => row[c] >= thresholds[c]), probabilities };
    return { label: names[row.indexOf(Math.max(...row))], probabilities };
  });
}

export const MAX_EXPLAIN = 256; // occlusion runs 1 + T texts of T tokens, so a longer text is not explained

// Which tokens drove the prediction, by occlusion, as Python's model.explain(text, label, method="occlusion"):
// a token's attribution is the label's probability minus its probability with that token deleted.
// The label defaults to the most probable one. Gives null for a text with no tokens or over MAX_EXPLAIN.
export async function explain(model, text, label = null) {
  const ids = encodeForInference(model.tokenizer, text), names = model.meta.label_names;
  if (!ids.length || ids.length > MAX_EXPLAIN) return null;
  const rows = await probabilities(model, [ids, ...ids.map((_, t) => ids.filter((_, s) => s !== t))]);
  const index = label === null ? rows[0].indexOf(Math.max(...rows[0])) : names.indexOf(label);
  if (index < 0) throw new Error(`label ${JSON.stringify(label)} is not one of this model's labels (${names.join(", ")})`);
  const score = rows[0][index];
  return { method: "occlusion", label: names[index], probability: score, score,
           tokens: model.tokenizer.pieces(text, ids), attributions: rows.slice(1).map((row) => score - row[index]) };
}

// The prompt's ids as textrnn's generator takes them: an empty prompt starts from a newline.
export function promptIds(tokenizer, prompt) {
  if (prompt === "") {
    const ids = tokenizer.encode("\n");
    return ids.length && ids[0] !== UNK ? ids : [EOS];
  }
  const ids = tokenizer.encode(prompt);
  if (!ids.length || ids.every((id) => id === UNK)) {
    throw new Error("the prompt has no token the model knows (all map to <unk>); use characters or words from the training text");
  }
  return ids;
}

// A small seeded generator (mulberry32), so a seed gives the same text every time.
function random(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// logits (V,) with the never-sampled ids at -Infinity -> the next id: greedy at temperature 0,
// else a draw from softmax(logits / temperature) over the top-k.
export function pick(logits, temperature, topK, rand) {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  if (temperature === 0) return best;
  let kept = Array.from(logits.keys()).filter((i) => logits[i] > -Infinity);
  if (topK && topK < kept.length) kept = kept.sort((a, b) => logits[b] - logits[a]).slice(0, topK);
  const weights = kept.map((i) => Math.exp((logits[i] - logits[best]) / temperature));
  let r = rand() * weights.reduce((a, b) => a + b, 0);
  for (let j = 0; j < kept.length; j++) if ((r -= weights[j]) <= 0) return kept[j];
  return kept[kept.length - 1];
}

// Yields new token ids one at a time; the state (h, and c for an LSTM) is carried step by step.
export async function* generate(model, prompt, { maxNewTokens = 200, temperature = 0.8, topK = null, seed = 0 } = {}) {
  const { num_layers: layers, hidden_size: hidden, cell, never_sampled: banned } = model.meta;
  const zeros = () => new ort.Tensor("float32", new Float32Array(layers * hidden), [layers, 1, hidden]);
  let state = cell === "lstm" ? { h: zeros(), c: zeros() } : { h: zeros() };
  const rand = random(seed);
  let logits = null;
  const step = async (id) => {
    const out = await model.session.run({ input_ids: new ort.Tensor("int64", BigInt64Array.of(BigInt(id)), [1, 1]), ...state });
    state = cell === "lstm" ? { h: out.h_out, c: out.c_out } : { h: out.h_out };
    logits = Float32Array.from(out.logits.data);
  };
  for (const id of promptIds(model.tokenizer, prompt)) await step(id);
  for (let n = 0; n < maxNewTokens; n++) {
    for (const id of banned) logits[id] = -Infinity;
    const id = pick(logits, temperature, topK, rand);
    yield id;
    await step(id);
  }
}
