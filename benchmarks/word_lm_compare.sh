#!/usr/bin/env bash
# The word-level LM side by side (docs/results.md): the pytorch/examples recipe in plain PyTorch
# against textrnn's recipe and its ablation, each with the same minutes on the same PTB-style tokens.
#
#   bash benchmarks/word_lm_compare.sh [MINUTES] [OUT]      # defaults: 6 minutes a run, runs/word_lm_compare
#
# Runs one after another (nothing else on the machine); each log lands in OUT. Test perplexity is
# scored on 10 streams, the peer's evaluation batch, with the token count printed beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES=${1:-6}
OUT=${2:-runs/word_lm_compare}
DATA=$OUT/ptb_style
mkdir -p "$OUT"
[ -f "$DATA/train.txt" ] || python benchmarks/make_ptb_corpus.py --output "$DATA" | tee "$OUT/corpus.json"

[ "${BASELINE:-1}" = 1 ] && python benchmarks/word_lm_baseline.py --data "$DATA" --minutes "$MINUTES" --seed 0 2>&1 | tee "$OUT/baseline_seed0.log"

COMMON="data.dataset=$DATA data.text_column=text train.max_minutes=$MINUTES train.progress=false"
# textrnn's own defaults for everything the recipe sets, at the recipe's (and the peer's) shape and batch
DEFAULTS="train.optimizer=adamw train.lr=0.002 train.weight_decay=0.01 train.grad_clip=1.0 train.warmup_steps=100
  train.min_lr_ratio=0.1 train.plateau_factor=null model.tie_weights=false model.init_range=null
  model.embedding_dropout=0 model.weight_dropout=0 model.output_dropout=0 model.dropout=0.2"
run() {  # NAME ARGS...: train, then score the best checkpoint on the test split
  local name=$1; shift
  textrnn train-generator "$@" $COMMON train.output_dir="$OUT/$name" 2> "$OUT/$name.train.log" | tail -1 > "$OUT/$name.result.json"
  textrnn evaluate --checkpoint "$OUT/$name" --dataset "$DATA" --text-column text --split test --batch-size 10 \
    | tee "$OUT/$name.test.json"
}
# A: textrnn's own defaults (AdamW, cosine) at the peer's shape and batch
[ "${ABLATION:-1}" = 1 ] && run adamw_defaults --config configs/word_lm.yaml $DEFAULTS
# B-D: the word_lm recipe (tied weights, AWD dropouts) with each optimizer
[ "${ABLATION:-1}" = 1 ] && run recipe_adamw --config configs/word_lm.yaml train.optimizer=adamw train.lr=0.003 train.weight_decay=0.01 \
  train.grad_clip=1.0 train.warmup_steps=100 train.min_lr_ratio=0.1 train.plateau_factor=null
run recipe_sgd --config configs/word_lm.yaml train.optimizer=sgd
run recipe_ntasgd --config configs/word_lm.yaml train.optimizer=ntasgd
# the shipped recipe (configs/word_lm.yaml, the ablation's winner) on two more seeds
if [ "${SEEDS:-1}" = 1 ]; then
  for seed in 1 2; do
    run "recipe_seed$seed" --config configs/word_lm.yaml train.seed=$seed
  done
fi
