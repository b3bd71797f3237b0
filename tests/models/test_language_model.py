"""The composed models: classifier, ensemble, language model; save -> load."""


import pytest
import torch
import torch.nn.functional as F

from textrnn import (
    ConfigError,
    RNNConfig,
    RNNLanguageModel,
    TextTokenizer,
    load_model,
)

from ..helpers import TEXT, language_model


def test_state_carried_over_two_chunks_equals_one_pass(char_tok):
    model = language_model(char_tok, cell="lstm")
    ids = torch.tensor([char_tok.encode(TEXT[:40])])
    whole, _, state_whole = model(ids)
    first, _, state = model(ids[:, :17])
    second, _, state_two = model(ids[:, 17:], state=state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
    torch.testing.assert_close(state_two[1], state_whole[1])


def test_lm_loss_ignores_minus_100_exactly(char_tok):
    model = language_model(char_tok)
    ids = torch.tensor([char_tok.encode("the fox jumps")])
    targets = torch.roll(ids, -1, dims=1)
    logits, full, _ = model(ids, targets=targets)
    masked = targets.clone()
    masked[0, 3:7] = -100
    _, part, _ = model(ids, targets=masked)
    keep = masked[0] != -100
    by_hand = F.cross_entropy(logits[0, keep], targets[0, keep])  # the mean over the unmasked positions only
    torch.testing.assert_close(part, by_hand)
    assert not torch.isclose(full, part)


def test_weight_tying_and_projection(char_tok, tmp_path):
    tied = language_model(char_tok, tie_weights=True)
    assert tied.head.weight is tied.backbone.embedding.weight and tied.projection is None
    projected = language_model(char_tok, tie_weights=True, hidden_size=12)
    assert projected.projection is not None and projected.head.weight is projected.backbone.embedding.weight
    projected.save_pretrained(tmp_path / "p")
    again = RNNLanguageModel.from_pretrained(tmp_path / "p")
    assert again.head.weight is again.backbone.embedding.weight
    ids = torch.tensor([char_tok.encode("the lazy dog")])
    torch.testing.assert_close(again(ids)[0], projected(ids)[0])


def test_ensemble_of_language_models_is_a_config_error(char_tok):
    with pytest.raises(ConfigError, match="ensemble_size applies to classifiers only"):
        language_model(char_tok, ensemble_size=2)


def adaptive_model(vocab: int = 60, cutoffs=(10, 30)) -> RNNLanguageModel:
    torch.manual_seed(0)
    config = RNNConfig(task="language_model", vocab_size=vocab, embedding_dim=12, hidden_size=16, num_layers=2,
                       adaptive_softmax_cutoffs=list(cutoffs), tokenizer_kind="word")
    return RNNLanguageModel(config).eval()


def full_softmax_from_the_same_weights(model, hidden):
    """log p(w | h) computed by hand: the head's softmax over the shortlist and one entry per
    cluster, plus the cluster's own softmax for a word in it."""
    adaptive = model.adaptive
    head = F.log_softmax(adaptive.head(hidden), -1)  # (N, shortlist + clusters)
    parts = [head[:, :adaptive.shortlist_size]]
    for i, tail in enumerate(adaptive.tail):
        parts.append(head[:, adaptive.shortlist_size + i:adaptive.shortlist_size + i + 1]
                     + F.log_softmax(tail(hidden), -1))
    return torch.cat(parts, -1)


def test_adaptive_softmax_log_probabilities_are_exact():
    model = adaptive_model()
    ids = torch.randint(4, 60, (3, 9))
    logits, loss, _ = model(ids)
    hidden, _ = model.backbone(ids)
    expected = full_softmax_from_the_same_weights(model, hidden.flatten(0, 1)).view(3, 9, 60)
    assert torch.allclose(logits, expected, atol=1e-5)
    assert torch.allclose(logits.exp().sum(-1), torch.ones(3, 9), atol=1e-5) and loss is None
    targets = torch.randint(4, 60, (3, 9))
    targets[0, :4] = -100
    _, loss, _ = model(ids, targets=targets)  # training's fast path: no full distribution
    kept = targets != -100
    assert loss.item() == pytest.approx(-expected[kept].gather(-1, targets[kept][:, None]).mean().item(), abs=1e-5)


def test_adaptive_softmax_generates_saves_and_exports(tmp_path):
    words = " ".join(f"w{i}" for i in range(56))
    model = RNNLanguageModel(adaptive_model().config, TextTokenizer.train([words], "word"))
    prompt = torch.tensor([5, 6, 7])
    greedy = model.generate(prompt, 12, temperature=0)[0]
    logits, _, _ = model(torch.cat([prompt, greedy[:-1]])[None])
    assert greedy.tolist() == logits[0, 2:].argmax(-1).tolist()  # the stepper's choices are the model's
    sampled = model.generate(prompt, 200, temperature=1.5, seed=0)[0]
    assert not set(sampled.tolist()) & set(model.never_sampled()) and len(set(sampled.tolist())) > 20
    model.save_pretrained(tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt")
    assert torch.equal(loaded(prompt[None])[0], model(prompt[None])[0])
    pytest.importorskip("onnxruntime")
    from textrnn.serving.export import TOLERANCE, check_parity, example_feeds, export_onnx

    path = export_onnx(model, tmp_path / "lm.onnx")  # checked against torch at export
    assert check_parity(model, path, example_feeds(model, batch=7, seed=3)) <= TOLERANCE


@pytest.mark.parametrize("cutoffs,match", [([30, 10], "increasing"), ([10, 59], "below the vocabulary size")])
def test_adaptive_softmax_settings_are_checked(cutoffs, match):
    with pytest.raises(ConfigError, match=match):
        adaptive_model(cutoffs=cutoffs)
    config = RNNConfig(task="language_model", vocab_size=60, adaptive_softmax_cutoffs=[10], tie_weights=True)
    with pytest.raises(ConfigError, match="cannot tie weights"):
        RNNLanguageModel(config)


def test_init_range_starts_embedding_and_output_small_with_pad_at_zero():
    config = RNNConfig(task="language_model", vocab_size=50, embedding_dim=8, hidden_size=8, init_range=0.1)
    model = RNNLanguageModel(config)
    embedding = model.backbone.embedding.weight
    assert embedding.abs().max() <= 0.1 and embedding[0].abs().sum() == 0 and embedding[5].abs().sum() > 0
    assert model.head.weight.abs().max() <= 0.1 and model.head.bias.abs().sum() == 0
    with pytest.raises(ConfigError, match="model.init_range must be positive"):
        RNNLanguageModel(RNNConfig(task="language_model", vocab_size=50, init_range=-1.0))
