import pytest
import torch

from textrnn import CheckpointError, ConfigError, RNNClassifier, RNNConfig, RNNLanguageModel, TextRNNError, TextTokenizer
from textrnn.model import sample_next

TEXT = "the quick brown fox jumps over the lazy dog.\nA stitch in time saves nine!\n" * 3


@pytest.fixture
def char_tok():
    return TextTokenizer.train([TEXT], "char")


def classifier(tok, **kw):
    config = RNNConfig(task="classification", vocab_size=len(tok), embedding_dim=8, hidden_size=6, num_labels=3,
                       label_names=["a", "b", "c"], **kw)
    torch.manual_seed(0)
    return RNNClassifier(config, tok).eval()


def language_model(tok, **kw):
    config = RNNConfig(task="language_model", vocab_size=len(tok), embedding_dim=kw.pop("embedding_dim", 8),
                       hidden_size=kw.pop("hidden_size", 8), num_layers=2, **kw)
    torch.manual_seed(0)
    return RNNLanguageModel(config, tok).eval()


@pytest.mark.parametrize("pooling", ["last", "mean", "max", "attention"])
@pytest.mark.parametrize("strategy", ["packed", "padded"])
def test_single_example_alone_equals_inside_padded_batch(char_tok, pooling, strategy):
    model = classifier(char_tok, pooling=pooling, bidirectional=True, num_layers=2, strategy=strategy)
    ids = [char_tok.encode(t) for t in ["the fox", "a much longer sentence here", "dog", ""]]
    from textrnn import pad_batch

    input_ids, lengths = pad_batch(ids)
    batch_logits, loss = model(input_ids, lengths, torch.tensor([0, 1, 2, 0]))
    assert loss.ndim == 0 and batch_logits.shape == (4, 3)
    for i, row in enumerate(ids):
        alone, _ = model(*pad_batch([row]))
        torch.testing.assert_close(alone[0], batch_logits[i], rtol=1e-5, atol=1e-6)


def test_word_dropout_replaces_tokens_with_unk_only_in_training(char_tok):
    from textrnn import UNK_ID

    model = classifier(char_tok, word_dropout=0.5).train()
    input_ids = torch.randint(4, len(char_tok), (64, 30))
    input_ids[:, 20:] = 0  # padding
    dropped = model.drop_words(input_ids)
    changed = dropped != input_ids
    assert (dropped[changed] == UNK_ID).all() and not changed[:, 20:].any()
    assert 0.4 < changed[:, :20].float().mean() < 0.6
    assert torch.equal(model.eval().drop_words(input_ids), input_ids)
    assert torch.equal(classifier(char_tok).train().drop_words(input_ids), input_ids)


@pytest.mark.parametrize("ensemble_size", [1, 2])
def test_label_smoothing_shapes_the_training_loss_only(char_tok, ensemble_size):
    model = classifier(char_tok, label_smoothing=0.3, ensemble_size=ensemble_size)  # no dropout configured
    input_ids = torch.randint(4, len(char_tok), (5, 9))
    lengths, labels = torch.tensor([9, 4, 1, 7, 0]), torch.tensor([0, 2, 1, 1, 0])
    members = model.members if ensemble_size > 1 else [model]
    log_p = torch.stack([torch.log_softmax(m(input_ids, lengths)[0], dim=-1) for m in members])  # (K, B, C)
    smoothed = torch.full_like(log_p[0], 0.3 / 3).scatter_add_(1, labels[:, None], torch.full((5, 1), 0.7))  # (B, C)
    plain = -log_p.gather(2, labels[None, :, None].expand(len(members), 5, 1)).mean()
    _, eval_loss = model(input_ids, lengths, labels)
    torch.testing.assert_close(eval_loss, plain)  # evaluation reports the plain cross-entropy
    _, train_loss = model.train()(input_ids, lengths, labels)
    torch.testing.assert_close(train_loss, -(smoothed * log_p).sum(2).mean())
    assert abs(train_loss.item() - plain.item()) > 1e-3
    with pytest.raises(ConfigError, match="model.label_smoothing applies to classifiers only"):
        RNNConfig(task="language_model", vocab_size=5, label_smoothing=0.1).validate()


