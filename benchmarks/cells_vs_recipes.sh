#!/usr/bin/env bash
# The shipped word-LM and SST-2 recipes against the same recipe with model.cell=mingru (docs/results.md,
# "Parallel cells in the word LM and SST-2 recipes"): each pair side by side, one thread each, for the recipe's
# own minutes; then the word LMs' test perplexity.
#
#   bash benchmarks/cells_vs_recipes.sh [SST2_FOLDER] [OUT] [SEED]    # defaults: data/sst2, runs/cells_vs_recipes, 0
set -euo pipefail
cd "$(dirname "$0")/.."
SST2=${1:-data/sst2}
OUT=${2:-runs/cells_vs_recipes}
SEED=${3:-0}
CORPUS=$OUT/ptb_style
mkdir -p "$OUT"
[ -f "$CORPUS/train.txt" ] || python benchmarks/make_ptb_corpus.py --output "$CORPUS"
ONE="train.progress=false train.num_threads=1 train.seed=$SEED"
for cell in lstm mingru; do
  ( OMP_NUM_THREADS=1 textrnn train-generator --config configs/word_lm.yaml model.cell=$cell data.dataset=$CORPUS \
      data.text_column=text $ONE train.output_dir=$OUT/word_lm_$cell 2> $OUT/word_lm_$cell.log | tail -1
    OMP_NUM_THREADS=1 textrnn evaluate --checkpoint $OUT/word_lm_$cell --dataset $CORPUS --text-column text \
      --split test --batch-size 10 ) > $OUT/word_lm_$cell.json &
done
wait
for cell in lstm mingru; do
  OMP_NUM_THREADS=1 textrnn train-classifier --config configs/sst2_bilstm.yaml model.cell=$cell data.dataset=$SST2 \
    $ONE train.output_dir=$OUT/sst2_$cell 2> $OUT/sst2_$cell.log | tail -1 > $OUT/sst2_$cell.json &
done
wait
tail -n +1 $OUT/*.json
