"""The composed models: classifier, ensemble, language model; save -> load."""


import pytest
import torch
import torch.nn.functional as F

from textrnn import (
    ClassifierEnsemble,
    ConfigError,
    RNNClassifier,
    RNNConfig,
    TextRNNError,
    build_model,
    load_model,
    pad_batch,
)

from ..helpers import classifier, language_model


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("strategy", ["packed", "padded"])
def test_single_example_alone_equals_inside_padded_batch(char_tok, pooling, strategy):
    model = classifier(char_tok, pooling=pooling, bidirectional=True, num_layers=2, strategy=strategy)
    ids = [char_tok.encode(t) for t in ["the fox", "a much longer sentence here", "dog", ""]]
    input_ids, lengths = pad_batch(ids)
    batch_logits, loss = model(input_ids, lengths, torch.tensor([0, 1, 2, 0]))
    assert loss.ndim == 0 and batch_logits.shape == (4, 3)
    for i, row in enumerate(ids):
        alone, _ = model(*pad_batch([row]))
        torch.testing.assert_close(alone[0], batch_logits[i], rtol=1e-5, atol=1e-6)


def test_models_are_composed_of_parts_that_report_their_widths(char_tok):
    model = classifier(char_tok, bidirectional=True, pooling="attention")
    assert model.backbone.get_output_dim() == 12 == model.pooling.get_output_dim() == model.head.in_features
    lm = language_model(char_tok, tie_weights=True, hidden_size=12)
    assert lm.backbone.get_output_dim() == 12 and lm.projection.out_features == 8 == lm.head.in_features
    # the same backbone class in both: an LM's backbone weights load into a classifier's
    uni = classifier(char_tok, embedding_dim=8, hidden_size=8, num_layers=2)
    uni.backbone.load_state_dict(lm_backbone := language_model(char_tok).backbone.state_dict())
    assert all(torch.equal(uni.backbone.state_dict()[k], v) for k, v in lm_backbone.items())


@pytest.mark.parametrize("ensemble_size", [1, 2])
def test_label_smoothing_shapes_the_training_loss_only(char_tok, ensemble_size):
    model = classifier(char_tok, ensemble_size=ensemble_size)  # no dropout configured
    input_ids = torch.randint(4, len(char_tok), (5, 9))
    lengths, labels = torch.tensor([9, 4, 1, 7, 0]), torch.tensor([0, 2, 1, 1, 0])
    members = model.members if ensemble_size > 1 else [model]
    log_p = torch.stack([torch.log_softmax(m(input_ids, lengths)[0], dim=-1) for m in members])  # (K, B, C)
    smoothed = torch.full_like(log_p[0], 0.3 / 3).scatter_add_(1, labels[:, None], torch.full((5, 1), 0.7))  # (B, C)
    plain = -log_p.gather(2, labels[None, :, None].expand(len(members), 5, 1)).mean()
    _, train_plain = model.train()(input_ids, lengths, labels)
    torch.testing.assert_close(train_plain, plain)  # without the option: the plain cross-entropy
    _, train_loss = model(input_ids, lengths, labels, label_smoothing=0.3)
    torch.testing.assert_close(train_loss, -(smoothed * log_p).sum(2).mean())
    assert abs(train_loss.item() - plain.item()) > 1e-3


def test_lm_loss_trains_every_batch_word_and_only_when_asked(char_tok):
    model = classifier(char_tok, bidirectional=True, pooling="max", aux_lm_head=True).train()
    ids, lengths, labels = (torch.tensor([[4, 5, 6, 7], [8, 9, 0, 0], [10, 0, 0, 0]]), torch.tensor([4, 2, 1]),
                            torch.tensor([0, 1, 2]))
    logits, loss = model(ids, lengths, labels, lm_loss_weight=0.5)
    assert loss.item() > F.cross_entropy(logits, labels).item()
    loss.backward()
    touched = model.backbone.embedding.weight.grad.abs().sum(1) > 0
    assert touched[[4, 5, 6, 7, 8, 9, 10]].all() and not touched[[0, 11, 12]].any()
    logits, loss = model.eval()(ids, lengths, labels)
    torch.testing.assert_close(loss, F.cross_entropy(logits, labels))
    with pytest.raises(ConfigError, match="aux_lm_head"):
        classifier(char_tok).train()(ids, lengths, labels, lm_loss_weight=0.5)


def test_aux_head_config_errors_and_round_trip(char_tok, tmp_path):
    with pytest.raises(ConfigError, match="needs model.num_layers=1 when bidirectional"):
        classifier(char_tok, bidirectional=True, num_layers=2, aux_lm_head=True)
    with pytest.raises(ConfigError, match="aux_lm_head applies to classifiers only"):
        language_model(char_tok, aux_lm_head=True)
    model = classifier(char_tok, bidirectional=True, aux_lm_head=True, ensemble_size=2)
    model.save_pretrained(tmp_path / "aux")
    ids, lengths = torch.tensor([[4, 5, 6], [7, 8, 0]]), torch.tensor([3, 2])
    torch.testing.assert_close(RNNClassifier.from_pretrained(tmp_path / "aux")(ids, lengths)[0], model(ids, lengths)[0],
                               rtol=0, atol=0)


def test_classifier_without_labels_returns_no_loss(char_tok):
    logits, loss = classifier(char_tok)(torch.tensor([[5, 6]]), torch.tensor([2]))
    assert loss is None and logits.shape == (1, 3)


