"""The prepared-data cache: built once under a lock, found by key, torn folders rebuilt, waiters reuse."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from textrnn import DataError
from textrnn.data.cache import PreparedCache, cache_key, cache_root, file_identity

from ..conftest import ROOT


def writer(calls: list):
    def build(folder: Path) -> dict:
        calls.append(folder)
        (folder / "tokens.bin").write_bytes(b"\x01\x02\x03\x04")
        return {"rows": 4}

    return build


def test_a_key_is_built_once_then_found(tmp_path):
    cache, calls = PreparedCache(tmp_path), []
    folder, meta, built = cache.get("lm-a", writer(calls))
    again, meta_again, built_again = cache.get("lm-a", writer(calls))
    assert built and not built_again and len(calls) == 1 and folder == again == tmp_path / "lm-a"
    assert meta == meta_again and meta["rows"] == 4 and meta["files"] == {"tokens.bin": 4}
    assert not list(tmp_path.glob("*.partial-*"))  # built aside, renamed into place


def test_every_part_of_a_key_changes_it_and_order_does_not():
    base = {"source": {"size": 1}, "tokenizer": {"kind": "word"}, "reverse": False}
    assert cache_key("lm", base) == cache_key("lm", dict(reversed(list(base.items()))))
    changed = [{**base, "source": {"size": 2}}, {**base, "tokenizer": {"kind": "char"}}, {**base, "reverse": True}]
    keys = {cache_key("lm", base), cache_key("classification", base), *(cache_key("lm", c) for c in changed)}
    assert len(keys) == 5


def test_a_file_rewritten_with_the_same_size_is_new_data(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("abcd")
    first = file_identity(path)
    stamp = path.stat().st_mtime_ns
    path.write_text("abce")
    os.utime(path, ns=(stamp, stamp))  # same size, same time: the hash of the bytes differs
    assert file_identity(path) != first


def test_a_copied_file_with_the_same_bytes_keeps_its_identity(tmp_path):
    # a data folder copied afresh (a new machine, a re-download, a session's fresh copy) gets new modification
    # times; its prepared data, and a transfer set the teacher spent half an hour labelling, must still be found
    path = tmp_path / "a.txt"
    path.write_text("abcd" * 1000)
    first = file_identity(path)
    os.utime(path, ns=(first_ns := path.stat().st_mtime_ns + 10**12, first_ns))
    assert file_identity(path) == first


def test_a_large_file_is_known_by_its_size_time_and_sampled_ends(tmp_path, monkeypatch):
    import textrnn.data.cache as cache_module

    monkeypatch.setattr(cache_module, "FULL_HASH_BYTES", 100)  # past it, hashing every byte each run costs too much
    path = tmp_path / "big.txt"
    path.write_text("abcd" * 1000)
    first = file_identity(path)
    os.utime(path, ns=(first["mtime_ns"] + 10**12, first["mtime_ns"] + 10**12))
    assert file_identity(path) != first and "sample_sha256" in first


def test_a_torn_folder_is_detected_and_rebuilt(tmp_path, logged):
    cache, calls = PreparedCache(tmp_path), []
    folder, _, _ = cache.get("k", writer(calls))
    (folder / "tokens.bin").write_bytes(b"\x01")  # cut short, as a full disk or a stray copy leaves it
    assert cache.find("k") is None
    _, meta, built = cache.get("k", writer(calls))
    assert built and len(calls) == 2 and (folder / "tokens.bin").stat().st_size == 4
    assert any("incomplete" in note for note in logged)


SLOW_BUILDER = """
import sys, time
from pathlib import Path
from textrnn.data.cache import PreparedCache

def build(folder):
    (folder / "started").write_text("x")
    time.sleep(float(sys.argv[2]))
    (folder / "tokens.bin").write_bytes(b"1234")
    return {"builder": "first"}

