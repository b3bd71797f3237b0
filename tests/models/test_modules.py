"""The parts models are composed of: dropout variants, pooling, the auxiliary LM head."""

import math

import pytest
import torch

from textrnn import UNK_ID, RNNEncoder
from textrnn.models.modules import POOLINGS, AuxiliaryLMHead, EmbeddingDropout, RNNBackbone, WordDropout


def test_word_dropout_replaces_tokens_with_unk_only_in_training():
    drop = WordDropout(0.5).train()
    input_ids = torch.randint(4, 40, (64, 30))
    input_ids[:, 20:] = 0  # padding
    dropped = drop(input_ids)
    changed = dropped != input_ids
    assert (dropped[changed] == UNK_ID).all() and not changed[:, 20:].any()
    assert 0.4 < changed[:, :20].float().mean() < 0.6
    assert torch.equal(drop.eval()(input_ids), input_ids)
    assert torch.equal(WordDropout(0.0).train()(input_ids), input_ids)


def test_embedding_dropout_uses_one_mask_per_sequence_across_time():
    drop = EmbeddingDropout(0.5).train()
    out = drop(torch.ones(8, 6, 10))
    zero = out == 0
    assert zero.any() and torch.equal(zero, zero[:, :1].expand_as(zero))  # the same dimensions at every step
    assert set(out.unique().tolist()) <= {0.0, 2.0}
    assert torch.equal(drop.eval()(torch.ones(2, 3, 4)), torch.ones(2, 3, 4))


@pytest.mark.parametrize("name", list(POOLINGS))
def test_pooling_reports_its_width_and_ignores_padding(name):
    torch.manual_seed(0)
    encoder = RNNEncoder(5, 4, bidirectional=True).eval()
    pooling = POOLINGS[name](encoder)
    assert pooling.get_output_dim() == 8
    x, lengths = torch.randn(3, 7, 5), torch.tensor([7, 3, 0])
    outputs, state = encoder(x, lengths)
    pooled = pooling(outputs, state, lengths)
    assert pooled.shape == (3, 8) and torch.equal(pooled[2], torch.zeros(8))  # an empty sequence pools to zeros
    x2 = x.clone()
    x2[1, 3:] = 100.0  # change only the padding of sequence 1
    outputs2, state2 = encoder(x2, lengths)
    torch.testing.assert_close(pooling(outputs2, state2, lengths)[1], pooled[1])


def _train_aux_head(head_class, steps: int = 150) -> float:
    """Train a bidirectional backbone + aux head on random tokens; the final aux loss."""
    torch.manual_seed(0)
    backbone = RNNBackbone(24, 16, 16, bidirectional=True, strategy="padded").train()
    head = head_class(16, 16, num_directions=2)
    optimizer = torch.optim.Adam([*backbone.parameters(), *head.parameters()], lr=1e-2)
    for _ in range(steps):
        ids = torch.randint(4, 24, (32, 12))
        lengths = torch.randint(2, 13, (32,))
        ids[torch.arange(12)[None, :] >= lengths[:, None]] = 0
        loss = head(backbone(ids, lengths)[0], ids, lengths, backbone.embedding.weight)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return loss.item()


class _LeakyHead(AuxiliaryLMHead):
    """A planted leak: the forward direction predicts the token it has just read."""

    def forward(self, outputs, input_ids, lengths, embedding):
        leaked = torch.cat([input_ids[:, :1], input_ids[:, :-1]], dim=1)  # token t sits where t+1 should
        return super().forward(outputs, leaked, lengths, embedding)


def test_aux_lm_loss_cannot_be_lowered_by_copying_what_a_direction_has_read():
    # Random tokens are unpredictable from the other tokens, so a correct objective stays near
    # log(#distinct targets); had either direction seen the word it predicts, training would
    # drive the loss towards 0 by copying: the planted leak shows this test would catch it.
    bound = 0.8 * math.log(20)
    assert _train_aux_head(AuxiliaryLMHead) > bound
    assert _train_aux_head(_LeakyHead) < bound


def test_aux_lm_loss_is_zero_but_in_the_graph_without_word_pairs():
    head = AuxiliaryLMHead(4, 3, num_directions=1)
    embedding = torch.randn(10, 3, requires_grad=True)
    outputs = torch.randn(2, 1, 4, requires_grad=True)
    loss = head(outputs, torch.tensor([[4], [0]]), torch.tensor([1, 0]), embedding)
    loss.backward()
    assert loss.item() == 0.0  # no pair of words: nothing to predict ...
    assert head.projection.weight.grad is not None  # ... yet the head stays in the graph, as DDP requires
