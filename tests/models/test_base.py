"""What every model shares (textrnn.models.base): the backbone from a config, device, tokenizer, clip groups."""

import pytest
import torch

from textrnn import ConfigError, RNNClassifier, RNNConfig, TextRNNError, TextTokenizer
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


# ---------------------------------------------------------------------------- built from Python (issue 26)
def word_tokenizer():
    from ..helpers import TEXT

    return TextTokenizer.train([TEXT], "word")


def test_keyword_constructors_and_from_tokenizer_fill_what_the_tokenizer_decides():
    from textrnn import RNNLanguageModel

    clf = RNNClassifier(vocab_size=100, num_labels=2, hidden_size=8)
    assert clf.config.vocab_size == 100 and clf.head.out_features == 2 and clf.config.task == "classification"
    tok = word_tokenizer()
    lm = RNNLanguageModel.from_tokenizer(tok, hidden_size=8, embedding_dim=8)
    assert (lm.config.task, lm.config.vocab_size, lm.config.tokenizer_kind) == ("language_model", len(tok), "word")
    assert 3 not in lm.never_sampled()  # a word LM can end a text: <eos> stays samplable
    named = RNNClassifier.from_tokenizer(tok, label_names=["neg", "neu", "pos"], hidden_size=8)
    assert named.config.num_labels == 3 and named.label_names == ["neg", "neu", "pos"]


def test_a_config_of_the_wrong_task_takes_the_class_task():
    from textrnn import RNNLanguageModel

    tok = word_tokenizer()
    lm = RNNLanguageModel(RNNConfig(vocab_size=len(tok), hidden_size=8), tok)  # RNNConfig's default task
    assert lm.config.task == "language_model" and lm.config.tokenizer_kind == "word"


def test_construction_checks_the_config_against_the_tokenizer_in_one_line():
    tok = word_tokenizer()
    with pytest.raises(ConfigError, match=f"vocab_size=5 but the tokenizer has {len(tok)} entries"):
        RNNClassifier(RNNConfig(vocab_size=5), tok)
    with pytest.raises(ConfigError, match="unknown config key 'model.hiden_size'; did you mean 'model.hidden_size'"):
        RNNClassifier(vocab_size=10, hiden_size=8)
    with pytest.raises(ConfigError, match="either an RNNConfig or keywords"):
        RNNClassifier(RNNConfig(vocab_size=10), hidden_size=8)
    with pytest.raises(ConfigError, match="label_names has 2 names but num_labels is 3"):
        RNNClassifier(vocab_size=10, num_labels=3, label_names=["a", "b"])


def test_lengths_may_be_a_list_and_bad_lengths_are_one_line_errors():
    model = RNNClassifier(vocab_size=20, hidden_size=8).eval()
    ids = torch.randint(1, 20, (2, 5))
    logits, _ = model(ids, [5, 3])
    torch.testing.assert_close(logits, model(ids, torch.tensor([5, 3]))[0])
    with pytest.raises(ValueError, match=r"lengths must be \(B,\)=2 values in \[0, 5\]"):
        model(ids, [6, 3])


def test_outputs_are_named_and_still_unpack_as_tuples():
    from textrnn import ClassifierEnsemble, ClassifierOutput, LMOutput, RNNLanguageModel

    ids, lengths = torch.tensor([[5, 6, 7], [5, 6, 0]]), torch.tensor([3, 2])
    for model in (RNNClassifier(vocab_size=10, num_labels=3, hidden_size=4, embedding_dim=4),
                  ClassifierEnsemble(vocab_size=10, num_labels=3, hidden_size=4, embedding_dim=4, ensemble_size=2)):
        out = model(ids, lengths, torch.tensor([0, 2]))
        logits, loss = out
        assert isinstance(out, ClassifierOutput) and out.logits is logits and out.loss is loss and loss.ndim == 0
        assert model(ids, lengths).loss is None
    lm = RNNLanguageModel(vocab_size=10, hidden_size=4, embedding_dim=4)
    out = lm(ids, targets=ids)
    assert isinstance(out, LMOutput) and out.logits.shape == (2, 3, 10) and out.loss.ndim == 0
    adaptive = RNNLanguageModel(vocab_size=10, hidden_size=4, embedding_dim=4, adaptive_softmax_cutoffs=[6])
    assert adaptive(ids, targets=ids).logits is None  # the named field says what the bare tuple hid


def test_from_pretrained_and_build_return_the_class_they_are_called_on(tmp_path):
    from textrnn import TextModel

    tok = TextTokenizer.train(["abc"], "char")
    saved = RNNClassifier.from_tokenizer(tok, num_labels=2, hidden_size=4, embedding_dim=4)
    assert isinstance(saved, TextModel)
    loaded = RNNClassifier.from_pretrained(saved.save_pretrained(tmp_path / "m"))
    assert type(loaded) is RNNClassifier and not loaded.training
