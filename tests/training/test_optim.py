"""Optimizer, schedule, clipping and the training plan (textrnn.training.optim)."""






import pytest
import torch

from textrnn.training.optim import make_scheduler


def test_ensemble_members_train_exactly_as_they_would_alone():
    # The ensemble's loss is the members' mean, so a member's gradient is 1/K of its lone
    # gradient: SGD at K times the rate must retrace the lone run exactly, with clipping that
    # bites. (Adam does not see the 1/K at all, up to its epsilon.)
    from textrnn import ClassifierEnsemble, RNNClassifier, RNNConfig
    from textrnn.training.optim import clip_gradients

    config = RNNConfig(vocab_size=30, embedding_dim=8, hidden_size=8, bidirectional=True, pooling="max",
                       ensemble_size=3)
    torch.manual_seed(0)
    ensemble = ClassifierEnsemble(config)
    alone = RNNClassifier(RNNConfig(**{**config.to_dict(), "ensemble_size": 1}))
    alone.load_state_dict(ensemble.members[1].state_dict())
    optimizers = [torch.optim.SGD(ensemble.parameters(), lr=0.3), torch.optim.SGD(alone.parameters(), lr=0.1)]
    generator, norms = torch.Generator().manual_seed(1), []
    for _ in range(5):
        ids, lengths = torch.randint(1, 30, (6, 7), generator=generator), torch.tensor([7, 5, 3, 7, 1, 2])
        labels = torch.randint(0, 2, (6,), generator=generator)
        for model, optimizer in zip((ensemble, alone), optimizers):
            optimizer.zero_grad()
            model(ids, lengths, labels)[1].backward()
            norms.append(torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]))
            clip_gradients(model, 0.05)
            optimizer.step()
    assert min(norms[1::2]) > 0.05  # clipping acted on every lone step
    for (name, a), b in zip(ensemble.members[1].named_parameters(), alone.parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=name)
    assert not torch.allclose(ensemble.members[0].head.weight, alone.head.weight)


def test_scheduler_warms_up_then_decays():
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0)
    sched = make_scheduler(opt, warmup=4, total=20, min_ratio=0.1)
    lrs = []
    for _ in range(20):
        lrs.append(sched.get_last_lr()[0])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.25) and lrs[3] == pytest.approx(1.0)
    assert lrs[-1] == pytest.approx(0.1, abs=0.01) and all(a >= b for a, b in zip(lrs[3:], lrs[4:]))


def test_training_plan_stretches_small_datasets_and_leaves_big_ones_alone():
    from textrnn.training.optim import TrainingPlan

    # SST-2 with the shipped config: 1,053 steps an epoch, 4 epochs already exceed min_steps
    assert TrainingPlan.resolve(4, 500, 1053, min_steps=1200) == TrainingPlan(4, 500, 4212)
    # a 3,000-sentence set: 47 steps an epoch -> 26 epochs for 1,200 steps, evaluated after each
    assert TrainingPlan.resolve(4, 500, 47, min_steps=1200) == TrainingPlan(26, 47, 1222)
    assert TrainingPlan.resolve(4, 0, 47, min_steps=1200) == TrainingPlan(26, 0, 1222)  # 0 still means epoch ends
    assert TrainingPlan.resolve(4, 500, 47) == TrainingPlan(4, 500, 188)  # no min_steps: exactly as configured
    assert TrainingPlan.resolve(4, 500, 47, min_steps=100) == TrainingPlan(4, 500, 188)  # not stretched: the same
    assert TrainingPlan.resolve(4, 500, 47, max_steps=100, min_steps=1200).total_steps == 100


def test_layer_lr_decay_gives_each_layer_group_its_rate():
    from textrnn import RNNConfig, TextTokenizer
    from textrnn.models.classifier import TextClassifier
    from textrnn.training.optim import make_optimizer

    tok = TextTokenizer.train(["a b c"], "word")
    model = TextClassifier.build(RNNConfig(vocab_size=len(tok), embedding_dim=4, hidden_size=4, num_layers=2,
                                        bidirectional=True, pooling="attention", ensemble_size=2), tok)
    optimizer = make_optimizer(model, 0.01, 0.1, torch.device("cpu"), layer_lr_decay=2.0)
    rate = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    decay = {id(p): g["weight_decay"] for g in optimizer.param_groups for p in g["params"]}
    for name, param in model.named_parameters():
        want = 0.01 / 8 if "embedding" in name else 0.01 / 4 if "_l0" in name else 0.01 / 2 if "_l1" in name else 0.01
        assert rate[id(param)] == pytest.approx(want), name
        assert decay[id(param)] == (0.1 if param.dim() >= 2 and "embedding" not in name else 0.0), name
    plain = make_optimizer(model, 0.01, 0.1, torch.device("cpu"))
    assert [g["weight_decay"] for g in plain.param_groups] == [0.1, 0.0]  # off: the two groups as before


def test_after_validation_anneals_on_no_gain_and_triggers_ntasgd_non_monotonically():
    from types import SimpleNamespace

    from textrnn.training.optim import after_validation
    from textrnn.training.run_folder import TrainingProgress

    t = SimpleNamespace(optimizer="ntasgd", plateau_factor=0.25, nonmono=2)
    p = TrainingProgress()
    said = [after_validation(t, p, p.observe(loss, False), False) for loss in (5.0, 4.0, 4.5, 4.2, 3.9, 4.1)]
    # 4.5 is no gain (anneal) but not worse than the best before the last 2 (5.0); 4.1 is worse than 4.0
    assert said == [[], [], ["anneal"], ["anneal"], [], ["anneal", "average"]]
    assert p.lr_scale == 0.25 ** 3 and p.averaging
    assert after_validation(t, p, p.observe(9.0, False), False) == ["anneal"]  # averaging starts once


def test_a_uniform_average_is_the_mean_of_the_weights_since_it_began():
    from textrnn.training.optim import WeightAverage

    model = torch.nn.Linear(2, 1)
    seen = [model.weight.detach().clone()]
    average = WeightAverage(model, None)
    for step in range(4):
        with torch.no_grad():
            model.weight.add_(float(step + 1))
        average.update()
        seen.append(model.weight.detach().clone())
    with average.applied():
        assert torch.allclose(model.weight, torch.stack(seen).mean(0))


@pytest.mark.parametrize("name,kind", [("adamw", torch.optim.AdamW), ("sgd", torch.optim.SGD),
                                       ("ntasgd", torch.optim.SGD)])
def test_make_optimizer_builds_the_named_optimizer(name, kind):
    from textrnn import RNNConfig, RNNLanguageModel
    from textrnn.training.optim import make_optimizer

    model = RNNLanguageModel(RNNConfig(task="language_model", vocab_size=30, embedding_dim=8, hidden_size=8))
    optimizer = make_optimizer(model, 20.0, 0.0, torch.device("cpu"), name=name)
    assert type(optimizer) is kind  # a parameter loop once shadowed the name: every choice built AdamW
    before = [p.detach().clone() for p in model.parameters()]
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.01)
    optimizer.step()
    moved = max(float((p.detach() - b).abs().max()) for p, b in zip(model.parameters(), before))
    assert moved == pytest.approx(0.2 if kind is torch.optim.SGD else 20.0, rel=1e-3)  # lr x grad; Adam: lr x sign
