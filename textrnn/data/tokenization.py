"""Tokenizers and vocabularies, built on Hugging Face ``tokenizers``.

Three kinds, all saved as one standard ``tokenizer.json`` that
``tokenizers.Tokenizer.from_file`` loads:

* ``char``: every Unicode character is a token. ``decode(encode(text)) == text`` exactly for any
  text whose characters were seen in training (spaces, tabs, newlines and non-ASCII included);
  an unseen character maps to ``<unk>``.
* ``word``: words and runs of punctuation (``\\w+|[^\\w\\s]+``), optional lowercasing,
  ``min_freq`` and ``max_size``.
* ``bpe``: byte-level BPE with a target vocabulary size. Byte-level means any text round-trips.

Special tokens have fixed ids in every vocabulary::

    <pad> = 0    <unk> = 1    <bos> = 2    <eos> = 3
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from typing import Callable, Iterable, Iterator, Sequence, Union

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from ..core.config import TOKENIZER_KINDS, TokenizerConfig, TokenizerKind
from ..core.errors import DataError, one_line

LOG = logging.getLogger(__name__)

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS]
_SPECIALS = re.compile("|".join(re.escape(token) for token in SPECIAL_TOKENS))
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
_CHAR_PATTERN = r"[\s\S]"  # exactly one Unicode scalar value, newlines included


class Vocab:
    """Token <-> id lookups with the names torchtext users know.

    ``vocab["word"]`` returns the id, or the ``<unk>`` id for an unknown token.
    """

    def __init__(self, stoi: dict[str, int]) -> None:
        self._stoi = dict(stoi)
        self._itos = [""] * len(stoi)
        for token, index in stoi.items():
            self._itos[index] = token

    def __getitem__(self, token: str) -> int:
        return self._stoi.get(token, UNK_ID)

    def __contains__(self, token: str) -> bool:
        return token in self._stoi

    def __len__(self) -> int:
        return len(self._itos)

    def lookup_indices(self, tokens: Sequence[str]) -> list[int]:
        """Ids of tokens (``<unk>``'s for unknown ones)."""
        return [self[t] for t in tokens]

    def lookup_token(self, index: int) -> str:
        """The token of one id."""
        return self._itos[index]

    def lookup_tokens(self, indices: Sequence[int]) -> list[str]:
        """The tokens of ids."""
        return [self._itos[i] for i in indices]

    def get_itos(self) -> list[str]:
        """Every token, in id order."""
        return list(self._itos)

    def get_stoi(self) -> dict[str, int]:
        """Token -> id for every token."""
        return dict(self._stoi)


def new_tokenizer(kind: str, lowercase: bool, split: str = "punctuation") -> Tokenizer:
    """An untrained tokenizer of the given kind; ``split="whitespace"`` makes a word tokenizer split on
    whitespace only, for pre-tokenized text (PTB's "n't" and "mr." stay one token each)."""
    if kind == "bpe":
        tok = Tokenizer(models.BPE(unk_token=UNK))
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
    else:
        tok = Tokenizer(models.WordLevel(unk_token=UNK))
        if kind == "char":
            tok.pre_tokenizer = pre_tokenizers.Split(Regex(_CHAR_PATTERN), behavior="isolated")
            tok.decoder = decoders.Fuse()  # join characters with nothing in between
        elif split == "whitespace":
            tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
        else:
            tok.pre_tokenizer = pre_tokenizers.Whitespace()
    if lowercase:
        tok.normalizer = normalizers.Lowercase()
    return tok


def _trainer(kind: str, min_freq: int, max_size: int | None, vocab_size: int):
    if kind == "bpe":
        return trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_freq, special_tokens=SPECIAL_TOKENS,
                                   initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    limit = (max_size + len(SPECIAL_TOKENS)) if max_size else 2**31 - 1
    return trainers.WordLevelTrainer(  # word vocabularies; char ones are counted in Python
        vocab_size=limit, min_frequency=min_freq, special_tokens=SPECIAL_TOKENS, show_progress=False
    )


def _char_tokenizer(texts: Iterable[str], lowercase: bool, min_freq: int, max_size: int | None) -> Tokenizer:
    """A char vocabulary counted with collections.Counter (C speed, memory of one text at a
    time), most frequent first, ties by code point; then the same WordLevel tokenizer."""
    import collections

    counts: collections.Counter = collections.Counter()
    lower = normalizers.Lowercase().normalize_str  # what encoding applies (code point by code point: no final ς)
    for text in texts:
        counts.update(lower(text) if lowercase else text)
    chars = sorted((c for c, n in counts.items() if n >= min_freq and c not in SPECIAL_TOKENS),
                   key=lambda c: (-counts[c], c))
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS + chars[:max_size])}
    tok = new_tokenizer("char", lowercase)
    tok.model = models.WordLevel(vocab, unk_token=UNK)
    tok.add_special_tokens(SPECIAL_TOKENS)
    return tok


