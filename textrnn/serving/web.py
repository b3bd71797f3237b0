"""A static web export: a folder that classifies or generates in the browser, with no server.

``textrnn export --format web --checkpoint DIR --output SITE/`` writes::

    SITE/index.html        the page (one text box; a prompt and sampling settings for a generator)
    SITE/app.mjs, page.css the page's wiring and style
    SITE/highlight.js      an explanation as highlighted words (shared with textrnn serve's page)
    SITE/textrnn.mjs       tokenizer, classifier and generator, no DOM (the tests run it in Node)
    SITE/model.onnx        the ONNX graph (fp32, or int8 with --quantize int8)
    SITE/model.json        what the script needs beside the graph: task, labels, thresholds, state shape
    SITE/tokenizer.json    the checkpoint's tokenizer
    SITE/vendor/           onnxruntime-web (wasm) and tokenizers.js, copied in, with their licences

Any static file server works (``python -m http.server`` in SITE, a Hugging Face static Space,
GitHub Pages); the page fetches nothing from elsewhere. The JavaScript packages come from the
runtime folder (:mod:`textrnn.serving.web_runtime`); without them the export stops with a
one-line error saying how to fetch them.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any, Optional, Union

from ..core.durable import fsync_dir
from ..core.errors import TextRNNError
from ..models.base import TextModel
from ..models.classifier import TextClassifier
from ..models.generation_config import fill_page
from ..models.language_model import RNNLanguageModel
from ..models.registry import load_model
from .export import export_onnx
from .web_runtime import runtime_files, vendor_name

PAGE_FILES = ("index.html", "app.mjs", "textrnn.mjs")
MARKER = "model.json"  # a folder holding it was written by this export, and may be replaced


def page_meta(model: TextModel) -> dict[str, Any]:
    """What the page's script reads beside the graph (``model.json``)."""
    c = model.config
    meta = {"task": model.task, "tokenizer_kind": model.require_tokenizer().kind, "cell": c.cell,
            "num_layers": c.num_layers, "hidden_size": c.hidden_size, "vocab_size": c.vocab_size,
            "pad_id": c.pad_id}
    if isinstance(model, TextClassifier):
        return meta | {"label_names": list(model.label_names), "thresholds": model.thresholds(),
                       "problem_type": c.problem_type, "text_fields": list(c.text_fields or []),
                       "field_separator": c.field_separator}
    assert isinstance(model, RNNLanguageModel)  # the other task
    return meta | {"never_sampled": model.never_sampled()}


def check_output(output: Path) -> None:
    """The site folder may be new, empty, or an earlier export (it holds ``model.json``); nothing else is replaced."""
    if output.exists() and (not output.is_dir() or (any(output.iterdir()) and not (output / MARKER).is_file())):
        raise TextRNNError(f"{output} exists and is not an earlier web export; choose a new or empty --output folder")
    if not output.parent.is_dir():
        raise TextRNNError(f"folder {output.parent} does not exist; create it or choose another --output")


def write_site(model: TextModel, folder: Path, files: dict[str, Path], quantize: Optional[str]) -> None:
    """Every file of the site into ``folder``."""
    export_onnx(model, folder / "model.onnx", quantize=quantize)
    (folder / "model.json").write_text(json.dumps(page_meta(model), indent=1) + "\n", encoding="utf-8")
    model.require_tokenizer().save(folder / "tokenizer.json")
    (folder / ".nojekyll").write_bytes(b"")  # GitHub Pages: serve the files as they are, no Jekyll build
    copy_scripts(folder, files)


def copy_scripts(folder: Path, files: dict[str, Path]) -> None:
    """The page, its scripts and ``vendor/`` (the runtime ``files``) into ``folder``."""
    static = resources.files("textrnn.serving") / "static"
    for shared in ("page.css", "highlight.js"):  # shared with textrnn serve's page
        (folder / shared).write_bytes((static / shared).read_bytes())
    for name in PAGE_FILES:  # the page's controls start at GenerationConfig's defaults
        (folder / name).write_text(fill_page((static / "web" / name).read_text(encoding="utf-8")), encoding="utf-8")
    vendor = folder / "vendor"
    vendor.mkdir(exist_ok=True)
    for key, path in files.items():
        shutil.copyfile(path, vendor / vendor_name(key))


def replace_folder(staging: Path, output: Path) -> None:
    """Put ``staging`` where ``output`` is: the old folder is moved aside first and removed last."""
    old = output.with_name(f".{output.name}.old-{os.getpid()}")
    if output.exists():
        os.replace(output, old)
    os.replace(staging, output)
    fsync_dir(output.parent)
    shutil.rmtree(old, ignore_errors=True)


def export_web(source: Union[str, os.PathLike, TextModel], output: Union[str, os.PathLike],
               quantize: Optional[str] = None, web_runtime: Optional[Union[str, os.PathLike]] = None) -> Path:
    """Write a static site for ``source`` (a checkpoint folder, run folder or model) into ``output``.

    The site is built in a temporary folder beside ``output`` and moved into place whole, so a
    failed export leaves an earlier site as it was. Returns ``output``.
    """
    files = runtime_files(web_runtime)  # first: a missing runtime stops the export before any work
    output = Path(output)
    check_output(output)
    model = load_model(source) if isinstance(source, (str, os.PathLike)) else source
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.partial-", dir=output.parent))
    try:
        model.to("cpu")  # in place
        write_site(model, staging, files, quantize)
        os.chmod(staging, 0o755)  # mkdtemp's 0700 would hide the site from a web server's user
        replace_folder(staging, output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return output


def site_weight(folder: Union[str, os.PathLike]) -> dict[str, int]:
    """Bytes of what a visitor downloads: the model, the wasm, and the scripts and JSON."""
    folder = Path(folder)
    sizes = {"model": (folder / "model.onnx").stat().st_size,
             "wasm": sum(p.stat().st_size for p in (folder / "vendor").glob("*.wasm"))}
    scripts = [p for p in folder.rglob("*") if p.is_file() and p.suffix in (".mjs", ".html", ".json")]
    sizes["scripts_and_json"] = sum(p.stat().st_size for p in scripts)
    return sizes | {"total": sum(sizes.values())}