def test_predict_returns_label_names_and_probabilities(char_tok):
    out = classifier(char_tok).predict(["the dog", "", "fox" * 5000], max_length=100)
    assert [set(o["probabilities"]) for o in out] == [{"a", "b", "c"}] * 3
    assert all(o["label"] in "abc" and abs(sum(o["probabilities"].values()) - 1) < 1e-5 for o in out)
    assert out[2]["truncated_to_tokens"] == 100 and "truncated_to_tokens" not in out[0]


def test_predict_restores_the_training_mode_also_after_an_error(char_tok):
    model = classifier(char_tok).train()
    model.predict(["the dog"])
    assert model.training
    with pytest.raises(TextRNNError, match="text 1 is NoneType, not a string"):
        model.predict(["the dog", None])  # a one-line error, not the tokenizer's TypeError
    assert model.training


def test_ensemble_averages_member_probabilities_and_round_trips(char_tok, tmp_path):
    model = classifier(char_tok, bidirectional=True, pooling="max", ensemble_size=3)
    assert isinstance(model, ClassifierEnsemble) and len(model.members) == 3
    ids, lengths, labels = torch.tensor([[4, 5, 6], [7, 8, 0]]), torch.tensor([3, 2]), torch.tensor([2, 0])
    logits, eval_loss = model(ids, lengths, labels)
    member_logits = [m(ids, lengths)[0] for m in model.members]
    assert not torch.allclose(member_logits[0], member_logits[1])  # independent initializations
    mean_prob = torch.stack([torch.softmax(x, -1) for x in member_logits]).mean(0)
    torch.testing.assert_close(torch.softmax(logits, -1), mean_prob)
    torch.testing.assert_close(eval_loss, F.cross_entropy(mean_prob.log(), labels))  # the ensemble's own loss
    _, train_loss = model.train()(ids, lengths, labels)  # training: the members' mean (no dropout configured)
    torch.testing.assert_close(train_loss, torch.stack([F.cross_entropy(x, labels) for x in member_logits]).mean())
    model.eval().save_pretrained(tmp_path / "ens")
    again = RNNClassifier.from_pretrained(tmp_path / "ens")
    assert isinstance(again, ClassifierEnsemble)
    torch.testing.assert_close(again(ids, lengths)[0], logits, rtol=0, atol=0)
    assert [o["label"] for o in again.predict(["the dog", ""])] == [o["label"] for o in model.predict(["the dog", ""])]


def test_ensemble_is_built_explicitly_and_has_no_single_model_methods(char_tok):
    config = RNNConfig(vocab_size=len(char_tok), embedding_dim=8, hidden_size=6, ensemble_size=2)
    with pytest.raises(ConfigError, match="RNNClassifier is one model: build an ensemble"):
        RNNClassifier(config)
    ensemble = build_model(config)
    assert isinstance(ensemble, ClassifierEnsemble) and not isinstance(ensemble, RNNClassifier)
    for name in ("backbone", "pooling", "head", "aux_lm", "pool", "lm_loss", "drop_words"):
        assert not hasattr(ensemble, name), name  # nothing inherited that it could not run
    assert all(hasattr(member, "backbone") for member in ensemble.members)


# ---------------------------------------------------------------------------- a new head, pooled features (issue 26)
def test_replace_head_keeps_the_backbone_and_round_trips(char_tok, tmp_path):
    model = classifier(char_tok)
    before = model.backbone.encoder.weight_hh_l0.clone()
    model.replace_head(["x", "y", "z", "w", "v"])
    assert model.config.num_labels == 5 and model.label_names == ["x", "y", "z", "w", "v"]
    assert torch.equal(model.backbone.encoder.weight_hh_l0, before) and model.head.out_features == 5
    result = model.predict(["the quick fox"])[0]
    assert set(result["probabilities"]) == {"x", "y", "z", "w", "v"}
    assert abs(sum(result["probabilities"].values()) - 1) < 1e-5
    model.save_pretrained(tmp_path / "five")
    assert load_model(tmp_path / "five").predict(["the quick fox"]) == model.predict(["the quick fox"])


def test_an_assigned_head_that_disagrees_with_the_config_is_refused(char_tok, tmp_path):
    model = classifier(char_tok)
    model.head = torch.nn.Linear(model.head.in_features, 5)  # the usual fine-tuning move, without replace_head
    with pytest.raises(ConfigError, match="head.weight has shape"):
        model.save_pretrained(tmp_path / "bad")
    assert not (tmp_path / "bad").exists()
    with pytest.raises(ConfigError, match="replace_head"):
        model.predict(["the quick fox"])


def test_encode_gives_pooled_features_for_texts_and_ids(char_tok):
    model = classifier(char_tok, bidirectional=True, pooling="mean")
    features = model.encode(["the quick fox", "a stitch"])
    assert features.shape == (2, model.pooling.get_output_dim()) and not features.requires_grad
    ids = [char_tok.encode("the quick fox"), char_tok.encode("a stitch")]
    padded, lengths = pad_batch(ids)
    torch.testing.assert_close(model.encode(padded, lengths), features)
    ensemble = classifier(char_tok, ensemble_size=2)
    assert ensemble.encode(["the quick fox"]).shape == (1, 2 * ensemble.members[0].pooling.get_output_dim())
