"""Pretrained word vectors into a model's embedding: GloVe, word2vec (text or binary), fastText ``.vec``.

``model.pretrained_vectors`` names the file::

    vectors/glove.6B.100d.txt            GloVe text: "word v1 ... vD" per line, no header
    vectors/wiki.en.vec                  fastText / word2vec text: a first line "COUNT DIM", then as GloVe
    vectors/GoogleNews.bin               word2vec binary: "COUNT DIM\\n", then "word " + DIM float32 each
    vectors/glove.6B.100d.txt.gz         any of them gzipped
    vectors/glove.6B.zip::glove.6B.100d.txt      a member of a zip archive, chosen by name
    hf://stanfordnlp/glove/glove.6B.zip::glove.6B.100d.txt   a Hub repository file (hf_hub_download)

The file is streamed once, and only the vocabulary's words are parsed, so a 2M-word file costs
memory in proportion to the vocabulary, not the file. A word of a cased vocabulary that the
file lacks takes the vector of its lowercase form when the file has that. Words not found keep
their random initialization, ``<pad>`` stays zero. gensim's ``.model`` files are pickles, which
textrnn never loads (unpickling runs code): they are refused with the way to convert them.
"""

from __future__ import annotations

import gzip
import itertools
import os
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Iterator, Optional

import numpy as np
import torch

from ..core.errors import DataError
from ..data.tokenization import SPECIAL_TOKENS


@dataclass
class VectorCoverage:
    """How much of a vocabulary a vectors file covered."""
    found: int  # vocabulary entries (specials excluded) that got a vector
    lowercase: int  # of which through their lowercase form
    entries: int  # vocabulary entries, specials excluded
    token_share: Optional[float]  # share of training tokens whose word got a vector
    dim: int

    def line(self) -> str:
        """The coverage as one line for the log."""
        tokens = f", {self.token_share:.1%} of training tokens" if self.token_share is not None else ""
        return (
            f"pretrained vectors: {self.found:,} of {self.entries:,} vocabulary entries found "
            f"({self.found / max(1, self.entries):.1%}{tokens}; {self.lowercase:,} by their lowercase form), "
            f"dim {self.dim}"
        )


def locate_vectors(spec: str) -> tuple[str, Optional[str]]:
    """(local path, zip member or None) of a ``model.pretrained_vectors`` value; Hub files are downloaded."""
    path, _, member = spec.partition("::")
    if path.endswith(".model") or (member or "").endswith(".model"):
        raise DataError(
            f"{spec} is a gensim .model file, a Python pickle, which textrnn never loads (it can run code); "
            "save its vectors as text with model.wv.save_word2vec_format('vectors.txt') and use that"
        )
    if path.startswith("hf://"):
        parts = path[len("hf://") :].split("/")
        owner_repo, filename = "/".join(parts[:2]), "/".join(parts[2:])
        from huggingface_hub import hf_hub_download

        try:
            path = hf_hub_download(owner_repo, filename)
        except Exception as exc:  # network, missing repo or file: one line either way
            raise DataError(
                f"could not fetch {filename} from the Hub repository {owner_repo} ({type(exc).__name__}); "
                "download it and give its local path"
            ) from None
    if not os.path.isfile(path):
        raise DataError(
            f"pretrained vectors file not found: {path}; give a local path, ARCHIVE.zip::MEMBER or hf://OWNER/REPO/FILE"
        )
    return path, member or None


@contextmanager
def open_vectors(path: str, member: Optional[str]) -> Iterator[IO[bytes]]:
    """A binary stream of the vector file, through zip and gzip as its name says."""
    if member is not None:
        with zipfile.ZipFile(path) as archive:
            if member not in archive.namelist():
                names = ", ".join(archive.namelist()[:10])
                raise DataError(f"{path} has no member {member!r}; it holds: {names}")
            with archive.open(member) as raw:
                yield _maybe_gzip(raw, member)
        return
    with open(path, "rb") as raw:
        yield _maybe_gzip(raw, path)


def _maybe_gzip(raw: IO[bytes], name: str) -> IO[bytes]:
    return gzip.GzipFile(fileobj=raw) if name.endswith(".gz") else raw  # type: ignore[return-value]


