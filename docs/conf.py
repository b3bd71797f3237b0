"""Sphinx configuration of the textrnn reference site. Build it with ``make docs`` (strict: any warning fails).

The API pages and the config reference are generated at build time (``docs/_ext/textrnn_reference.py``):
a page per public name in ``textrnn.__all__``, a page per module, and one table per config section
from the config dataclasses and their comments. Nothing of them is kept by hand.
"""

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(Path(__file__).parent / "_ext")]

project = "textrnn"
author = "the textrnn developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "myst_parser", "textrnn_reference"]
source_suffix = {".md": "markdown", ".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build", "results", "images", "_ext"]
html_theme = "furo"
html_title = "textrnn"

# Docstrings are reStructuredText with Google-style Args/Returns sections.
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_typehints_format = "short"
autodoc_inherit_docstrings = False
napoleon_google_docstring = True
napoleon_numpy_docstring = False

# Strict: every reference must resolve (nitpicky), except names of other libraries, whose inventories this
# offline build cannot fetch.
nitpicky = True
nitpick_ignore_regex = [
    ("py:class", "RunResult"),  # Trainer.fit's return type, documented in textrnn.training.run_folder
    (r"py:.*", r"(torch|np|numpy|datasets|pandas|tokenizers|pathlib|typing|collections|os|io|asyncio|argparse|"
               r"logging|concurrent|contextlib|dataclasses|enum|abc|pyarrow|safetensors|starlette|fastapi|pydantic|threading|"
               r"huggingface_hub|nn)(\..*)?"),
    (r"py:class", r"textrnn(\.\w+)*\._\w+"),  # private base classes named by show-inheritance
    (r"py:.*", r"(Tensor|Module|Path|PathLike|Iterator|Iterable|Sequence|Callable|Optional|Union|Any|"
               r"ContextManager|IO|State|Carry|Autocast|ConfigLike|DatasetDict|Dataset|Generator|Parameter|"
               r"Protocol|NamedTuple|ThreadPoolExecutor|AbstractEventLoop|Queue|Namespace|ArgumentParser|"
               r"memmap|ndarray|device|dtype|Tokenizer|Executor|T|LanguageModel)"),
    (r"py:class", r"(int|float|str|bool|list|dict|tuple|set|bytes|object|type|None|Exception|ValueError)"),
    (r"py:(obj|class)", r".*\.(T|M|State|Carry|Autocast)"),  # type variables and aliases
    # the choice keys' Literal types of textrnn.core.config (their values are in the config reference's rows)
    (r"py:.*", r"(Literal|TaskName|Cell|Strategy|Block|Pooling|ProblemType|TokenizerKind|WordSplit|Optimizer|"
               r"OnDivergence|DistillLossName)"),
]
myst_heading_anchors = 4
suppress_warnings = ["myst.header"]
