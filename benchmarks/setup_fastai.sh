#!/usr/bin/env bash
# The fastai peer for benchmarks/transfer_sst2.py, in its own venv, kept out of textrnn's dependencies:
#   bash benchmarks/setup_fastai.sh [VENV]        (default: .venv-fastai)
# fastai lists torchvision, whose PyPI releases pin a new CUDA torch (multi-GB). Its text stack
# never imports torchvision (fastai issue #4153), so fastai goes in with --no-deps over the CPU
# torch, and its other dependencies are listed here from its METADATA (fastai 2.8.12).
set -euo pipefail
VENV="${1:-.venv-fastai}"
python3 -m venv "$VENV"
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q --no-deps fastai==2.8.12
"$VENV/bin/pip" install -q "fastdownload>=0.0.8,<2" "fastcore>=2.2.22" "fasttransform>=0.0.3" matplotlib pandas requests \
    pyyaml "fastprogress>=0.2.4" "pillow>=9.0.0" scikit-learn scipy "spacy<4" packaging "plum-dispatch<2.10" cloudpickle \
    pyarrow torch==2.13.0
"$VENV/bin/python" -c "import torch, fastai; from fastai.text.all import AWD_LSTM; print('fastai', fastai.__version__, 'torch', torch.__version__)"
