"""Load test of `textrnn serve` on localhost: 32 concurrent clients against the same requests one at a time.

    python benchmarks/bench_serve.py [--clients 32] [--requests 100] [--max-seconds 120]

Serves an SST-2-sized BiLSTM classifier (random weights; the cost is the same) with the real
`textrnn serve` process on a free local port. Each of ``--clients`` clients (asyncio connections) sends
``--requests`` requests of one short sentence; every tenth request of a client is a bad one
(empty list, broken JSON, an unknown field, a body over the size limit), which must get a 4xx
while every good request gets a 200. Then one client sends the same good requests one at a
time. Prints requests/s of both, their ratio, and p50/p99 latency of the good requests under
load. Bounded: at most ``--clients x --requests`` requests and ``--max-seconds`` per phase.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_predict import build, texts  # noqa: E402

from tests.server_harness import running_server  # noqa: E402

BAD = [({"texts": []}, None), (None, b'{"texts": ['), ({"texts": ["a"], "extra": 1}, None),
       ({"texts": ["x" * 2_000_000]}, None)]


def request_bytes(port: int, body: bytes) -> bytes:
    return (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def exchange(reader, writer, request: bytes) -> int:
    """Send one request on a kept-alive connection; read the whole answer; its status code."""
    writer.write(request)  # no drain(): an oversized body is answered (413) while it is still being sent
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    length = next(int(line.split(":", 1)[1]) for line in lines if line.lower().startswith("content-length:"))
    await reader.readexactly(length)
    return int(lines[0].split()[1])


async def bad_request(port: int, i: int) -> int:
    """A bad request on its own connection: a 413 is answered before its body is read, so the connection ends."""
    body, raw = BAD[(i // 10) % len(BAD)]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        return await exchange(reader, writer, request_bytes(port,
                                                            raw if raw is not None else json.dumps(body).encode()))
    except (ConnectionError, asyncio.IncompleteReadError):
        return 0
    finally:
        writer.close()


async def client(port: int, sentences: list[str], deadline: float, out: dict, mix_bad: bool) -> None:
    """One client: a kept-alive connection, one request at a time, as an HTTP library would send them.

    Raw asyncio HTTP/1.1 rather than a client library in threads: the clients share the server's
    2 cores, and httpx in 32 threads spent more CPU per request than the server did.
    """
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for i, sentence in enumerate(sentences):
            if time.monotonic() > deadline:
                break
            if mix_bad and i % 10 == 9:
                out["bad_ok" if 400 <= await bad_request(port, i) < 500 else "bad_wrong"] += 1
                continue
            request = request_bytes(port, json.dumps({"texts": [sentence]}).encode())
            started = time.perf_counter()
            status = await exchange(reader, writer, request)
            out["latencies"].append(time.perf_counter() - started)
            out["good_failed"] += status != 200
    finally:
        writer.close()


async def run_clients(port: int, work: list[list[str]], max_seconds: float, mix_bad: bool) -> tuple[dict, float]:
    out = {"latencies": [], "good_failed": 0, "bad_ok": 0, "bad_wrong": 0}
    deadline = time.monotonic() + max_seconds
    started = time.perf_counter()
    await asyncio.gather(*(client(port, sentences, deadline, out, mix_bad) for sentences in work))
    return out, time.perf_counter() - started


def phase(url: str, work: list[list[str]], max_seconds: float, mix_bad: bool = True) -> dict:
    gc.collect()
    gc.freeze()  # this process holds torch too: its full collections would stall the clients' clocks
    out, seconds = asyncio.run(run_clients(int(url.rsplit(":", 1)[1]), work, max_seconds, mix_bad))
    lat = np.array(out["latencies"]) * 1e3
    return {"good_requests": len(lat), "seconds": round(seconds, 2), "requests_per_s": round(len(lat) / seconds, 1),
            "p50_ms": round(float(np.percentile(lat, 50)), 2), "p99_ms": round(float(np.percentile(lat, 99)), 2),
            "good_failed": out["good_failed"], "bad_got_4xx": out["bad_ok"], "bad_not_4xx": out["bad_wrong"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--requests", type=int, default=100, help="per client")
    parser.add_argument("--max-seconds", type=float, default=120)
    parser.add_argument("--batch-window-ms", type=float, default=None, help="the server's (default: its own)")
    args = parser.parse_args()
    sentences = texts(args.clients * args.requests, 20, seed=2)
    work = [sentences[i :: args.clients] for i in range(args.clients)]
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
