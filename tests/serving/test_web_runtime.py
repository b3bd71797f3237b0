"""Fetching the web export's JavaScript: the sha512 check, what a failed fetch leaves, the folder
rules and the CLI. The registry is a local folder laid out as the npm registry (file:// URLs);
`make test` fetches the real packages from registry.npmjs.org with `textrnn fetch-web`."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

import textrnn.serving.web_runtime as web_runtime
from textrnn import TextRNNError
from textrnn.serving.web_runtime import Package, fetch_runtime, npm_command, runtime_dir, runtime_files, vendor_name

from ..conftest import run_cli


def tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(f"package/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def publish(registry: Path, name: str, version: str, files: dict[str, bytes]) -> Package:
    """Put a package's tarball where an npm registry keeps it; its Package with the true integrity."""
    data = tarball(files)
    package = Package(name, version, "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode(), tuple(files))
    path = registry / name / "-" / f"{name.split('/')[-1]}-{version}.tgz"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return package


@pytest.fixture
def registry(tmp_path, monkeypatch) -> Path:
    folder = tmp_path / "registry"
    packages = (publish(folder, "onnxruntime-web", "9.9.9", {"dist/ort.mjs": b"ort", "package.json": b"{}"}),
                publish(folder, "@huggingface/tokenizers", "1.0.0", {"dist/tok.mjs": b"tok", "LICENSE": b"Apache"}))
    monkeypatch.setattr(web_runtime, "PACKAGES", packages)
    return folder


def test_fetch_unpacks_the_pinned_files_as_npm_lays_them_out(registry, tmp_path):
    root = fetch_runtime(tmp_path / "web", registry=registry.as_uri())
    files = runtime_files(root)
    assert files["onnxruntime-web/dist/ort.mjs"] == root / "node_modules/onnxruntime-web/dist/ort.mjs"
    assert files["@huggingface/tokenizers/dist/tok.mjs"].read_bytes() == b"tok"
    assert not [p for p in root.iterdir() if p.name.startswith(".fetch-")]  # the staging folder is gone
    assert vendor_name("@huggingface/tokenizers/LICENSE") == "huggingface-tokenizers.LICENSE"
    assert vendor_name("onnxruntime-web/dist/ort.mjs") == "ort.mjs"


def test_a_damaged_download_is_refused_and_leaves_earlier_files(registry, tmp_path):
    root = fetch_runtime(tmp_path / "web", registry=registry.as_uri())
    tgz = registry / "@huggingface/tokenizers/-/tokenizers-1.0.0.tgz"
    tgz.write_bytes(tgz.read_bytes()[:-1] + b"x")
    with pytest.raises(TextRNNError, match=r"@huggingface/tokenizers@1.0.0 downloaded with sha512 .* retry$"):
        fetch_runtime(root, registry=registry.as_uri())
    assert (root / "node_modules/@huggingface/tokenizers/dist/tok.mjs").read_bytes() == b"tok"
    assert not [p for p in root.iterdir() if p.name.startswith(".fetch-")]


def test_an_unreachable_registry_is_one_line(registry, tmp_path):
    with pytest.raises(TextRNNError, match=f"could not download .*`npm install --prefix {tmp_path / 'web'} "):
        fetch_runtime(tmp_path / "web", registry=(tmp_path / "nowhere").as_uri())


def test_missing_files_name_both_ways_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TEXTRNN_WEB_RUNTIME", str(tmp_path / "env"))
    assert runtime_dir() == tmp_path / "env" and runtime_dir(tmp_path / "arg") == tmp_path / "arg"
    with pytest.raises(TextRNNError) as error:
        runtime_files()
    message = str(error.value)
    assert "\n" not in message and "textrnn fetch-web" in message and npm_command(tmp_path / "env") in message
    assert "onnxruntime-web@1.31.1 @huggingface/tokenizers@0.2.0" in npm_command()


@pytest.mark.slow
def test_cli_fetch_web_skips_files_it_has_and_fails_in_one_line(tmp_path):
    from textrnn.serving.web_runtime import expected_files

    folder = tmp_path / "web"
    failed = run_cli("fetch-web", "--dir", str(folder), env={"TEXTRNN_NPM_REGISTRY": (tmp_path / "none").as_uri()})
    assert failed.returncode != 0 and len(failed.stderr.strip().splitlines()) == 1
    assert "could not download" in failed.stderr
    for path in expected_files(folder).values():  # the real pins' files, as an earlier fetch left them
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    done = run_cli("fetch-web", "--dir", str(folder), env={"TEXTRNN_NPM_REGISTRY": (tmp_path / "none").as_uri()})
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"web_runtime": str(folder), "fetched": False,
                                       "packages": {"onnxruntime-web": "1.31.1", "@huggingface/tokenizers": "0.2.0"}}