def _without_specials(texts: Iterable[str]) -> Iterator[str]:
    """Texts with literal special tokens blanked out: encoding maps "<unk>" in a text (PTB has
    thousands) to the special id, so the trainer must not count it as a word and give it a second id."""
    for text in texts:
        yield _SPECIALS.sub(" ", text) if "<" in text else text


def _joined(texts: Iterable[str], separator: str, group: int = 1000) -> Iterable[str]:
    batch: list[str] = []
    for text in texts:
        batch.append(text)
        if len(batch) == group:
            yield separator.join(batch)
            batch = []
    if batch:
        yield separator.join(batch)


def _infer_kind(tok: Tokenizer) -> TokenizerKind:
    spec = json.loads(tok.to_str())
    model_type = spec.get("model", {}).get("type")
    if model_type == "BPE":
        return "bpe"
    pre = spec.get("pre_tokenizer") or {}
    if pre.get("type") == "Split" and pre.get("pattern", {}).get("Regex") == _CHAR_PATTERN:
        return "char"
    return "word"


class TextTokenizer:
    """A trained tokenizer plus its vocabulary.

    Encoding of many texts goes through ``encode_batch`` (Rust, parallel). For a char
    tokenizer, :meth:`encode_chars` maps a whole corpus through a NumPy lookup table, which is
    what makes encoding hundreds of MB of text fast.
    """

    def __init__(self, tokenizer: Tokenizer, kind: TokenizerKind | None = None) -> None:
        self.tokenizer = tokenizer
        self.kind: TokenizerKind = kind or _infer_kind(tokenizer)
        self.vocab = Vocab(tokenizer.get_vocab(with_added_tokens=True))
        for index, token in enumerate(SPECIAL_TOKENS):
            if tokenizer.token_to_id(token) != index:
                raise DataError(
                    f"tokenizer has {token} at id {tokenizer.token_to_id(token)}, expected {index}; "
                    "train it with textrnn.TextTokenizer.train so special tokens get fixed ids"
                )
        self._char_table: np.ndarray | None = None

    # ------------------------------------------------------------------ building
    @classmethod
    def train(cls, texts: Iterable[str], kind: TokenizerKind = "char", *, lowercase: bool = False, min_freq: int = 1,
              max_size: int | None = None, vocab_size: int = 8000, split: str = "punctuation") -> "TextTokenizer":
        """Train a tokenizer of ``kind`` ('char', 'word' or 'bpe') on ``texts`` (training split only).

        ``min_freq`` and ``max_size`` (tokens beyond the four specials) apply to char and word
        vocabularies, ``vocab_size`` (specials included) to BPE; ``split`` ('punctuation' or
        'whitespace') to word tokenizers.
        """
        if kind not in TOKENIZER_KINDS:
            raise DataError(f"unknown tokenizer kind {kind!r}; use one of {', '.join(TOKENIZER_KINDS)}")
        if isinstance(texts, str):
            raise DataError("TextTokenizer.train takes texts (a list of strings), got one string; pass [text]")
        if kind == "char":
            return cls(_char_tokenizer(texts, lowercase, min_freq, max_size), kind)
        tok = new_tokenizer(kind, lowercase, split)
        if kind == "word":  # counts add up over joined texts: one Rust call per 1,000 texts
            texts = _joined(_without_specials(texts), "\n")
        tok.train_from_iterator(texts, trainer=_trainer(kind, min_freq, max_size, vocab_size))
        return cls(tok, kind)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "TextTokenizer":
        """Load a ``tokenizer.json``; a file that is not one gives a one-line error."""
        if not os.path.isfile(path):
            raise DataError(f"tokenizer file not found: {path}; pass the path of a tokenizer.json")
        try:
            tok = Tokenizer.from_file(str(path))
        except BaseException as exc:  # tokenizers raises a bare Exception on bad JSON (a panic is a BaseException)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            raise DataError(
                f"{path} is not a tokenizer.json file ({one_line(exc)}); re-save it with TextTokenizer.save"
            ) from None
        try:
            return cls(tok)
        except DataError as exc:
            raise DataError(f"{path}: {exc}") from None

    def save(self, path: str | os.PathLike) -> None:
        """Write the standard ``tokenizer.json`` (textrnn's settings travel in it)."""
        self.tokenizer.save(str(path))

    # ------------------------------------------------------------------ lookups
    def __len__(self) -> int:
        return len(self.vocab)

    @property
    def vocab_size(self) -> int:
        """Entries in the vocabulary, special tokens included."""
        return len(self.vocab)

    @property
    def id_dtype(self) -> np.dtype:
        """The smallest unsigned dtype that holds every id (uint8/uint16/uint32)."""
        for dtype in (np.uint8, np.uint16):
            if self.vocab_size <= np.iinfo(dtype).max + 1:
                return np.dtype(dtype)
        return np.dtype(np.uint32)

    def encode(self, text: str) -> list[int]:
        """Ids of ``text``. Char tokenizers read text literally, so "<pad>" is five characters."""
        if self.kind == "char":
            return self.encode_chars(text).tolist()
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str], group: int = 500) -> list[list[int]]:
        """Encode many texts at once on the Rust side (parallel); the same ids as ``encode``."""
        if isinstance(texts, str):
            raise DataError("encode_batch takes a list of texts, got one string; use encode(text) for one text")
        values, offsets = self.encode_flat(texts, group)
        flat = values.tolist()
        return [flat[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]

    def encode_flat(self, texts: Sequence[str], group: int = 500) -> tuple[np.ndarray, np.ndarray]:
        """All ids of ``texts`` in one array, plus offsets: text i is ``values[offsets[i]:offsets[i+1]]``.

        Texts are joined ``group`` at a time with ``<eos>`` between them and encoded as one
        string each; the ``<eos>`` ids then mark where each text ends. A special token splits
        the text before normalization and pre-tokenization, so each piece encodes exactly as it
        would alone, and there is one Rust result per group instead of one per text, with no
        per-text Python work. Texts that themselves contain ``<eos>`` are encoded one by one.
        """
        texts = list(texts)
        if self.kind == "char":
            texts = [self.normalize(t) for t in texts]  # lowering may change a text's length ("İ" -> "i̇")
            values = self.encode_chars("".join(texts), normalized=True)
            return values, np.concatenate([[0], np.cumsum([len(t) for t in texts], dtype=np.int64)])
        joined = [EOS.join(texts[i : i + group]) for i in range(0, len(texts), group)]
        encodings = self.tokenizer.encode_batch_fast(joined, add_special_tokens=False)
        ids = np.concatenate([np.asarray(e.ids, dtype=np.int64) for e in encodings] + [np.zeros(0, np.int64)])
        # Positions of text ends: every <eos> is a boundary, plus the end of each group.
        group_ends = np.cumsum([len(e.ids) for e in encodings])
        is_sep = ids == EOS_ID
        ends = np.sort(np.concatenate([np.flatnonzero(is_sep), group_ends]))
        if len(ends) != len(texts):  # some text holds a literal <eos>: encode text by text
            rows = [e.ids for e in self.tokenizer.encode_batch_fast(texts, add_special_tokens=False)]
            return np.asarray([i for r in rows for i in r], dtype=np.int64), np.cumsum([0] + [len(r) for r in rows])
        # Drop the separators; each end moves left by the number of separators before it.
        removed = np.searchsorted(np.flatnonzero(is_sep), ends, side="left")
        return ids[~is_sep], np.concatenate([[0], ends - removed]).astype(np.int64)

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Text of ids; special tokens are left out."""
        return self.tokenizer.decode(list(ids), skip_special_tokens=skip_special_tokens)

    def token_text(self, index: int) -> str:
        """The text one id stands for, for streaming output (exact for char tokenizers)."""
        if index < len(SPECIAL_TOKENS):
            return ""
        token = self.vocab.lookup_token(index)
        return token if self.kind == "char" else self.decode([index])

    # ------------------------------------------------------------------ fast char path
    def char_table(self) -> np.ndarray:
        """Lookup table from Unicode code point to id; the last slot is ``<unk>``."""
        if self.kind != "char":
            raise DataError("char_table needs a char tokenizer")
        if self._char_table is None:
            pairs = [(ord(t), i) for t, i in self.vocab.get_stoi().items() if len(t) == 1]
            size = max((cp for cp, _ in pairs), default=0) + 2
            table = np.full(size, UNK_ID, dtype=self.id_dtype)
            for cp, index in pairs:
                table[cp] = index
            self._char_table = table
        return self._char_table

    def normalize(self, text: str) -> str:
        """``text`` through the tokenizer's normalizer (lowercasing, when trained with ``lowercase=True``)."""
        normalizer = self.tokenizer.normalizer
        return normalizer.normalize_str(text) if normalizer is not None else text

    def encode_chars(self, text: str, normalized: bool = False) -> np.ndarray:
        """Encode ``text`` with a char tokenizer as a NumPy array of ``id_dtype`` (same ids as encode);
        ``normalized`` says the text has been through :meth:`normalize` already."""
        table = self.char_table()
        text = text if normalized else self.normalize(text)
        codepoints = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        return table[np.minimum(codepoints, len(table) - 1)]


# ---------------------------------------------------------------------------- a tokenizer from settings
Texts = Union[Callable[[], Iterable[str]], Iterable[str]]


def train_tokenizer(texts: Texts, settings: TokenizerConfig) -> TextTokenizer:
    """A tokenizer trained on ``texts`` as the ``tokenizer:`` section says.

    ``texts`` is a callable giving a fresh iterable each call (or a list): ``min_freq: auto``
    reads the text twice, once to count its words and once to train, so memory stays bounded
    by the vocabulary, never by the corpus.
    """
    source = texts if callable(texts) else _reusable(texts)
    min_freq = settings.min_freq
    if min_freq == "auto" and settings.kind == "char":
        min_freq = 1  # characters are never pruned: no need to count the corpus
    elif min_freq == "auto":
        words = sum(len(text.split()) for text in source())
        min_freq = auto_min_freq(words)
        LOG.info(f"note: tokenizer.min_freq auto -> {min_freq} ({settings.kind} tokenizer, {words:,} training words)")
    return TextTokenizer.train(source(), settings.kind, lowercase=settings.lowercase, min_freq=min_freq,
                               max_size=settings.max_size, vocab_size=settings.vocab_size, split=settings.split)


def _reusable(texts: Iterable[str]) -> Callable[[], Iterable[str]]:
    """A one-shot iterator is read into a list (it could not be read twice); a list is used as it is."""
    kept = list(texts) if iter(texts) is texts else texts
    return lambda: kept


def auto_min_freq(words: int) -> int:
    """``tokenizer.min_freq: auto``: how often a training word must occur to get its own id.

    Words rarer than this become ``<unk>`` in training, so ``<unk>`` learns from the kind of
    word a test set brings new. That pays on a big corpus, where the rare words are many and
    each is seen too seldom to learn from, and costs on a small one, where the rare words are
    much of what there is. The threshold grows with the square root of the corpus:
    ``round(sqrt(words / 25,000))`` between 1 and 5, which is 5 on SST-2 (634k words, the value
    its ablation chose), 2 to 3 on sets of 5-10k sentences, and 1 under 56k words, for word
    and BPE tokenizers (``words`` counts whitespace-separated words); characters are never
    pruned (``train_tokenizer`` uses 1).
    """
    return int(min(5, max(1, math.floor(math.sqrt(words / 25_000) + 0.5))))