def read_vectors(stream: IO[bytes], vocab: dict, dim: int, name: str, binary: bool = False) -> tuple[dict, dict, int]:
    """Scan ``stream`` once: (id -> vector of the exact word, id -> vector of its lowercase form, file dim).

    ``vocab`` maps token -> id. Only the vocabulary's words are parsed; a line that does not
    hold one word and ``dim`` numbers is an error naming its line number.
    """
    lower: dict = {}
    for token, index in vocab.items():
        if token.lower() != token:
            lower.setdefault(token.lower(), []).append(index)
    exact: dict = {}
    fallback: dict = {}
    first = stream.readline()
    header = first.split()
    has_header = len(header) == 2 and all(part.isdigit() for part in header)
    file_dim = int(header[1]) if has_header else len(first.split()) - 1
    if file_dim != dim:
        raise DataError(
            f"{name} holds {file_dim}-dimensional vectors but model.embedding_dim is {dim}; "
            f"set model.embedding_dim={file_dim} or use a {dim}-dimensional file"
        )
    rows = _binary_rows(stream, dim, name) if binary else _text_rows(stream, [] if has_header else [first], dim, name)
    for word, values in rows:
        if word in vocab:
            exact[vocab[word]] = values()
        elif word in lower:
            vector = values()
            for index in lower[word]:
                fallback.setdefault(index, vector)
    return exact, fallback, file_dim


def _text_rows(stream: IO[bytes], pending: list, dim: int, name: str):
    number = 1 if pending else 2
    for line in itertools.chain(pending, stream):  # one line at a time: the file is never held
        word, _, rest = line.rstrip(b"\r\n").partition(b" ")
        text = word.decode("utf-8", errors="replace")

        def values(rest: Any=rest, number: Any=number) -> np.ndarray:
            try:
                vector = np.array(rest.split(), dtype=np.float32)
            except ValueError:
                vector = np.empty(0, dtype=np.float32)
            if vector.shape != (dim,):
                raise DataError(f"{name} line {number} is malformed: expected a word and {dim} numbers")
            return vector

        if word:
            yield text, values
        number += 1


def _binary_rows(stream: IO[bytes], dim: int, name: str):
    width = 4 * dim
    while True:
        word = bytearray()
        while (ch := stream.read(1)) not in (b" ", b""):
            if ch != b"\n":
                word += ch
        if not word:
            return
        data = stream.read(width)
        if len(data) != width:
            raise DataError(
                f"{name} ends inside the vector of {word.decode('utf-8', errors='replace')!r}; the file is truncated"
            )
        yield word.decode("utf-8", errors="replace"), (lambda data=data: np.frombuffer(data, dtype="<f4").copy())


def load_pretrained_vectors(embeddings: list, spec: str, tokenizer: Any, token_counts: Optional[np.ndarray] = None,
                            pad_id: int = 0) -> VectorCoverage:
    """Copy the vectors of ``spec`` into each of ``embeddings`` (an ensemble has one per member) for the
    tokenizer's words, reading the file once; returns the coverage."""
    path, member = locate_vectors(spec)
    vocab = {t: i for t, i in tokenizer.vocab.get_stoi().items() if t not in SPECIAL_TOKENS}
    binary = (member or path).removesuffix(".gz").endswith(".bin")
    with open_vectors(path, member) as stream:
        exact, fallback, dim = read_vectors(stream, vocab, embeddings[0].embedding_dim, spec, binary)
    found = {**{i: v for i, v in fallback.items() if i not in exact}, **exact}
    ids = sorted(found)
    with torch.no_grad():
        for embedding in embeddings:
            if ids:
                embedding.weight[torch.tensor(ids)] = torch.from_numpy(np.stack([found[i] for i in ids])).to(
                    embedding.weight
                )
            embedding.weight[pad_id] = 0.0
    share = None
    if token_counts is not None and token_counts.sum() > 0:
        share = float(token_counts[ids].sum() / token_counts.sum()) if ids else 0.0
    return VectorCoverage(len(found), len(found) - len(exact), len(vocab), share, dim)


def embeddings_of(model: torch.nn.Module) -> list:
    """The input embeddings of a model: one, or one per ensemble member."""
    from .modules import RNNBackbone

    return [m.embedding for m in model.modules() if isinstance(m, RNNBackbone)]


def embedding_frozen(freeze: Any, epoch: int) -> bool:
    """``model.freeze_embedding``: true (always), false (never) or N (during the first N epochs)."""
    return bool(freeze) if isinstance(freeze, bool) else epoch < int(freeze)
