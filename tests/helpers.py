"""Tiny models and experiment configs shared by the tests."""

from __future__ import annotations

import torch

from textrnn import RNNClassifier, RNNConfig, RNNLanguageModel, TextTokenizer, load_config

TEXT = "the quick brown fox jumps over the lazy dog.\nA stitch in time saves nine!\n" * 3


def char_tokenizer() -> TextTokenizer:
    return TextTokenizer.train([TEXT], "char")


def classifier(tok, **kw):
    """A 3-label classifier (an ensemble when ensemble_size > 1), eval mode, seeded."""
    sizes = {"embedding_dim": kw.pop("embedding_dim", 8), "hidden_size": kw.pop("hidden_size", 6)}
    config = RNNConfig(task="classification", vocab_size=len(tok), num_labels=3, label_names=["a", "b", "c"], **sizes,
                       **kw)
    torch.manual_seed(0)
    return RNNClassifier.build(config, tok).eval()


def language_model(tok, **kw):
    config = RNNConfig(task="language_model", vocab_size=len(tok), embedding_dim=kw.pop("embedding_dim", 8),
                       hidden_size=kw.pop("hidden_size", 8), num_layers=kw.pop("num_layers", 2), tokenizer_kind="char",
                       **kw)
    torch.manual_seed(0)
    return RNNLanguageModel(config, tok).eval()


def classifier_config(data, out, *extra):
    return load_config(None, [f"data.dataset={data}", "data.text_column=sentence", f"train.output_dir={out}",
                              "data.batch_size=16", "model.embedding_dim=16", "model.hidden_size=16",
                              "model.bidirectional=true", "model.embedding_dropout=0.2", "model.output_dropout=0.3",
                              "train.warmup_steps=3", "train.progress=false", "train.keep_checkpoints=10", *extra],
                       task="classification")


def lm_config(corpus, out, *extra):
    return load_config(None, [f"data.dataset={corpus}", f"train.output_dir={out}", "tokenizer.kind=char",
                              "data.batch_size=4", "data.seq_len=16", "model.embedding_dim=12", "model.hidden_size=16",
                              "model.num_layers=2", "model.dropout=0.2", "model.output_dropout=0.1",
                              "train.warmup_steps=3", "train.progress=false", "train.keep_checkpoints=10", *extra],
                       task="language_model")


def prepared_stream(run, split: str = "train"):
    """The token stream a language-model run trained on, found in the prepared-data cache as a rerun would find it."""
    import numpy as np

    from textrnn.data.preparation import prepare_language_model

    config = load_config(str(run / "config.yaml"))
    prepared = prepare_language_model(config, TextTokenizer.from_file(run / "last" / "tokenizer.json"))
    assert prepared.note.startswith("data: found"), prepared.note  # the run's own data, not prepared again
    return np.asarray(prepared.train_tokens if split == "train" else prepared.valid_tokens)


def tiny_bert_teacher(folder, texts, label_names, multi_label: bool = False, seed: int = 0):
    """A random 1-layer ``transformers`` BERT sequence classifier saved in ``folder`` (save_pretrained), with a
    WordPiece vocabulary of ``texts``' words: a teacher built here, since the Hub is out of reach."""
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    words = sorted({word for text in texts for word in text.lower().replace(".", " . ").split()})
    (folder / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(folder / "vocab.txt"))
    config = BertConfig(vocab_size=5 + len(words), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=32, max_position_embeddings=64, num_labels=len(label_names),
                        id2label=dict(enumerate(label_names)), label2id={n: i for i, n in enumerate(label_names)},
                        problem_type="multi_label_classification" if multi_label else "single_label_classification")
    torch.manual_seed(seed)
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
