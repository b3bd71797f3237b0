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
