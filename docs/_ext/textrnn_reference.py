"""Generate textrnn's reference pages when a Sphinx build starts, and fail it on undocumented public names.

* ``api/<name>.rst``: one page per name in ``textrnn.__all__`` (documented where the user imports it, with
  its defining module as the canonical name, so references to either resolve);
* ``api/modules/<module>.rst``: every module, with its other members;
* ``api/cli.md``: every subcommand and flag, read from the parser;
* ``api/configs.md``: one table per config section, every key with its type, default and help, read from
  the config dataclasses and the comments beside their fields (``textrnn.core.config_files.field_help``);
* ``api/quickstart.md``: ``examples/quickstart.ipynb`` run top to bottom (nbclient) and shown with what each cell
  printed (``TEXTRNN_DOCS_EXECUTE=0`` shows the cells without running them: the test suite runs the notebook
  in ``tests/test_notebook.py`` already).

The generated folder ``docs/api/`` is a build product (git ignores it).
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import os
import pkgutil
import re
import shutil
import tempfile
import types
from pathlib import Path

from sphinx.util import logging

LOG = logging.getLogger(__name__)
CONSTANTS = {  # the public names that are values, not classes or functions: what each one is
    "BOS_ID": "The id of ``<bos>`` in every textrnn tokenizer.", "EOS_ID": "The id of ``<eos>``, which ends a row.",
    "PAD_ID": "The id of ``<pad>``, which fills batches to one length.",
    "UNK_ID": "The id of ``<unk>``, which every unknown token becomes.",
    "SPECIAL_TOKENS": "``<pad>``, ``<unk>``, ``<bos>``, ``<eos>``, which every vocabulary starts with, in id order.",
    "MODELS": "Task name -> model class (:mod:`textrnn.models.registry`).",
    "TASKS": "Task name -> what trains it: model class, task class, command (:mod:`textrnn.training.registry`).",
}
CHECKED = {"class", "exception", "function", "method", "property", "module"}
# Public methods that textrnn's own layers call (the trainer, the server, the exporters, generation): a class
# page lists them apart, after what a user calls, so the page reads as a user's.
USED_BY_TEXTRNN = {
    "build", "check_config", "check_head", "clip_groups", "combine", "parts", "pooled", "result_of", "features",
    "features_dim", "require_tokenizer", "never_sampled", "run_prompt", "start_generation", "logits", "char_table",
    "encode_chars", "encode_flat", "id_dtype", "token_text", "layer_weights", "resolve_strategy", "fused_step",
    "initial_state", "extra_repr", "get_output_dim",
}


def public_pages(out: Path) -> list[str]:
    import textrnn

    pages = []
    for name in sorted(textrnn.__all__, key=str.lower):
        obj = getattr(textrnn, name)
        if inspect.isclass(obj):
            body = class_page(name, obj)
        elif inspect.isfunction(obj):
            body = f".. autofunction:: textrnn.{name}\n"
        else:
            body = f".. py:data:: textrnn.{name}\n\n   {CONSTANTS[name]}\n"
        (out / f"{name}.rst").write_text(f"{name}\n{'=' * len(name)}\n\n{body}", encoding="utf-8")
        pages.append(name)
    return pages


def class_page(name: str, cls: type) -> str:
    """The class with what a user calls first, then (under its own heading) what textrnn's layers call."""
    ours = [k for k in cls.__mro__ if k.__module__.startswith("textrnn")]
    callables = (property, classmethod, staticmethod, types.FunctionType)  # not a NamedTuple's field named alike
    internal = sorted(m for m in USED_BY_TEXTRNN if any(isinstance(vars(k).get(m), callables) for k in ours))
    body = (f".. autoclass:: textrnn.{name}\n   :members:\n   :undoc-members:\n   :show-inheritance:\n"
            "   :inherited-members: Module, RNNBase, Exception\n")  # our bases, not torch's or Python's
    if not internal:
        return body
    body += f"   :exclude-members: {', '.join(internal)}\n\nUsed by textrnn itself\n{'-' * 22}\n\n"
    body += ("The trainer, the server, generation and the exporters call these; a model of your own that "
             "plugs into them may override them.\n\n")
    for member in internal:
        kind = "autoproperty" if isinstance(inspect.getattr_static(cls, member), property) else "automethod"
        body += f".. {kind}:: textrnn.{name}.{member}\n\n"
    return body


