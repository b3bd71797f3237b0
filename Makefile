# Two commands do all set-up on a fresh machine:
#   make demo   install, train a small char-level generator offline (600 steps, ~2 min on 2 CPU cores), sample from it
#   make test   install with test extras (and Chromium, as root), run the linter, the type checker and the tests
#   make docs   build the reference site into docs/_build/html
PYTHON ?= python3

# torch first: keep a torch that is already installed; otherwise take 2.13.0, which pip finds
# as a CPU build here (a plain `pip install torch` would pull a multi-GB CUDA build).
install:
	$(PYTHON) -c "import torch" 2>/dev/null || $(PYTHON) -m pip install -q torch==2.13.0
	$(PYTHON) -m pip install -q -e ".[test]"

demo: install
	HF_HUB_OFFLINE=1 $(PYTHON) -m textrnn train-generator --config configs/demo_char.yaml
	$(PYTHON) -m textrnn generate --checkpoint runs/demo_char --prompt "Return the " --max-new-tokens 300 --seed 0

# fetch-web: the pinned onnxruntime-web and tokenizers.js the web export's tests run in Node
# (downloaded once from the npm registry into textrnn's cache, sha512-checked).
# browser: the page tests run in headless Chromium (Debian's chromium package). As root with apt-get it is
# installed here; elsewhere those tests skip, each saying how to install it.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  { DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1 || \
	    { apt-get update -q >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null 2>&1; }; }; } || \
	  echo "note: chromium is not installed, so the page tests will skip: apt-get install -y chromium (as root)"

test: install browser
	$(PYTHON) -m textrnn fetch-web
	$(PYTHON) -m ruff check textrnn tests benchmarks scripts examples docs
	$(PYTHON) -m mypy textrnn
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -q

# The reference site, strict: a broken reference or an undocumented public name fails (docs/conf.py).
# test-all: the default run and the slow tier (more kill points and DDP runs, soaks, the notebook, `make demo`)
test-all: test
	HF_HUB_OFFLINE=1 $(PYTHON) -m pytest -q -m slow

docs: install
	$(PYTHON) -m sphinx -b html -n -W --keep-going -q docs docs/_build/html
	@echo "site: docs/_build/html/index.html"

.PHONY: install browser demo test test-all docs
