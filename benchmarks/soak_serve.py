"""Soak test of ``textrnn serve``: mixed, partly hostile traffic for N minutes against real servers on localhost.

    python benchmarks/soak_serve.py --minutes 10 [--clients 8]

Trains two tiny models (a classifier on the built-in toy sentiment set, a char model on the
built-in Python docs; about a minute), serves each with ``textrnn serve`` on a free port, and
runs ``--clients`` threads of random requests against both until the time is up:

* ``/predict`` with 1-8 texts;
* ``/generate`` streamed and read to the end, and not streamed;
* ``/generate`` streamed and dropped after its first event (a client that disconnects);
* bad requests: broken JSON, an unknown field, an empty text list, a negative temperature, too many
  new tokens, a prompt over ``--max-prompt-tokens``, beams x tokens over the cap, the wrong endpoint;
* ``--hostile`` threads beside them (issue 38): request smuggling (Content-Length 26 with a chunked 2 MB body),
  slowloris (20 connections at a time trickling header bytes), and poison texts (a lone surrogate in
  ``/predict`` among good requests).

Prints requests served, answers by kind and status, p50/p99 latency per kind, requests that got no
answer within 60 s (hung), 5xx answers, good requests that failed, each server's RSS at the start and end,
and whether the ``/predict`` batch loop and the generation queue were healthy at the end. Targets: no hung
request, no 5xx, no good request failed, RSS growth under 10%.
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def tiny_models(folder: Path) -> tuple[Path, Path]:
    """A classifier and a char generator, trained briefly (their quality does not matter here)."""
    from textrnn import train

    common = {"progress": False, "max_steps": 60, "eval_every": 60}
    train({"task": "classification", "data": {"dataset": "textrnn:tiny_sentiment", "text_column": "sentence"},
           "model": {"embedding_dim": 32, "hidden_size": 32}, "train": {**common, "output_dir": str(folder / "cls")}})
    train({"task": "language_model", "data": {"dataset": "textrnn:python_docs", "batch_size": 16, "seq_len": 64},
           "tokenizer": {"kind": "char"}, "model": {"embedding_dim": 32, "hidden_size": 128},
           "train": {**common, "output_dir": str(folder / "lm")}})
    return folder / "cls", folder / "lm"


def rss_mb(pid: int) -> float:
    """Resident memory of a process, MB."""
    with open(f"/proc/{pid}/status", encoding="ascii") as handle:
        return next(int(line.split()[1]) / 1024 for line in handle if line.startswith("VmRSS:"))


BAD = [  # (endpoint, body) pairs every server must answer with a 4xx
    ("predict", b"{not json"), ("predict", {"texts": []}), ("predict", {"texts": ["a"], "extra": 1}),
    ("generate", {"prompt": "def", "temperature": -1}), ("generate", {"prompt": "def", "max_new_tokens": 10**6}),
    ("generate", {"prompt": "x" * 400_000}), ("generate", {"prompt": "def", "num_beams": 16, "max_new_tokens": 900}),
]


def one_request(client, urls: dict, rng: random.Random) -> tuple[str, int]:
    """One random request; returns (kind, status). A connection error or timeout raises."""
    roll = rng.random()
    if roll < 0.35:
        texts = [rng.choice(["a great film", "dull", "loved it", "boring mess"]) for _ in range(rng.randint(1, 8))]
        return "predict", client.post(f"{urls['cls']}/predict", json={"texts": texts}).status_code
    body = {"prompt": rng.choice(["def ", "Return the", "The ", ""]), "max_new_tokens": rng.randint(10, 200),
            "temperature": 0.8, "seed": rng.randint(0, 1000)}
    if roll < 0.5:
        return "generate_whole", client.post(f"{urls['lm']}/generate", json={**body, "stream": False}).status_code
    if roll < 0.65:
        with client.stream("POST", f"{urls['lm']}/generate", json=body) as response:
            lines = [line for line in response.iter_lines() if line.startswith("data: ")]
            done = lines and json.loads(lines[-1][6:]).get("done")
            return "generate_stream", response.status_code if done else 599  # 599: the stream did not finish
    if roll < 0.8:
        with client.stream("POST", f"{urls['lm']}/generate", json={**body, "max_new_tokens": 1000}) as response:
            next(response.iter_lines())  # the first event, then the client goes away
            return "generate_dropped", response.status_code
    endpoint, bad = rng.choice(BAD)
    url = f"{urls['cls' if endpoint == 'predict' else 'lm']}/{endpoint}"
    sent = client.post(url, content=bad) if isinstance(bad, bytes) else client.post(url, json=bad)
    return "bad_request", sent.status_code


def raw_exchange(url: str, data: bytes, trickle: float = 0.0) -> int:
    """Send ``data`` on a fresh socket (a byte every ``trickle`` s when set) and return the status the server
    answered, 0 when it closed the connection without one."""
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        try:
            if trickle:
                for byte in data:
                    sock.sendall(bytes([byte]))
                    time.sleep(trickle)
            else:
                sock.sendall(data)
            head = sock.recv(64)
        except OSError:  # closed under the sender: what a slow client gets
            return 0
    return int(head.split(b" ")[1]) if head.startswith(b"HTTP/1.1 ") else 0


def hostile_worker(urls: dict, deadline: float, seed: int, record) -> None:
    """Smuggling, slowloris and poison texts against the classifier's server, until the deadline."""
    rng = random.Random(seed)
    url, chunk = urls["cls"], b"x" * 65536
    smuggled = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 26"
                b"\r\nTransfer-Encoding: chunked\r\n\r\n" + (b"10000\r\n" + chunk + b"\r\n") * 32 + b"0\r\n\r\n")
    poison = b'{"texts": ["\\ud800"]}'
    poisoned = (b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n%s" % (len(poison), poison))
    while time.monotonic() < deadline:
        roll, start = rng.random(), time.monotonic()
        if roll < 0.4:
            record("hostile_smuggle", raw_exchange(url, smuggled), time.monotonic() - start)
        elif roll < 0.8:
            record("hostile_poison", raw_exchange(url, poisoned), time.monotonic() - start)
        else:  # 20 slow clients at once, each a header byte every half second until the server closes it
            slow = [threading.Thread(target=lambda: record("hostile_slowloris", raw_exchange(
                url, b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\n" + b"X" * 60, 0.5), time.monotonic() - start))
                for _ in range(20)]
            for thread in slow:
                thread.start()
            for thread in slow:
                thread.join()


def worker(urls: dict, deadline: float, seed: int, record) -> None:
    import httpx

    rng = random.Random(seed)
    with httpx.Client(timeout=60) as client:
        while time.monotonic() < deadline:
            start = time.monotonic()
            try:
                kind, status = one_request(client, urls, rng)
            except httpx.TimeoutException:
                kind, status = "hung", 0
            except httpx.HTTPError as exc:
                kind, status = f"connection_error:{type(exc).__name__}", 0
            record(kind, status, time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--hostile", type=int, default=2, help="threads of hostile clients beside the others")
    args = parser.parse_args()
    from server_harness import running_server

    results: dict = collections.defaultdict(list)
    lock = threading.Lock()

    def record(kind: str, status: int, seconds: float) -> None:
        with lock:
            results[(kind, status)].append(seconds)

    with tempfile.TemporaryDirectory() as tmp:
        cls, lm = tiny_models(Path(tmp))
        with running_server(cls) as cls_url, running_server(lm, "--max-new-tokens", "1000") as lm_url:
            urls = {"cls": cls_url, "lm": lm_url}
            pids = {name: server_pid(url) for name, url in urls.items()}
            before = {name: rss_mb(pid) for name, pid in pids.items()}
            deadline = time.monotonic() + 60 * args.minutes
            threads = [threading.Thread(target=worker, args=(urls, deadline, i, record)) for i in range(args.clients)]
            threads += [threading.Thread(target=hostile_worker, args=(urls, deadline, 1000 + i, record))
                        for i in range(args.hostile)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            time.sleep(2)  # dropped generations finish stopping
            after = {name: rss_mb(pid) for name, pid in pids.items()}
            health = {name: final_health(url) for name, url in urls.items()}
    report(results, before, after, health, args)


def final_health(url: str) -> dict:
    """/health once the load has stopped; an unanswered one is reported, not raised."""
    import httpx

    try:
        return httpx.get(f"{url}/health", timeout=30).json()
    except httpx.HTTPError as exc:
        return {"status": f"no answer in 30 s ({type(exc).__name__})"}


def server_pid(url: str) -> int:
    """The pid of the process listening on ``url``'s port (from /proc/net/tcp and the fd links)."""
    import os

    port = int(url.rsplit(":", 1)[1])
    with open("/proc/net/tcp", encoding="ascii") as handle:
        inode = next(line.split()[9] for line in handle if line.split()[1].endswith(f":{port:04X}")
                     and line.split()[3] == "0A")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") == f"socket:[{inode}]" for fd in os.listdir(f"/proc/{pid}/fd")):
                return int(pid)
        except OSError:
            continue
    raise RuntimeError(f"no process listens on {url}")


def report(results: dict, before: dict, after: dict, health: dict, args) -> None:
    import statistics

    total = sum(len(v) for v in results.values())
    print(f"{args.minutes:g} minutes, {args.clients} clients: {total:,} requests")
    for (kind, status), times in sorted(results.items()):
        times = sorted(times)
        p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
        print(f"  {kind:18s} {status:4d}  {len(times):7,d}  p50 {1000 * statistics.median(times):8.1f} ms  "
              f"p99 {1000 * p99:8.1f} ms")
    fivexx = sum(len(v) for (kind, status), v in results.items() if status >= 500 and kind != "generate_stream")
    good = ("predict", "generate_whole", "generate_stream", "generate_dropped")
    failed = sum(len(v) for (kind, status), v in results.items() if kind in good and status != 200)
    unfinished = len(results.get(("generate_stream", 599), []))
    hung = sum(len(v) for (kind, _), v in results.items() if kind == "hung" or kind.startswith("connection"))
    print(f"hung or unanswered: {hung}; 5xx: {fivexx}; streams that did not finish: {unfinished}; "
          f"good requests that failed: {failed}")
    for name in before:
        print(f"{name} server RSS: {before[name]:.0f} MB -> {after[name]:.0f} MB "
              f"({100 * (after[name] / before[name] - 1):+.1f}%); /health: {json.dumps(health[name])}")


if __name__ == "__main__":
    main()
