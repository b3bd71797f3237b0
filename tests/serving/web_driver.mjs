// Runs a web export's own textrnn.mjs in Node for tests/serving/test_web.py.
// Usage: node web_driver.mjs REQUEST.json  ->  one JSON answer on stdout. Requests:
//   {"site", "job": "encode", "tokenizers": {name: tokenizer.json path}, "texts": [...]}  -> {name: [[ids]...]}
//   {"site", "job": "unicode", "tokenizer": path}  -> {classes, lowered}: every code point's Whitespace class, lowered text
//   {"site", "job": "classify", "texts": [...]}    -> [{label | labels, probabilities}]
//   {"site", "job": "explain", "texts": [...], "label"}  -> [explain(model, text, label)] (occlusion; null past MAX_EXPLAIN)
//   {"site", "job": "generate", "prompt", "tokens", "temperature", "top_k", "seed"} -> [ids]
import fs from "fs";

const request = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const web = await import(`${request.site}/textrnn.mjs`);
const readJson = (path) => JSON.parse(fs.readFileSync(path, "utf8"));
const read = (path) => new Uint8Array(fs.readFileSync(path));

async function answer() {
  if (request.job === "encode") {
    return Object.fromEntries(Object.entries(request.tokenizers).map(([name, path]) => {
      const tokenizer = new web.TextTokenizer(readJson(path));
      return [name, request.texts.map((text) => tokenizer.encode(text))];
    }));
  }
  if (request.job === "unicode") {
    const points = [];
    for (let c = 0; c < 0x110000; c++) if (c < 0xd800 || c >= 0xe000) points.push(String.fromCodePoint(c));
    const classes = points.map((ch) => String(("a" + ch + "a").match(web.WORD_PIECES).length)).join("");
    return { classes, lowered: web.lower(points.join("")) };
  }
  const model = await web.load(request.site, read);
  if (request.job === "classify") return web.classify(model, request.texts);
  if (request.job === "explain") return Promise.all(request.texts.map((text) => web.explain(model, text, request.label)));
  const ids = [];
  const settings = { maxNewTokens: request.tokens, temperature: request.temperature, topK: request.top_k, seed: request.seed };
  for await (const id of web.generate(model, request.prompt, settings)) ids.push(id);
  return ids;
}

process.stdout.write(JSON.stringify(await answer()));
