"""The model card: ``README.md`` in every checkpoint folder, in the Hugging Face Hub's format.

YAML front matter (``library_name``, ``pipeline_tag``, ``tags``, ``datasets``, and the metrics
in ``model-index``) and a body: how to use the model, how it was trained, its evaluation,
its labels and its limits. The trainer writes it with every checkpoint, so the card always
carries that checkpoint's metrics; ``from_pretrained`` never reads it.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, Optional

import yaml

from .contract import Described

CARD_FILE = "README.md"


def front_matter(model: Described, metrics: Optional[dict], experiment: Optional[dict]) -> dict:
    """The card's YAML header as a dict."""
    config, pipeline = model.config, model.pipeline_tag
    meta: dict = {"library_name": "textrnn", "pipeline_tag": pipeline, "tags": ["textrnn", config.cell, pipeline]}
    source = (experiment or {}).get("data", {}).get("dataset")
    if source and _is_hub_id(source):
        meta["datasets"] = [source]
    dataset = without_local_paths(source)  # a local folder is published by its name only
    numbers = {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float)) and k not in ("examples",)}
    if numbers:
        meta["metrics"] = sorted(numbers)
        meta["model-index"] = [{"name": "textrnn-model",
                                "results": [{"task": {"type": pipeline},
                                             "dataset": {"name": dataset or "unknown", "type": dataset or "unknown",
                                                          "split": "validation"},
                                             "metrics": [{"type": k, "value": round(float(v), 6),
                                                          "name": f"validation {k}"} for k, v in numbers.items()]}]}]
    return meta


def _is_hub_id(name: str) -> bool:
    """A Hub dataset id ('owner/name' or 'name'), not a local path or the built-in corpus."""
    return not os.path.exists(name) and not name.startswith((".", "/", "~", "textrnn:")) and name.count("/") <= 1


def model_card(model: Described, metrics: Optional[dict] = None, experiment: Optional[dict] = None) -> str:
    """The whole README.md text of ``model`` (a classifier or a language model)."""
    meta = front_matter(model, metrics, experiment)
    return "\n".join(["---", yaml.safe_dump(meta, sort_keys=False).strip(), "---", "",
                      *_body(model, metrics, experiment)])


def _body(model: Described, metrics: Optional[dict], experiment: Optional[dict]) -> list[str]:
    config = model.config
    kind = f"{'bidirectional ' if config.bidirectional else ''}{config.cell.upper()}"
    what = "text classifier" if model.is_classifier else "language model"
    call = 'model.predict(["a text to label"])' if model.is_classifier else 'model.generate_text("A prompt", 200)'
    lines = [
        f"# A {kind} {what} trained with textrnn",
        "",
        f"{config.num_layers} layer(s), hidden size {config.hidden_size}, embeddings {config.embedding_dim}, "
        f"a {config.tokenizer_kind} tokenizer of {config.vocab_size:,} entries.",
        "",
        "## Use",
        "",
        "```python",
        "from textrnn import load_model",
        'model = load_model("OWNER/NAME")  # a Hub id, or this folder\'s path',
        f"print({call})",
        "```",
        "",
    ]
    lines += (_training(model.train_command,
                        experiment) + _evaluation(metrics) + (_labels(config) if model.is_classifier else []))
    lines += ["## Limits", "",
              "Trained on one dataset: it knows that data's vocabulary, domain and label set, and nothing else.",
              "Words outside its vocabulary read as `<unk>`; texts far from the training data get confident-looking",
              "but unreliable probabilities. Check it on your own data before relying on it.", ""]
    return lines


def _training(command: str, experiment: Optional[dict]) -> list[str]:
    if not experiment:
        return ["## Training", "", "Saved with `save_pretrained`; the training settings were not recorded.", ""]
    distill = experiment.get("distill")
    if distill:
        teacher = without_local_paths(distill.get("teacher"))
        command = f"distill --teacher {teacher}"
    lines = ["## Training", "", f"{code_span(f'textrnn {command} --config config.yaml')}, with this config.yaml:", "",
             "```yaml",
             yaml.safe_dump(without_local_paths(experiment), sort_keys=False).strip(), "```", ""]
    if distill:
        lines += [f"Distilled from the teacher {code_span(str(teacher))} ({distill.get('loss')} loss on its logits, "
                  f"alpha {distill.get('alpha')}) on a transfer set of the training texts, "
                  f"{distill.get('augment')} augmented copies of each (masked, swapped, cut to n-grams) and any "
                  "`data.unlabeled` text, all labelled by the teacher.", ""]
    return lines


def without_local_paths(value: Any) -> Any:
    """``value`` with every local path (absolute, or starting ``./``, ``../`` or ``~``) cut to its last part.

    What a card (pushed to the Hub) or ``/info`` publishes names files, not the folders of the machine
    that trained the model. Hub ids and relative names are kept.
    """
    if isinstance(value, dict):
        return {key: without_local_paths(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_local_paths(item) for item in value]
    if isinstance(value, str) and (os.path.isabs(value) or value.startswith(("./", "../", "~"))):
        return os.path.basename(value.rstrip("/")) or value
    return value


def _evaluation(metrics: Optional[dict]) -> list[str]:
    numbers = {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float))}
    if not numbers:
        return ["## Evaluation", "", "Not evaluated when this checkpoint was saved.", ""]
    rows = [f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in numbers.items()]
    return ["## Evaluation", "", "On the validation split, when this checkpoint was saved:", "", "| metric | value |",
            "|---|---|", *rows, ""]


def _labels(config) -> list[str]:
    names = config.label_names or [str(i) for i in range(config.num_labels)]
    kind = "multi-label (a sigmoid per label)" if config.problem_type == "multi_label" else "single-label (softmax)"
    thresholds = f" Decision thresholds: {json.dumps(config.thresholds)}." if config.thresholds else ""
    return ["## Labels", "", f"{len(names)} labels, {kind}: " + ", ".join(code_span(n) for n in names) + "."
            + thresholds, ""]


def code_span(text: str) -> str:
    """``text`` as a Markdown code span that nothing in it can end: a fence longer than any run of backticks
    inside (CommonMark), line breaks as spaces. Markdown renders no HTML inside a code span."""
    text = " ".join(str(text).splitlines())
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence, pad = "`" * (longest + 1), " " if longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def read_front_matter(text: str) -> dict:
    """The YAML header of a card (what the Hub reads)."""
    if not text.startswith("---\n"):
        return {}
    return yaml.safe_load(text[4 : text.index("\n---", 4)]) or {}
