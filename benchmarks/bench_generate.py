"""Generation speed of a 2-layer, 512-unit char LSTM (vocab 65), batch 1 and 64 samples, and of the parallel cells.

    python benchmarks/bench_generate.py [--rounds 5] [--cells lstm mingru minlstm]

Compares, in one run: textrnn's ``generate`` (sampling included); a naive loop that re-runs
the whole prefix every step; and bare single-step loops with no sampling (``nn.LSTM`` with
oneDNN on and off, and a hand-fused cell), the fastest of which is the bound. Each other cell of
``--cells`` (minGRU, minLSTM: one step of their recurrence per token) generates at the hidden size
that gives its stack the LSTM's parameter count, batch 1 and 64.
"""

from __future__ import annotations

import argparse
import json
import string
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import interleaved, peak_rss_mb  # noqa: E402

from textrnn import RNNConfig, RNNLanguageModel, TextTokenizer  # noqa: E402

STEPS = 200


def build(cell: str = "lstm") -> RNNLanguageModel:
    tok = TextTokenizer.train([string.printable[:61]], "char")  # 61 chars + 4 specials = 65
    config = RNNConfig(task="language_model", vocab_size=len(tok), embedding_dim=512, hidden_size=equal_hidden(cell),
                       num_layers=2, cell=cell)
    torch.manual_seed(0)
    return RNNLanguageModel(config, tok).eval()


def equal_hidden(cell: str, embed: int = 512, lstm_hidden: int = 512) -> int:
    """H at which a 2-layer stack of ``cell`` has the 2-layer LSTM's recurrent parameters (a multiple of 8)."""
    if cell == "lstm":
        return lstm_hidden
    target = sum(4 * lstm_hidden * (n + lstm_hidden) + 8 * lstm_hidden for n in (embed, lstm_hidden))
    k = 2 if cell == "mingru" else 3  # weight blocks per layer: gate and candidate (+ a forget gate for minLSTM)
    hidden = next(h for h in range(8, 8192, 8) if k * h * (embed + h) + 4 * k * h >= target)
    return hidden


def bare_nn_lstm(mkldnn: bool):
    lstm = nn.LSTM(512, 512, 2, batch_first=True).eval()
    x, state = torch.randn(1, 1, 512), None

    def run() -> int:
        nonlocal state
        with torch.inference_mode(), torch.backends.mkldnn.flags(enabled=mkldnn):
            for _ in range(STEPS):
                _, state = lstm(x, state)
        return STEPS

    return run


def bare_fused():
    w = [torch.randn(1024, 2048) * 0.03 for _ in range(2)]
    b = [torch.zeros(2048) for _ in range(2)]

    def run() -> int:
        with torch.inference_mode():
            h, c = [torch.zeros(1, 512)] * 2, [torch.zeros(1, 512)] * 2
            x = torch.randn(1, 512)
            for _ in range(STEPS):
                for layer in range(2):
                    gates = torch.addmm(b[layer], torch.cat([x, h[layer]], 1), w[layer])
                    ifo = gates[:, :1536].sigmoid()
                    c[layer] = torch.addcmul(ifo[:, 512:1024] * c[layer], ifo[:, :512], gates[:, 1536:].tanh())
                    h[layer] = x = ifo[:, 1024:] * c[layer].tanh()
        return STEPS

    return run


def textrnn_generate(model: RNNLanguageModel, samples: int):
    prompt = torch.tensor(model.tokenizer.encode("The "))
    return lambda: samples * model.generate(prompt, STEPS, num_samples=samples, temperature=0.8, seed=0).shape[1]


def naive(model: RNNLanguageModel):
    prompt = model.tokenizer.encode("The ")

    def run() -> int:
        ids = list(prompt)
        with torch.inference_mode():
            for _ in range(STEPS):
                logits, _, _ = model(torch.tensor([ids]))
                ids.append(int(torch.multinomial(torch.softmax(logits[0, -1] / 0.8, -1), 1)))
        return STEPS

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--cells", nargs="+", default=["lstm", "mingru", "minlstm"])
    args = parser.parse_args()
    model = build()
    others = {}
    for cell in (c for c in args.cells if c != "lstm"):
        other = build(cell)
        others[f"{cell} H={other.config.hidden_size} generate, batch 1 (chars/s)"] = textrnn_generate(other, 1)
        others[f"{cell} H={other.config.hidden_size} generate, num_samples=64 (chars/s)"] = textrnn_generate(other, 64)
    results: dict = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    results |= interleaved({
        "bare nn.LSTM step, oneDNN on (steps/s)": bare_nn_lstm(True),
        "bare nn.LSTM step, oneDNN off (steps/s)": bare_nn_lstm(False),
        "bare hand-fused cell (steps/s)": bare_fused(),
        "naive: re-run prefix each step (chars/s)": naive(model),
        "textrnn generate, batch 1 (chars/s)": textrnn_generate(model, 1),
        "textrnn generate, num_samples=64 (chars/s)": textrnn_generate(model, 64),
        **others,
    }, rounds=args.rounds)
    bound = max(v for k, v in results.items() if k.startswith("bare"))
    results["batch 1 / best bare step"] = results["textrnn generate, batch 1 (chars/s)"] / bound
    results["peak RSS (MB)"] = peak_rss_mb()
    for key, value in results.items():
        print(f"{key:45s} {value:,.2f}" if isinstance(value, float) else f"{key:45s} {value}")
    print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in results.items()}))


if __name__ == "__main__":
    main()
