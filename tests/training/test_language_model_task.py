"""The language-model task (textrnn.training.language_model_task): its streams, its step and its evaluation."""


import numpy as np
import torch

from textrnn import RNNLanguageModel, load_config
from textrnn.core.distributed import Dist
from textrnn.training.language_model_task import LanguageModelTask, detach_state
from textrnn.training.task import StepOutput


def make_task(corpus_file, tmp_path, *extra):
    config = load_config(None, [f"data.dataset={corpus_file}", "task=language_model", "tokenizer.kind=char",
                                "data.batch_size=4", "data.seq_len=16", "model.hidden_size=16", "model.embedding_dim=8",
                                *extra])
    return LanguageModelTask(config, Dist(), torch.device("cpu"), tmp_path)


def test_the_streams_hold_the_text_split_nanogpt_style(corpus_file, tmp_path):
    task = make_task(corpus_file, tmp_path)
    text = corpus_file.read_text()
    cut = int(len(text) * 0.9)
    assert task.train_tokens.tolist() == task.tokenizer.encode(text[:cut])
    assert task.valid_tokens.tolist() == task.tokenizer.encode(text[cut:])
    counts = task.token_counts()
    assert counts.sum() == len(task.train_tokens) and counts.shape == (task.tokenizer.vocab_size,)
    assert task.metric == "loss" and task.greater_is_better is False


def test_a_step_carries_a_detached_state_and_counts_its_tokens(corpus_file, tmp_path):
    task = make_task(corpus_file, tmp_path)
    torch.manual_seed(0)
    model = RNNLanguageModel(task.model_config(), task.tokenizer)
    batches = task.train_loader.iterate(0)
    first = task.step_loss(model, next(batches))
    assert isinstance(first, StepOutput) and first.tokens == 4 * 16 and first.loss.requires_grad
    carried = task.carry
    second = task.step_loss(model, next(batches))
    second.loss.backward()  # backward stops at the carried state: it was detached
    assert carried is not None and task.carry is not carried
    assert all(not part.requires_grad for part in detach_state(task.carry))
    assert detach_state(None) is None


def test_the_carried_state_is_the_tasks_own_state_dict(corpus_file, tmp_path):
    """What a resume needs of the task: the carry as carry_h/carry_c stacked over ranks, back on load; reset
    forgets it (an epoch's end, a rollback)."""
    task = make_task(corpus_file, tmp_path)
    model = RNNLanguageModel(task.model_config(), task.tokenizer)
    assert task.state_dict() == {}
    task.step_loss(model, next(task.train_loader.iterate(0)))
    state = task.state_dict()
    h, c = task.carry
    assert set(state) == {"carry_h", "carry_c"} and torch.equal(state["carry_h"][0], h.detach())
    other = make_task(corpus_file, tmp_path / "other")
    other.load_state_dict(state, rank=0)
    assert torch.equal(other.carry[0], h) and torch.equal(other.carry[1], c)
    other.reset_state()
    assert other.carry is None and other.state_dict() == {}


def test_evaluation_is_the_mean_loss_per_token_of_the_validation_stream(corpus_file, tmp_path):
    task = make_task(corpus_file, tmp_path, "data.eval_batch_size=1")
    model = RNNLanguageModel(task.model_config(), task.tokenizer).eval()
    metrics = task.evaluate(model)
    ids = torch.from_numpy(np.asarray(task.valid_tokens, dtype=np.int64))[None, :]
    with torch.no_grad():
        _, loss, _ = model(ids[:, :-1], targets=ids[:, 1:])
    assert metrics["tokens"] == ids.numel() - 1
    assert abs(metrics["loss"] - float(loss)) < 1e-5 and "bits_per_char" in metrics
