"""Language-model token streams: compact encoding, reversed streams, text cut by character position, PTB counts."""

import numpy as np

from textrnn import EOS_ID, UNK_ID, TextTokenizer
from textrnn.data.streams import encode_stream, iter_text


def test_encode_stream_is_compact_and_matches_tokenizer(tmp_path, corpus_file):
    text = corpus_file.read_text()
    tok = TextTokenizer.train([text], "char")
    tokens = encode_stream([text[:1000], text[1000:]], tok, tmp_path / "s.bin", chunk_chars=300)
    assert tokens.dtype == np.uint8 and isinstance(tokens, np.memmap)
    assert tokens.tolist() == tok.encode(text)
    word = TextTokenizer.train([text], "word")
    wtokens = encode_stream(["a b", "c"], word, tmp_path / "w.bin")
    assert wtokens[2] == 3 and wtokens[-1] == 3  # <eos> after every row


def test_a_reversed_stream_is_the_stream_last_token_first_whatever_the_chunk(tmp_path, corpus_file):
    text = corpus_file.read_text()
    tok = TextTokenizer.train([text], "char")
    forward = encode_stream([text[:1000], text[1000:]], tok, tmp_path / "f.bin")
    for chunk in (7, 300, 1 << 22):  # 7 and 300 do not divide the length: the first chunk is a short one
        backward = encode_stream([text[:1000], text[1000:]], tok, tmp_path / f"b{chunk}.bin", reverse=True,
                                   chunk_chars=chunk)
        assert isinstance(backward, np.memmap) and backward.tolist() == forward.tolist()[::-1]
    word = TextTokenizer.train([text], "word")
    a, b, c = (word.encode(w)[0] for w in "abc")
    assert encode_stream(["a b", "c"], word, tmp_path / "w.bin", reverse=True).tolist() == [3, c, 3, b, a]


def test_iter_text_cuts_by_character_position():
    import datasets

    ds = datasets.Dataset.from_dict({"text": ["abc\n", "defg\n", "h\n"]})
    whole = "".join(iter_text(ds, "text", ""))
    assert whole == "abc\ndefg\nh\n"
    cut = int(len(whole) * 0.9)
    assert "".join(iter_text(ds, "text", "", 0, cut)) + "".join(iter_text(ds, "text", "", cut)) == whole
    assert "".join(iter_text(ds, "text", "", 2, 6)) == whole[2:6]


PTB_LINES = [" aer banknote berlitz calloway centrust cluett fromstein gitano guterman",
             " pierre <unk> N years old will join the board as a nonexecutive director nov. N",
             " mr. <unk> is chairman of <unk> n.v. the dutch publishing group",
             " it did n't say what 's next $ N million",
             ""]


def test_ptb_format_counts_as_published_figures_assume(tmp_path):
    """PTB text (one sentence a line, rare words already <unk>) with tokenizer.split=whitespace: the
    token count is whitespace splitting plus one <eos> a line, as pytorch/examples and the papers count,
    and a literal <unk> is the unknown id."""
    from textrnn import load_config
    from textrnn.data.preparation import prepare_language_model

    folder = tmp_path / "ptb"
    folder.mkdir()
    for split, copies in (("train", 30), ("valid", 3), ("test", 2)):
        (folder / f"ptb.{split}.txt").write_text("\n".join(PTB_LINES * copies) + "\n", encoding="utf-8")
    config = load_config(None, [f"data.dataset={folder}", "tokenizer.kind=word", "tokenizer.split=whitespace",
                                f"train.output_dir={tmp_path / 'run'}"], task="language_model")
    prepared = prepare_language_model(config)
    lines = (folder / "ptb.train.txt").read_text(encoding="utf-8").splitlines()
    tokens = np.asarray(prepared.train_tokens)
    assert len(tokens) == sum(len(line.split()) + 1 for line in lines)
    assert (tokens == EOS_ID).sum() == len(lines)
    words = [w for line in lines for w in line.split() + ["<eos>"]]
    assert tokens.tolist() == [prepared.tokenizer.vocab[w] for w in words]  # n't, mr. and $ stay whole
    assert (tokens == UNK_ID).sum() == sum(w == "<unk>" for w in words) > 0
    assert len(prepared.valid_tokens) == 3 * sum(len(line.split()) + 1 for line in PTB_LINES)
