"""What every model shares (textrnn.models.base): the backbone from a config, device, tokenizer, clip groups."""

import pytest
import torch

from textrnn import ConfigError, RNNClassifier, RNNConfig, TextRNNError
from textrnn.models.base import build_backbone


def test_the_backbone_follows_the_config():
    config = RNNConfig(vocab_size=30, embedding_dim=6, hidden_size=5, num_layers=2, cell="gru", bidirectional=True)
    backbone = build_backbone(config)
    assert backbone.embedding.weight.shape == (30, 6)
    assert backbone.encoder.cell == "gru" and backbone.encoder.num_layers == 2
    assert backbone.get_output_dim() == 10


def test_a_config_without_a_vocabulary_is_a_one_line_error():
    with pytest.raises(ConfigError, match="vocab_size must be set"):
        build_backbone(RNNConfig())


def test_device_tokenizer_and_clip_groups():
    model = RNNClassifier(RNNConfig(vocab_size=12, embedding_dim=4, hidden_size=4))
    assert model.device == torch.device("cpu")
    assert model.clip_groups() == [list(model.parameters())]
    with pytest.raises(TextRNNError, match="has no tokenizer"):
        model.require_tokenizer()