PreparedCache(Path(sys.argv[1])).get("k", build)
"""


def start_builder(root: Path, seconds: float) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", SLOW_BUILDER, str(root), str(seconds)],
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    deadline = time.monotonic() + 60
    while not list(root.glob("k.partial-*/started")):
        assert proc.poll() is None and time.monotonic() < deadline, "the builder never started"
        time.sleep(0.05)
    return proc


@pytest.mark.slow
def test_a_second_process_waits_for_the_builder_then_reuses_its_folder(tmp_path, logged):
    builder = start_builder(tmp_path, 2.0)
    calls: list = []
    folder, meta, built = PreparedCache(tmp_path).get("k", writer(calls))
    assert builder.wait(timeout=60) == 0
    assert not built and not calls and meta["builder"] == "first" and (folder / "tokens.bin").read_bytes() == b"1234"
    assert any("another process is preparing" in note for note in logged)


def test_a_build_killed_half_way_leaves_no_cache_and_the_next_run_rebuilds(tmp_path):
    builder = start_builder(tmp_path, 60.0)
    builder.send_signal(signal.SIGKILL)
    builder.wait(timeout=60)
    assert PreparedCache(tmp_path).find("k") is None and list(tmp_path.glob("k.partial-*"))
    calls = []
    folder, _, built = PreparedCache(tmp_path).get("k", writer(calls))  # the dead writer's lock went with it
    assert built and len(calls) == 1 and not list(tmp_path.glob("k.partial-*"))


def test_waiting_past_the_timeout_is_a_one_line_error(tmp_path):
    builder = start_builder(tmp_path, 30.0)
    try:
        with pytest.raises(DataError, match=r"waited \d+ s for another process preparing the same data.*"
                                            r"raise data.prepare_timeout"):
            PreparedCache(tmp_path, timeout=0.5).get("k", writer([]))
    finally:
        builder.kill()
        builder.wait(timeout=60)


def test_a_failed_build_leaves_nothing(tmp_path):
    def failing(folder: Path) -> dict:
        (folder / "half.bin").write_bytes(b"12")
        raise DataError("the corpus has fewer than 2 tokens")

    with pytest.raises(DataError):
        PreparedCache(tmp_path).get("k", failing)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["k.lock"]


def test_the_cache_root_follows_the_setting_then_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTRNN_CACHE", str(tmp_path / "env"))
    assert cache_root(str(tmp_path / "set")) == tmp_path / "set" and cache_root(None) == tmp_path / "env"
    monkeypatch.delenv("TEXTRNN_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    assert cache_root(None) == tmp_path / "hf" / "textrnn"


@pytest.mark.slow
def test_a_killed_build_of_a_key_never_asked_for_again_is_swept_but_a_live_one_is_kept(tmp_path):
    dead = start_builder(tmp_path, 60.0)
    dead.send_signal(signal.SIGKILL)
    dead.wait(timeout=60)
    (tmp_path / "k.partial-999999999").mkdir()  # a key whose builder died long ago (no lock held)
    (tmp_path / "live").mkdir()
    live = start_builder(tmp_path / "live", 5.0)
    PreparedCache(tmp_path).get("other", writer([]))  # another key: the dead builds of "k" go
    assert not list(tmp_path.glob("k.partial-*"))
    PreparedCache(tmp_path / "live").get("another", writer([]))  # while "k" is being built there: kept
    assert list((tmp_path / "live").glob("k.partial-*"))
    assert live.wait(timeout=60) == 0


def test_a_kill_inside_a_save_leaves_nothing_once_the_run_starts_again(tmp_path):
    from textrnn.core.durable import atomic_write_dir
    from textrnn.training.run_folder import recover

    checkpoints = tmp_path / "run" / "checkpoints"
    (checkpoints / ".step-00000012.tmp-999999999-abcd1234").mkdir(parents=True)  # its writer is gone
    (checkpoints / ".step-00000008.tmp-5f2e9a1c").mkdir()  # the name before the pid was in it
    mine = checkpoints / f".step-00000016.tmp-{os.getpid()}-00000000"  # a writer alive now
    mine.mkdir()
    recover(tmp_path / "run")
    assert [p.name for p in checkpoints.iterdir()] == [mine.name]
    atomic_write_dir(checkpoints / "step-00000020", lambda folder: (folder / "x").write_text("1"))
    assert sorted(p.name for p in checkpoints.iterdir()) == sorted([mine.name, "step-00000020"])


def test_cache_list_and_prune_see_and_bound_the_cache(tmp_path, capsys):
    from textrnn import cli

    cache = PreparedCache(tmp_path)
    for i, key in enumerate(("old", "mid", "new")):
        cache.get(key, lambda folder: ((folder / "tokens.bin").write_bytes(b"x" * 1000), {"kind": "lm"})[1])
        os.utime(tmp_path / key, (time.time() - (3 - i) * 86400,) * 2)  # used 3, 2 and 1 days ago
    (tmp_path / "torn").mkdir()  # no meta.json: incomplete
    assert cli.main(["cache", "list", "--cache-dir", str(tmp_path)]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["key"] for r in rows[:-1]] == ["mid", "new", "old", "torn"] and rows[-1]["folders"] == 4
    assert cli.main(["cache", "prune", "--cache-dir", str(tmp_path), "--unused-days", "2.5"]) == 0
    removed = [json.loads(line)["key"] for line in capsys.readouterr().out.splitlines()[:-1]]
    assert sorted(removed) == ["old", "torn"]
    limit = 1500 / 2**30  # room for one folder: the least recently used goes
    assert cli.main(["cache", "prune", "--cache-dir", str(tmp_path), "--max-gb", str(limit)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir() if p.is_dir()) == ["new"]
    assert cache.find("new") is not None
