"""The composed models: classifier, ensemble, language model; save -> load."""


import pytest
import torch
import torch.nn.functional as F

from textrnn import (
    ConfigError,
    RNNLanguageModel,
    TextTokenizer,
)

from ..helpers import TEXT, language_model


@pytest.fixture
def char_tok():
    return TextTokenizer.train([TEXT], "char")


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
