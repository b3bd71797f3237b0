"""Load test of `textrnn serve` on localhost: 32 concurrent clients against the same requests one at a time.

    python benchmarks/bench_serve.py [--clients 32] [--requests 40] [--max-seconds 120]

Serves an SST-2-sized BiLSTM classifier (random weights; the cost is the same) with the real
`textrnn serve` process on a free local port. Each of ``--clients`` threads sends
``--requests`` requests of one short sentence; every tenth request of a client is a bad one
(empty list, broken JSON, an unknown field, a body over the size limit), which must get a 4xx
while every good request gets a 200. Then one client sends the same good requests one at a
time. Prints requests/s of both, their ratio, and p50/p99 latency of the good requests under
load. Bounded: at most ``--clients x --requests`` requests and ``--max-seconds`` per phase.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import build, texts  # noqa: E402

from tests.serving import running_server  # noqa: E402

BAD = [({"texts": []}, None), (None, b'{"texts": ['), ({"texts": ["a"], "extra": 1}, None), ({"texts": ["x" * 2_000_000]}, None)]


def client(url: str, sentences: list[str], deadline: float, out: dict, lock: threading.Lock, mix_bad: bool) -> None:
    import httpx

    with httpx.Client(timeout=30) as session:
        for i, sentence in enumerate(sentences):
            if time.monotonic() > deadline:
                break
            if mix_bad and i % 10 == 9:
                body, raw = BAD[(i // 10) % len(BAD)]
                response = session.post(f"{url}/predict", json=body) if raw is None else session.post(
                    f"{url}/predict", content=raw, headers={"content-type": "application/json"})
                with lock:
                    out["bad_ok" if 400 <= response.status_code < 500 else "bad_wrong"] += 1
                continue
            started = time.perf_counter()
            response = session.post(f"{url}/predict", json={"texts": [sentence]})
            with lock:
                out["latencies"].append(time.perf_counter() - started)
                out["good_failed"] += response.status_code != 200


def phase(url: str, work: list[list[str]], max_seconds: float, mix_bad: bool = True) -> dict:
    out, lock = {"latencies": [], "good_failed": 0, "bad_ok": 0, "bad_wrong": 0}, threading.Lock()
    deadline = time.monotonic() + max_seconds
    threads = [threading.Thread(target=client, args=(url, sentences, deadline, out, lock, mix_bad)) for sentences in work]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seconds = time.perf_counter() - started
    lat = np.array(out["latencies"]) * 1e3
    return {"good_requests": len(lat), "seconds": round(seconds, 2), "requests_per_s": round(len(lat) / seconds, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 2), "p99_ms": round(float(np.percentile(lat, 99)), 2),
            "good_failed": out["good_failed"], "bad_got_4xx": out["bad_ok"], "bad_not_4xx": out["bad_wrong"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=40, help="per client")
    parser.add_argument("--max-seconds", type=float, default=120)
    parser.add_argument("--batch-window-ms", type=float, default=None, help="the server's (default: its own)")
    args = parser.parse_args()
    sentences = texts(args.clients * args.requests, 20, seed=2)
    work = [sentences[i::args.clients] for i in range(args.clients)]
    with tempfile.TemporaryDirectory() as tmp:
        checkpoint = build().save_pretrained(Path(tmp) / "model")
        extra = [] if args.batch_window_ms is None else ["--batch-window-ms", str(args.batch_window_ms)]
        with running_server(checkpoint, *extra) as url:
            phase(url, [s[:5] for s in work[:4]], 30)  # warm-up
            loaded = phase(url, work, args.max_seconds)
            print(f"{args.clients} clients: {json.dumps(loaded)}", flush=True)
            one_by_one = [[s for c in work for i, s in enumerate(c) if i % 10 != 9]]
            alone = phase(url, one_by_one, args.max_seconds, mix_bad=False)
            print(f"one at a time: {json.dumps(alone)}", flush=True)
    report = {"concurrent": loaded, "one_at_a_time": alone,
              "throughput_ratio": round(loaded["requests_per_s"] / alone["requests_per_s"], 2),
              "p99_over_p50_under_load": round(loaded["p99_ms"] / loaded["p50_ms"], 2)}
    print(json.dumps(report, indent=1))
    assert statistics.mean([loaded["good_failed"], alone["good_failed"]]) == 0, "a good request failed"


if __name__ == "__main__":
    main()