def test_lm_loss_cannot_be_lowered_by_copying_what_a_direction_has_read():
    # Random tokens are unpredictable from the other tokens, so a correct objective stays near
    # log(#distinct targets); had either direction seen the word it predicts, training would
    # drive the loss to ~0 by copying.
    torch.manual_seed(0)
    config = RNNConfig(task="classification", vocab_size=24, embedding_dim=16, hidden_size=16, bidirectional=True,
                       strategy="padded", pooling="max", lm_loss_weight=1.0)
    model = RNNClassifier(config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        ids = torch.randint(4, 24, (32, 12))
        lengths = torch.randint(2, 13, (32,))
        ids[torch.arange(12)[None, :] >= lengths[:, None]] = 0
        loss = model.lm_loss(model.encode(ids, lengths)[0], ids, lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() > 0.8 * torch.log(torch.tensor(20.0)).item()
    copy = RNNClassifier(RNNConfig(**{**config.to_dict(), "bidirectional": False})).train()
    assert copy.lm_loss(copy.encode(ids, lengths)[0], ids, lengths).item() > 1.0


def test_lm_loss_trains_every_batch_word_and_only_in_training(char_tok):
    model = classifier(char_tok, bidirectional=True, pooling="max", lm_loss_weight=0.5).train()
    ids, lengths, labels = torch.tensor([[4, 5, 6, 7], [8, 9, 0, 0], [10, 0, 0, 0]]), torch.tensor([4, 2, 1]), torch.tensor([0, 1, 2])
    logits, loss = model(ids, lengths, labels)
    plain = torch.nn.functional.cross_entropy(logits, labels)
    assert loss.item() > plain.item()
    loss.backward()
    touched = model.embedding.weight.grad.abs().sum(1) > 0
    assert touched[[4, 5, 6, 7, 8, 9, 10]].all() and not touched[[0, 11, 12]].any()
    model.eval()
    logits, loss = model(ids, lengths, labels)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits, labels))
    model.zero_grad(set_to_none=True)
    single = torch.tensor([[4], [0]]), torch.tensor([1, 0])
    nothing = model.lm_loss(model.encode(*single)[0], *single)
    nothing.backward()
    assert nothing.item() == 0.0  # no pair of words: nothing to predict ...
    assert model.lm_projection.weight.grad is not None  # ... yet the head stays in the graph, as DDP requires


def test_lm_loss_config_errors_and_round_trip(char_tok, tmp_path):
    with pytest.raises(ConfigError, match="needs num_layers=1 when bidirectional"):
        classifier(char_tok, bidirectional=True, num_layers=2, lm_loss_weight=0.5)
    with pytest.raises(ConfigError, match="lm_loss_weight applies to classifiers only"):
        language_model(char_tok, lm_loss_weight=0.5)
    model = classifier(char_tok, bidirectional=True, lm_loss_weight=0.5, ensemble_size=2)
    model.save_pretrained(tmp_path / "aux")
    ids, lengths = torch.tensor([[4, 5, 6], [7, 8, 0]]), torch.tensor([3, 2])
    torch.testing.assert_close(RNNClassifier.from_pretrained(tmp_path / "aux")(ids, lengths)[0], model(ids, lengths)[0], rtol=0, atol=0)


def test_classifier_without_labels_returns_no_loss(char_tok):
    logits, loss = classifier(char_tok)(torch.tensor([[5, 6]]), torch.tensor([2]))
    assert loss is None and logits.shape == (1, 3)


def test_predict_returns_label_names_and_probabilities(char_tok):
    out = classifier(char_tok).predict(["the dog", "", "fox" * 5000], max_length=100)
    assert [set(o["probabilities"]) for o in out] == [{"a", "b", "c"}] * 3
    assert all(o["label"] in "abc" and abs(sum(o["probabilities"].values()) - 1) < 1e-5 for o in out)
    assert out[2]["truncated_to_tokens"] == 100 and "truncated_to_tokens" not in out[0]


def test_state_carried_over_two_chunks_equals_one_pass(char_tok):
    model = language_model(char_tok, cell="lstm")
    ids = torch.tensor([char_tok.encode(TEXT[:40])])
    whole, _, state_whole = model(ids)
    first, _, state = model(ids[:, :17])
    second, _, state_two = model(ids[:, 17:], state=state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole)
    torch.testing.assert_close(state_two[1], state_whole[1])


