"""Run folders (textrnn.training.run_folder): progress, links, pruning, resume points."""

import json

import pytest
import torch

from textrnn import CheckpointError, RNNClassifier
from textrnn.training.run_folder import (
    BEST,
    LAST,
    RunCheckpointer,
    TrainingProgress,
    find_resume_point,
    is_empty_run,
    load_tensors,
    point_link,
)

from ..helpers import char_tokenizer, classifier


def test_progress_tracks_the_best_metric_either_way():
    p = TrainingProgress()
    assert [p.observe(v, greater_is_better=True) for v in (0.5, 0.7, 0.6, 0.7)] == [True, True, False, False]
    assert p.best_metric == 0.7 and p.bad_evals == 2
    q = TrainingProgress()
    assert [q.observe(v, greater_is_better=False) for v in (2.0, 1.5, 1.6)] == [True, True, False]


def test_saves_move_the_links_and_prune_all_but_the_newest_and_the_pinned(tmp_path):
    model = classifier(char_tokenizer())
    run = RunCheckpointer(tmp_path / "run", keep=1)
    run.write_run_config({"task": "classification"})
    assert is_empty_run(tmp_path / "run")
    for step, best in ((1, True), (2, False), (3, False)):
        run.save(model, {"t": torch.tensor([step])}, TrainingProgress(step=step), {"task": "classification"},
                 {"accuracy": step / 10}, best)
    folders = sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir())
    assert folders == ["step-00000001", "step-00000003"]  # 1 is best, 3 is last; 2 pruned
    assert (tmp_path / "run" / BEST).resolve().name == "step-00000001"
    assert run.metrics_of(LAST) == {"accuracy": 0.3}
    point = find_resume_point(tmp_path / "run")
    assert point.progress.step == 3 and point.training_state()["t"].tolist() == [3]
    assert not is_empty_run(tmp_path / "run")


def test_a_link_is_replaced_atomically(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    point_link(tmp_path / "last", tmp_path / "a")
    point_link(tmp_path / "last", tmp_path / "b")
    assert (tmp_path / "last").resolve() == (tmp_path / "b").resolve()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_folder_without_resume_state_and_a_pickle_are_refused(tmp_path):
    model = RNNClassifier.build(classifier(char_tokenizer()).config, char_tokenizer())
    model.save_pretrained(tmp_path / "plain")
    with pytest.raises(CheckpointError, match="resume from a training checkpoint"):
        find_resume_point(tmp_path / "plain")
    torch.save({"code": json.JSONDecoder}, tmp_path / "bad.pt")  # a class: only a full unpickle could read it
    with pytest.raises(CheckpointError, match="not a weights-only tensor file"):
        load_tensors(tmp_path / "bad.pt")
