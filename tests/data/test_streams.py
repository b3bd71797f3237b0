import numpy as np

from textrnn import TextTokenizer
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
