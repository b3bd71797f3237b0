"""The Task protocol both tasks implement (textrnn.training.task)."""


import torch

from textrnn.training.registry import get_task

from ..helpers import classifier_config, lm_config


def test_both_tasks_implement_the_task_protocol(sentiment_dir, corpus_file, tmp_path):
    from textrnn.core.distributed import Dist
    from textrnn.training.task import StepOutput, Task

    for config in (classifier_config(sentiment_dir, tmp_path / "c"), lm_config(corpus_file, tmp_path / "lm")):
        task = get_task(config.task).task_class(config, Dist(), torch.device("cpu"), tmp_path / config.task)
        assert isinstance(task, Task)
        assert isinstance(task.metric, str) and isinstance(task.greater_is_better, bool)
        batch = next(task.train_loader.iterate(0))
        model = get_task(config.task).model_class.build(task.model_config(), task.tokenizer)
        out = task.step_loss(model, batch)
        assert isinstance(out, StepOutput) and out.loss.ndim == 0 and out.tokens > 0
        task.reset_state()
        assert set(task.state_dict()) <= {"carry_h", "carry_c"}  # files, not streams: no loader position
