"""fastai's AWD-LSTM text classifier on SST-2, run INSIDE the fastai venv (benchmarks/setup_fastai.sh).

    .venv-fastai/bin/python benchmarks/fastai_sst2.py --data ../shared/data/sst2 --mode scratch --epochs 1 --seed 0
    .venv-fastai/bin/python benchmarks/fastai_sst2.py --data ../shared/data/sst2 --mode ulmfit --lm-epochs 2 --epochs 1

fastai's pretrained WikiText-103 weights cannot be downloaded here, so both modes start from
random weights (``pretrained=False``):
- ``scratch``: ``text_classifier_learner(AWD_LSTM)`` trained with ``fit_one_cycle`` on the training split;
- ``ulmfit``: fastai's own path on the same text: ``language_model_learner`` on the training
  sentences, ``save_encoder``, then the classifier with ``load_encoder`` and gradual unfreezing.
Prints one JSON line: validation accuracy, minutes and the settings. ``--limit N`` keeps N
training rows (the smoke test). textrnn's benchmarks/transfer_sst2.py calls this.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import pandas as pd
from fastai.text.all import (
    AWD_LSTM,
    TextDataLoaders,
    accuracy,
    language_model_learner,
    set_seed,
    text_classifier_learner,
)


def frames(data: Path, limit: int) -> pd.DataFrame:
    """train + validation in one frame with an is_valid column; fastai wants the text column named ``text``."""
    train = pd.read_parquet(data / "train.parquet")
    train = train.sample(n=min(limit, len(train)), random_state=0) if limit else train
    valid = pd.read_parquet(data / "validation.parquet")
    frame = pd.concat([train.assign(is_valid=False), valid.assign(is_valid=True)], ignore_index=True)
    return frame.rename(columns={"sentence": "text"})[["text", "label", "is_valid"]]


def classifier(frame: pd.DataFrame, args, vocab=None):
    dls = TextDataLoaders.from_df(frame, text_col="text", label_col="label", valid_col="is_valid", bs=args.batch_size,
                                  seed=args.seed, text_vocab=vocab)
    return text_classifier_learner(dls, AWD_LSTM, drop_mult=0.5, pretrained=False, metrics=accuracy)


def ulmfit(frame: pd.DataFrame, args, folder: Path):
    text = frame[~frame.is_valid][["text"]]
    lm_dls = TextDataLoaders.from_df(text, text_col="text", is_lm=True, valid_pct=0.1, bs=args.batch_size,
                                     seed=args.seed)
    lm = language_model_learner(lm_dls, AWD_LSTM, drop_mult=0.3, pretrained=False, path=folder, metrics=accuracy)
    lm.fit_one_cycle(args.lm_epochs, 2e-2)
    lm.save_encoder("encoder")
    learn = classifier(frame, args, vocab=lm_dls.vocab)
    learn.path = folder
    learn.load_encoder("encoder")
    learn.fit_one_cycle(1, 2e-2)  # the head first, then the top layers, then all (ULMFiT's schedule)
    learn.freeze_to(-2)
    learn.fit_one_cycle(1, slice(1e-2 / (2.6**4), 1e-2))
    learn.unfreeze()
    learn.fit_one_cycle(args.epochs, slice(1e-3 / (2.6**4), 1e-3))
    return learn


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--data", type=Path, required=True, help="folder with train.parquet and validation.parquet")
    parser.add_argument("--mode", choices=["scratch", "ulmfit"], default="scratch")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--lm-epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=0, help="keep this many training rows (0: all)")
    args = parser.parse_args()
    set_seed(args.seed, reproducible=True)
    started = time.perf_counter()
    frame = frames(args.data, args.limit)
    with tempfile.TemporaryDirectory(prefix="fastai-sst2-") as tmp:
        if args.mode == "scratch":
            learn = classifier(frame, args)
            learn.fit_one_cycle(args.epochs, 2e-2)
        else:
            learn = ulmfit(frame, args, Path(tmp))
        accuracy_value = float(learn.validate()[1])
    print("\n" + json.dumps({"system": f"fastai AWD-LSTM {args.mode}", "accuracy": accuracy_value,
                             "minutes": (time.perf_counter() - started) / 60,
                             **{k: str(v) for k, v in vars(args).items()}}))


if __name__ == "__main__":
    main()
