"""The static web export in headless Chromium: page weight, time to first prediction, generation speed.

    textrnn fetch-web
    python benchmarks/bench_web.py [--classifier runs/sst2_bilstm] [--generator runs/char_shakespeare] \\
        [--screenshots docs/images]

Each checkpoint is exported as a site (fp32 and int8), served by ``python -m http.server`` on
localhost and opened in a fresh headless Chromium with its cache off, as a first visit is:

* weight: bytes of the model, the wasm and the scripts and JSON a visit downloads;
* load: from navigation to the model being ready (wasm compiled, ONNX session created);
* first prediction: typing a sentence, to its labels on the page (classifier);
* generation: tokens/s of 300 sampled tokens (temperature 0.8), one step graph call a token;
* parity: the page's probabilities for 20 validation sentences against ``predict``.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.server_harness import Browser, static_server  # noqa: E402
from textrnn import load_model  # noqa: E402
from textrnn.serving.web import export_web, site_weight  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
GENERATE = ("(async () => { const t = performance.now(); let n = 0; for await (const id of window.textrnn.generate("
            "window.textrnn.model, 'ROMEO:', {maxNewTokens: 300, temperature: 0.8, seed: 1})) n++; "
            "return 1000 * n / (performance.now() - t); })()")


def open_site(browser: Browser, url: str) -> float:
    """Navigate with the cache off; milliseconds until the page's model is ready."""
    browser.call("Network.enable")
    browser.call("Network.setCacheDisabled", cacheDisabled=True)
    started = time.perf_counter()
    browser.call("Page.navigate", url=f"{url}/")
    browser.wait_for("window.textrnn && (window.textrnn.model || window.textrnn.error)", timeout=120)
    assert not browser.evaluate("window.textrnn.error"), browser.evaluate("window.textrnn.error")
    return 1e3 * (time.perf_counter() - started)


def classifier_page(browser: Browser, url: str, checkpoint: Path) -> dict:
    import pandas as pd

    report = {"load_ms": round(open_site(browser, url))}
    started = time.perf_counter()
    browser.type_into("text", "a gripping, beautifully acted film")
    browser.wait_for("document.querySelectorAll('#bars .bar').length > 0")
    report["first_prediction_ms"] = round(1e3 * (time.perf_counter() - started))
    texts = pd.read_parquet(SHARED / "sst2" / "validation.parquet")["sentence"].tolist()[:20]
    page = browser.evaluate_async(f"window.textrnn.classify(window.textrnn.model, {json.dumps(texts)})")
    want = load_model(checkpoint).predict(texts)
    report["max_abs_diff_vs_predict"] = max(abs(a["probabilities"][k] - b["probabilities"][k])
                                            for a, b in zip(page, want) for k in b["probabilities"])
    return report


def generator_page(browser: Browser, url: str) -> dict:
    report = {"load_ms": round(open_site(browser, url))}
    report["tokens_per_s"] = round(browser.evaluate_async(GENERATE), 1)
    return report


def measure(checkpoint: Path, quantize: str | None, page, shots: Path | None, tmp: Path) -> dict:
    site = export_web(checkpoint, tmp / f"site-{checkpoint.name}-{quantize}", quantize=quantize)
    browser = Browser(tmp / f"profile-{checkpoint.name}-{quantize}")
    try:
        with static_server(site) as url:
            report = {"weight_bytes": site_weight(site), **page(browser, url)}
            if shots is not None and quantize is None:
                if page is generator_page:
                    browser.type_into("prompt", "ROMEO:")
                    browser.evaluate("document.getElementById('run').click()")
                    browser.wait_for("document.getElementById('speed').textContent.includes('tokens/s')", 120)
                browser.screenshot(shots / f"web_{'generator' if page is generator_page else 'classifier'}.png")
    finally:
        browser.close()
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--classifier", type=Path, default=Path("runs/sst2_bilstm"))
    parser.add_argument("--generator", type=Path, default=Path("runs/char_shakespeare"))
    parser.add_argument("--screenshots", type=Path, help="keep a screenshot of each fp32 page here")
    args = parser.parse_args()
    report = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, checkpoint, page in (("classifier", args.classifier, lambda b, u: classifier_page(b, u, checkpoint)),
                                       ("generator", args.generator, generator_page)):
            if not checkpoint.exists():
                sys.exit(f"{checkpoint} does not exist: train it first (see bench_onnx.py) or pass --{name}")
            for quantize in (None, "int8", "int8-fp32-rnn"):
                key = f"{name}_{quantize or 'fp32'}"
                report[key] = measure(checkpoint, quantize, page, args.screenshots, Path(tmp))
                print(f"{key}: {json.dumps(report[key])}", flush=True)
    print(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
