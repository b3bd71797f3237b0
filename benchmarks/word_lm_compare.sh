#!/usr/bin/env bash
# The word-level LM side by side (docs/results.md): the pytorch/examples recipe in plain PyTorch
# against textrnn's recipe (configs/word_lm.yaml) and its ablation, each with the same minutes on
# the same PTB-style tokens.
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

python benchmarks/word_lm_baseline.py --data "$DATA" --minutes "$MINUTES" --seed 0 2>&1 | tee "$OUT/baseline_seed0.log"

COMMON="data.dataset=$DATA data.text_column=text train.max_minutes=$MINUTES train.progress=false"
run() {  # NAME ARGS...: train, then score the best checkpoint on the test split
  local name=$1; shift
  textrnn train-generator --config configs/word_lm.yaml "$@" $COMMON train.output_dir="$OUT/$name" \
    2> "$OUT/$name.train.log" | tail -1 > "$OUT/$name.result.json"
  textrnn evaluate --checkpoint "$OUT/$name" --dataset "$DATA" --text-column text --split test --batch-size 10 \
    | tee "$OUT/$name.test.json"
}
AWD_DROPOUTS="model.embedding_dropout=0.1 model.weight_dropout=0.2 model.output_dropout=0.3"
PEER_SGD="train.lr=20 train.weight_decay=1.2e-6 train.grad_clip=0.25 train.warmup_steps=0 train.min_lr_ratio=1.0
  train.plateau_factor=0.25 train.nonmono=3"
FULL="model.tie_weights=true model.adaptive_softmax_cutoffs=null"  # A-E: a full softmax
# A: textrnn's defaults (AdamW 0.002, cosine; untied, PyTorch's init) at the recipe's (and the peer's) shape and batch
run adamw_defaults $FULL train.lr=0.002 model.tie_weights=false model.init_range=null model.output_dropout=0
# B-D: tied weights and AWD-LSTM's dropouts, with each optimizer
run recipe_adamw $FULL $AWD_DROPOUTS
run recipe_sgd $FULL $AWD_DROPOUTS train.optimizer=sgd $PEER_SGD
run recipe_ntasgd $FULL $AWD_DROPOUTS train.optimizer=ntasgd $PEER_SGD
# E: tied, dropout 0.2, AdamW 0.003 (the previous recipe); I: the same at a constant 0.006
run tied_lr3 $FULL
run tied_lr6 $FULL train.lr=0.006
# K: the shipped recipe, configs/word_lm.yaml as it is (untied, adaptive softmax [2000, 6000]), three seeds
for seed in 0 1 2; do
  run "recipe_seed$seed" train.seed=$seed
done