def module_pages(out: Path) -> list[str]:
    import textrnn

    public = set(textrnn.__all__)
    pages = []
    for info in pkgutil.walk_packages(textrnn.__path__, "textrnn."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        exclude = sorted(name for name, value in vars(module).items() if not name.startswith("_") and (
            (name in public and value is getattr(textrnn, name, None))  # documented on its public page
            or ((inspect.isclass(value) or inspect.isfunction(value)) and value.__module__ != info.name)))  # imported
        options = "   :members:\n   :undoc-members:\n   :show-inheritance:\n"
        if exclude:
            options += f"   :exclude-members: {', '.join(exclude)}\n"
        title = f"``{info.name}``"
        (out / f"{info.name}.rst").write_text(f"{title}\n{'=' * len(title)}\n\n.. automodule:: {info.name}\n{options}",
                                              encoding="utf-8")
        pages.append(info.name)
    return pages


def config_page(path: Path) -> None:
    from textrnn.core import config
    from textrnn.core.config_files import field_help

    sections = [("(top level)", config.ExperimentConfig), ("data:", config.DataConfig),
                ("tokenizer:", config.TokenizerConfig), ("model:", config.RNNConfig), ("train:", config.TrainConfig)]
    lines = ["# Config reference", "",
             "Every key of a run's YAML config (`configs/*.yaml`), as `section.key` on the command line "
             "(`train.lr=0.001`). Generated from the config dataclasses in `textrnn/core/config.py` and the "
             "comments beside their fields; every key is optional.", ""]
    for title, cls in sections:
        helps = field_help(cls)
        lines += [f"## `{title}`", "", (inspect.getdoc(cls) or "").splitlines()[0], "",
                  "| key | type | default | what it does |", "| --- | --- | --- | --- |"]
        for field in dataclasses.fields(cls):
            default = field.default_factory() if field.default_factory is not dataclasses.MISSING else field.default
            if dataclasses.is_dataclass(default):
                default = "(section)"
            text = helps[field.name].replace("|", "\\|")
            kind = str(field.type).replace("|", "\\|")
            shown = repr(default).replace("|", "\\|")  # a pipe in a cell, even in code, ends the cell unescaped
            lines.append(f"| `{field.name}` | `{kind}` | `{shown}` | {text} |")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def cli_page(path: Path) -> None:
    """``api/cli.md``: every ``textrnn`` subcommand, its usage and each flag's default and help, read from
    the parser itself (``textrnn.cli.build_parser``), so the page cannot drift from the command."""
    import argparse

    from textrnn.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {action.dest: action.help for action in sub._choices_actions}
    lines = ["# Command-line reference", "", "Every `textrnn` subcommand (also `python -m textrnn` and the "
             "`scripts/` copies), generated from the parser. A mistake in any of them is one line on stderr and "
             "exit status 2.", ""]
    for name, command in sub.choices.items():
        lines += [f"## `textrnn {name}`", "", helps.get(name) or "", "", "```text",
                  command.format_usage().removeprefix("usage: ").strip(), "```", "",
                  "| argument | default | what it does |", "| --- | --- | --- |"]
        for action in command._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            flag = ", ".join(action.option_strings) or action.dest
            default = "" if action.default in (None, argparse.SUPPRESS, [], False) else f"`{action.default}`"
            text = (action.help or "").replace("|", "\\|")
            lines.append(f"| `{flag}` | {default} | {text} |")
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")


def notebook_page(path: Path, notebook: Path) -> None:
    """``path``: the notebook as a page, executed first unless ``TEXTRNN_DOCS_EXECUTE=0`` (an error in a cell
    fails the build, as a broken reference does)."""
    import nbformat

    book = nbformat.read(notebook, as_version=4)
    executed = os.environ.get("TEXTRNN_DOCS_EXECUTE", "1") != "0"
    if executed:
        import nbclient

        with tempfile.TemporaryDirectory() as tmp:  # it writes ONNX files and run folders where it runs
            nbclient.NotebookClient(book, timeout=600, kernel_name="python3",
                                    resources={"metadata": {"path": tmp}}).execute()
    path.write_text(render_notebook(book, notebook.name, executed), encoding="utf-8")


def render_notebook(book, name: str, executed: bool) -> str:
    """Markdown cells as they are, code cells as Python blocks, each followed by the text it printed."""
    how = "run when this site was built" if executed else "shown without running it"
    lines = [f"*This page is `examples/{name}`, {how}; open the notebook to run it yourself.*", ""]
    for cell in book.cells:
        if cell.cell_type == "markdown":
            lines += [cell.source, ""]
        elif cell.cell_type == "code":
            lines += ["```python", cell.source, "```", ""]
            printed = "".join(output.get("text", "") or output.get("data", {}).get("text/plain", "")
                              for output in cell.get("outputs", []))
            if printed.strip():
                lines += ["```text", printed.rstrip(), "```", ""]
    return "\n".join(lines)


def summary_of(obj) -> str:
    """The first line of an object's docstring (a constant's from CONSTANTS), for the index's table."""
    doc = inspect.getdoc(obj) if inspect.isclass(obj) or inspect.isfunction(obj) else None
    return ((doc or "").splitlines() or [""])[0].replace("|", "\\|")


def generate(app) -> None:
    out = Path(app.srcdir) / "api"
    shutil.rmtree(out, ignore_errors=True)
    (out / "modules").mkdir(parents=True)
    public = public_pages(out)
    modules = module_pages(out / "modules")
    config_page(out / "configs.md")
    cli_page(out / "cli.md")
    notebook_page(out / "quickstart.md", Path(app.srcdir).parent / "examples" / "quickstart.ipynb")
    import textrnn

    table = ["| name | what it is |", "| --- | --- |"]
    for name in public:
        line = CONSTANTS.get(name) or summary_of(getattr(textrnn, name))
        table.append(f"| [`{name}`]({name}.rst) | {line} |")
    index = ["# API reference", "", "Everything a user imports from `textrnn`, then every module by layer "
             "(`core` <- `data` <- `models` <- `training`, `serving` <- `cli`).", "", *table, "",
             "```{toctree}", ":caption: textrnn", ":maxdepth: 1", ":hidden:", "", *public, "```", "",
             "```{toctree}", ":caption: Modules", ":maxdepth: 1", "", *[f"modules/{m}" for m in modules], "```", ""]
    (out / "index.md").write_text("\n".join(index), encoding="utf-8")


def check_documented(app, what, name, obj, options, lines) -> None:
    """An undocumented public class, function, method or property fails the (warnings-as-errors) build."""
    if what in CHECKED and not any(line.strip() for line in lines) and not name.split(".")[-1].startswith("_"):
        LOG.warning(f"undocumented public {what}: {name} (add a docstring)", type="textrnn", subtype="undocumented")


def readme_links(app, docname, source) -> None:
    """The guides link to ``../README.md`` and its sections (read on GitHub); in the site, to the front page."""
    source[0] = re.sub(r"\]\(\.\./README\.md(#[\w-]*)?\)", "](index.md)", source[0])


def setup(app):
    app.connect("builder-inited", generate)
    app.connect("source-read", readme_links)
    app.connect("autodoc-process-docstring", check_documented)
    return {"parallel_read_safe": True}
