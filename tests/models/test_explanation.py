"""Explanations: integrated gradients on the embeddings (completeness), attention weights, one-line errors."""

from __future__ import annotations

import pytest
import torch

from textrnn import TextRNNError

from ..helpers import TEXT, char_tokenizer, classifier, language_model


def complete(e: dict, tolerance: float = 0.02) -> bool:
    """The attributions sum to the score's change from the baseline, within ``tolerance`` of that change."""
    change = e["score"] - e["baseline_score"]
    assert e["delta"] == pytest.approx(sum(e["attributions"]) - change, abs=1e-6)
    return abs(e["delta"]) <= tolerance * abs(change) + 1e-4


@pytest.mark.parametrize("kw", [
    dict(pooling="attention", bidirectional=True), dict(pooling="mean"), dict(pooling="max", cell="gru"),
    dict(pooling="attention", ensemble_size=3), dict(problem_type="multi_label", pooling="last"),
    dict(pooling="attention", cell="mingru")])
def test_attributions_add_up_to_the_scores_change(kw):
    model = classifier(char_tokenizer(), hidden_size=12, **kw)
    e = model.explain("the lazy dog jumps", steps=128)
    assert complete(e), e["delta"]
    assert len(e["tokens"]) == len(e["attributions"]) == len("the lazy dog jumps") and "".join(e["tokens"]) == \
        "the lazy dog jumps"
    with torch.no_grad():
        logits, _ = model(torch.tensor([model.tokenizer.encode("the lazy dog jumps")]), [18])
    assert e["score"] == pytest.approx(float(logits[0, model.label_names.index(e["label"])]), abs=1e-5)
    assert (e["attention"] is not None) == (kw["pooling"] == "attention")
    if e["attention"] is not None:
        assert sum(e["attention"]) == pytest.approx(1.0, abs=1e-5) and len(e["attention"]) == 18


def test_the_baseline_is_all_zero_embeddings():
    model = classifier(char_tokenizer(), pooling="mean")
    e = model.explain("fox", label="b")
    zeros = torch.zeros(1, 3, model.config.embedding_dim)
    with torch.no_grad():
        outputs, _ = model.backbone.encoder(zeros, torch.tensor([3]))
        baseline = float(model.head(model.pooling(outputs, None, torch.tensor([3])))[0, 1])
    assert e["baseline_score"] == pytest.approx(baseline, abs=1e-5)
    assert e["label"] == "b"


def test_a_predicted_label_and_a_lone_text_or_a_list():
    model = classifier(char_tokenizer())
    one = model.explain("dog")
    assert one["label"] == model.predict("dog")["label"]
    assert [e["label"] for e in model.explain(["dog", "fox"])] == [one["label"], model.predict("fox")["label"]]


@pytest.mark.parametrize("kw", [dict(pooling="attention", bidirectional=True), dict(ensemble_size=2),
                                dict(problem_type="multi_label", cell="mingru")])
def test_occlusion_is_the_probability_lost_when_each_token_is_deleted(kw):
    model = classifier(char_tokenizer(), hidden_size=12, **kw)
    text = "lazy dog"
    e = model.explain(text, label="b", method="occlusion")
    assert e["method"] == "occlusion" and e["label"] == "b" and e["tokens"] == list(text)
    assert e["score"] == pytest.approx(e["probability"], abs=1e-6)
    assert e["score"] == pytest.approx(model.predict(text)["probabilities"]["b"], abs=1e-6)
    for t in range(len(text)):  # each deletion scored alone, as predict scores it
        alone = model.predict(text[:t] + text[t + 1:])["probabilities"]["b"]
        assert e["attributions"][t] == pytest.approx(e["score"] - alone, abs=1e-5), t
    assert e["attention"] is None or len(e["attention"]) == len(text)


def test_occlusion_of_a_one_token_text_compares_with_the_empty_text():
    model = classifier(char_tokenizer(), hidden_size=12)
    e = model.explain("d", method="occlusion")
    empty = model.predict("")["probabilities"][e["label"]]
    assert e["attributions"] == [pytest.approx(e["score"] - empty, abs=1e-6)]


def test_a_language_model_explains_its_next_token():
    model = language_model(char_tokenizer(), hidden_size=16)
    e = model.explain("the lazy d", steps=128)
    with torch.no_grad():
        logits = model(torch.tensor([model.tokenizer.encode("the lazy d")]))[0][0, -1]
    assert e["token"] == model.tokenizer.token_text(int(logits.argmax()))
    assert e["score"] == pytest.approx(float(torch.log_softmax(logits, -1).max()), abs=1e-5)
    assert complete(e) and e["tokens"] == list("the lazy d")
    assert model.explain("the lazy d", token="o")["token"] == "o"


@pytest.mark.parametrize("call,message", [
    (lambda m: m.explain("dog", label="z"), "label 'z' is not one of this model's labels (a, b, c)"),
    (lambda m: m.explain("", steps=8), "the text has no tokens to explain"),
    (lambda m: m.explain("dog", steps=1), "steps must be an integer of at least 2"),
    (lambda m: m.explain("dog", method="lime"), "method must be one of integrated_gradients, occlusion, got 'lime'"),
])
def test_bad_requests_are_one_line(call, message):
    with pytest.raises(TextRNNError) as error:
        call(classifier(char_tokenizer()))
    assert message in str(error.value)


def test_explaining_leaves_no_gradients_and_keeps_the_mode():
    model = classifier(char_tokenizer()).train()
    model.explain(TEXT[:30], steps=4)
    assert model.training and all(p.grad is None for p in model.parameters())


def test_a_classifier_trained_on_a_keyword_credits_the_keyword(tmp_path):
    """The label is whether 'great' is in the text: after training, 'great' gets the largest attribution toward
    pos, by integrated gradients and by occlusion, and pushes away from neg (the sign)."""
    import random

    import textrnn

    rng = random.Random(0)
    filler = "the a film plot was is and very quite story actors music long".split()
    texts, labels = [], []
    for i in range(400):
        words = rng.sample(filler, 6)
        if i % 2:
            words.insert(rng.randrange(7), "great")
        texts.append(" ".join(words))
        labels.append("pos" if i % 2 else "neg")
    torch.manual_seed(0)
    model = textrnn.train({"task": "classification", "tokenizer": {"kind": "word"},
                           "model": {"embedding_dim": 16, "hidden_size": 16, "pooling": "mean"},
                           "train": {"max_steps": 150, "lr": 0.01, "progress": False, "eval_every": 0,
                                     "output_dir": str(tmp_path / "run")}},
                          train_data=(texts, labels)).model
    text = "the plot was great and the music long"
    assert model.predict(text)["label"] == "pos"
    for method in ("integrated_gradients", "occlusion"):
        e = model.explain(text, label="pos", method=method)
        best = max(range(len(e["tokens"])), key=lambda i: e["attributions"][i])
        assert e["tokens"][best] == "great" and e["attributions"][best] > 0, (method, e)
        away = model.explain(text, label="neg", method=method)
        assert away["attributions"][e["tokens"].index("great")] < 0, method