def test_lm_loss_ignores_minus_100(char_tok):
    model = language_model(char_tok)
    ids = torch.tensor([char_tok.encode("the fox")])
    targets = ids.clone()
    _, full, _ = model(ids, targets=targets)
    targets[0, 3:] = -100
    _, part, _ = model(ids, targets=targets)
    assert not torch.isclose(full, part)


def test_weight_tying_and_projection(char_tok, tmp_path):
    tied = language_model(char_tok, tie_weights=True)
    assert tied.head.weight is tied.embedding.weight
    with pytest.raises(ConfigError, match="tie_projection"):
        language_model(char_tok, tie_weights=True, hidden_size=12)
    projected = language_model(char_tok, tie_weights=True, tie_projection=True, hidden_size=12)
    assert projected.projection is not None and projected.head.weight is projected.embedding.weight
    projected.save_pretrained(tmp_path / "p")
    again = RNNLanguageModel.from_pretrained(tmp_path / "p")
    assert again.head.weight is again.embedding.weight
    ids = torch.tensor([char_tok.encode("the lazy dog")])
    torch.testing.assert_close(again(ids)[0], projected(ids)[0])


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_save_load_gives_identical_logits(char_tok, tmp_path, cell):
    model = classifier(char_tok, cell=cell, bidirectional=True, pooling="attention")
    model.save_pretrained(tmp_path / "ckpt")
    assert {p.name for p in (tmp_path / "ckpt").iterdir()} == {"config.json", "model.safetensors", "tokenizer.json"}
    again = RNNClassifier.from_pretrained(tmp_path / "ckpt", map_location="cpu")
    ids, lengths = torch.tensor([[4, 5, 6], [7, 8, 0]]), torch.tensor([3, 2])
    torch.testing.assert_close(again(ids, lengths)[0], model(ids, lengths)[0], rtol=0, atol=0)
    assert again.label_names == ["a", "b", "c"]


def test_ensemble_averages_member_probabilities_and_round_trips(char_tok, tmp_path):
    from textrnn.model import ClassifierEnsemble

    model = classifier(char_tok, bidirectional=True, pooling="max", ensemble_size=3)
    assert isinstance(model, ClassifierEnsemble) and isinstance(model, RNNClassifier) and len(model.members) == 3
    ids, lengths, labels = torch.tensor([[4, 5, 6], [7, 8, 0]]), torch.tensor([3, 2]), torch.tensor([2, 0])
    logits, loss = model(ids, lengths, labels)
    member_logits = [m(ids, lengths)[0] for m in model.members]
    assert not torch.allclose(member_logits[0], member_logits[1])  # independent initializations
    mean_prob = torch.stack([torch.softmax(x, -1) for x in member_logits]).mean(0)
    torch.testing.assert_close(torch.softmax(logits, -1), mean_prob)
    member_losses = [torch.nn.functional.cross_entropy(x, labels) for x in member_logits]
    torch.testing.assert_close(loss, torch.stack(member_losses).mean())
    model.save_pretrained(tmp_path / "ens")
    again = RNNClassifier.from_pretrained(tmp_path / "ens")
    assert isinstance(again, ClassifierEnsemble)
    torch.testing.assert_close(again(ids, lengths)[0], logits, rtol=0, atol=0)
    assert [o["label"] for o in again.predict(["the dog", ""])] == [o["label"] for o in model.predict(["the dog", ""])]


def test_ensemble_of_language_models_is_a_config_error(char_tok):
    with pytest.raises(ConfigError, match="ensemble_size applies to classifiers only"):
        language_model(char_tok, ensemble_size=2)


def test_loading_the_other_task_is_a_one_line_error(char_tok, tmp_path):
    language_model(char_tok).save_pretrained(tmp_path / "lm")
    with pytest.raises(CheckpointError, match="holds a language_model model.*RNNLanguageModel"):
        RNNClassifier.from_pretrained(tmp_path / "lm")


@pytest.mark.parametrize("cell", ["lstm", "gru", "rnn"])
def test_fused_generation_step_matches_full_forward(char_tok, cell):
    model = language_model(char_tok, cell=cell)
    prompt = torch.tensor(char_tok.encode("the quick"))
    new = model.generate(prompt, max_new_tokens=12, temperature=0)  # greedy, via the fused stepper
    ids = prompt.tolist()
    for _ in range(12):  # naive: re-run the whole prefix every step
        logits, _, _ = model(torch.tensor([ids]))
        logits[0, -1, model.never_sampled()] = float("-inf")
        ids.append(int(logits[0, -1].argmax()))
    assert new[0].tolist() == ids[len(prompt):]


