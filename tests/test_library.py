"""textrnn used as a library in a loop of one's own: keyword constructors, pad_batch, a plain DataLoader."""

import torch
from torch.utils.data import DataLoader

from textrnn import RNNClassifier, TextTokenizer, load_model, pad_batch


def test_a_classifier_built_from_keywords_trains_in_a_plain_loop_and_round_trips(tmp_path):
    texts = ["a good fun film", "loved it", "great acting", "a dull film", "hated it", "awful plot"] * 8
    labels = [1, 1, 1, 0, 0, 0] * 8
    tokenizer = TextTokenizer.train(texts, "word")
    torch.manual_seed(0)
    model = RNNClassifier.from_tokenizer(tokenizer, label_names=["neg", "pos"], embedding_dim=16, hidden_size=16)
    pairs = [(tokenizer.encode(text), label) for text, label in zip(texts, labels)]

    def collate(batch):
        ids, lengths = pad_batch([row for row, _ in batch])
        return ids, lengths, torch.tensor([label for _, label in batch])

    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    model.train()
    for _ in range(15):
        for ids, lengths, target in DataLoader(pairs, batch_size=8, shuffle=True, collate_fn=collate):
            _, loss = model(ids, lengths, target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    model.eval()
    predictions = model.predict(["loved it", "awful plot"])
    assert [p["label"] for p in predictions] == ["pos", "neg"]  # it learned
    model.save_pretrained(tmp_path / "mine")
    assert load_model(tmp_path / "mine").predict(["loved it", "awful plot"]) == predictions


def test_the_exported_pieces_compose_a_model_of_ones_own():
    import textrnn
    from textrnn import AttentionPooling, RNNBackbone

    assert all(hasattr(textrnn, name) for name in textrnn.__all__)
    backbone = RNNBackbone(50, 8, 6, bidirectional=True, num_layers=2)
    pooling = AttentionPooling(backbone.encoder)
    head = torch.nn.Linear(pooling.get_output_dim(), 3)
    ids, lengths = pad_batch([[5, 6, 7], [8, 9]])
    outputs, state = backbone(ids, lengths)  # (B, T, D*H)
    logits = head(pooling(outputs, state, lengths))
    assert logits.shape == (2, 3) and pooling.get_output_dim() == 12
    logits.sum().backward()
    assert backbone.embedding.weight.grad is not None