def test_generation_same_seed_same_text_and_parallel_samples(char_tok):
    model = language_model(char_tok)
    a = model.generate_text("the ", 30, seed=5, num_samples=3, temperature=1.0)
    b = model.generate_text("the ", 30, seed=5, num_samples=3, temperature=1.0)
    assert a == b and len(a) == 3 and all(len(t) == 30 for t in a)
    assert model.generate_text("the ", 30, seed=6, temperature=1.0) != a[:1]


def test_generation_streams_and_stops(char_tok):
    model = language_model(char_tok)
    pieces = []
    text = model.generate_text("the", 20, seed=0, on_token=lambda p: pieces.append(p[0]))
    assert "".join(pieces) == text[0] and len(pieces) == 20
    stop = char_tok.vocab[" "]
    out = model.generate(torch.tensor(char_tok.encode("the")), 200, seed=0, stop_ids=[stop], temperature=1.0)
    assert out.shape[1] < 200 or stop in out[0].tolist()


@pytest.mark.parametrize("kwargs,match", [
    (dict(max_new_tokens=0), "max_new_tokens"), (dict(temperature=-1.0), "temperature"),
    (dict(top_p=0.0), "top_p"), (dict(top_p=1.5), "top_p"), (dict(num_samples=0), "num_samples"),
    (dict(top_k=0), "top_k"),
])
def test_bad_sampling_settings(char_tok, kwargs, match):
    model = language_model(char_tok)
    args = dict(max_new_tokens=5) | kwargs
    with pytest.raises(TextRNNError, match=match):
        model.generate(torch.tensor([4]), **args)


def test_top_k_larger_than_vocab_means_no_top_k_and_top_p_keeps_the_head():
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([[10.0, 0.0, -10.0]])
    assert sample_next(logits, 1.0, 1000, None, g).item() in (0, 1, 2)
    assert all(sample_next(logits, 1.0, None, 0.5, g).item() == 0 for _ in range(20))
    assert all(sample_next(logits, 1.0, 1, None, g).item() == 0 for _ in range(20))


def test_prompt_of_unknown_characters_is_an_error(char_tok):
    model = language_model(char_tok)
    with pytest.raises(TextRNNError, match="no token the model knows"):
        model.generate_text("§§§", 5)
    long_prompt = TEXT * 200  # far longer than any training window: runs in chunks
    assert len(model.generate_text(long_prompt, 5, seed=0)[0]) == 5


def test_saves_weights_that_share_one_flat_buffer(char_tok, tmp_path):
    """On CUDA every RNN weight is a view into one flat buffer; saving must still work."""
    model = language_model(char_tok, tie_weights=True)
    params = list(model.encoder.parameters())
    flat = torch.cat([p.detach().flatten() for p in params])
    offset = 0
    for p in params:
        p.data = flat[offset: offset + p.numel()].view_as(p)
        offset += p.numel()
    model.save_pretrained(tmp_path / "flat")
    again = RNNLanguageModel.from_pretrained(tmp_path / "flat")
    ids = torch.tensor([char_tok.encode("the fox")])
    torch.testing.assert_close(again(ids)[0], model(ids)[0], rtol=0, atol=0)


def test_push_to_hub_uploads_the_checkpoint_folder(char_tok, monkeypatch):
    import huggingface_hub

    uploaded = {}

    class FakeApi:
        def __init__(self, token=None):
            pass

        def create_repo(self, repo_id, private=False, exist_ok=False):
            uploaded["repo"] = repo_id

        def upload_folder(self, folder_path, repo_id, commit_message):
            from pathlib import Path

            uploaded["files"] = sorted(p.name for p in Path(folder_path).iterdir())

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    classifier(char_tok).push_to_hub("someone/tiny")
    assert uploaded == {"repo": "someone/tiny", "files": ["config.json", "model.safetensors", "tokenizer.json"]}


def test_hub_id_that_cannot_be_fetched_is_a_one_line_error(monkeypatch):
    with pytest.raises(CheckpointError, match="not fetched from the Hub: nobody/nothing"):
        RNNClassifier.from_pretrained("nobody/nothing")
