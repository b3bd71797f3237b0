"""Which tokens drove a prediction: integrated gradients on the input embeddings, and attention weights.

Integrated gradients (Sundararajan et al. 2017) credit each token with its embedding times the
gradient of the score, averaged along the straight path from a baseline (all-zero embeddings) to
the text::

    attribution_t = sum_e x_te * integral_0^1 d score(a x) / d x_te da    (midpoints of pieces of [0, 1])

Summed over the tokens the attributions equal ``score(x) - score(0)`` up to the path's Riemann
error (*completeness*); every explanation reports that gap as ``delta``, which shrinks as ``steps``
grows. The score can turn sharply along the path (attention moving to another token), so the path
is first scored (forward passes only) at ``steps`` even points and then more finely wherever it
moves fast (:func:`scored_path`), and the gradient is taken on pieces placed by how much the score
moves across each (:func:`path_points`).

The score is a classifier label's logit (an ensemble's: the logit of its members' mean
probability; every member's embeddings move along the path together) or a language model's
log-probability of the next token. Where the pooling is attention, its weights come too (an
ensemble's averaged over members): what the model looked at, not what changed its mind.

Occlusion needs forward passes only, so it is what the static web page computes (onnxruntime-web
has no gradients): each token's attribution is how much the label's probability falls when that
token is deleted from the text, all T shortened texts run as one batch (:func:`occlusion`).
"""

from __future__ import annotations

from typing import Any, Callable, Optional

import torch
from torch import Tensor, nn

from ..core.errors import TextRNNError
from ..core.runtime import eval_mode
from ..core.schema import choice_error
from ..data.batching import pad_batch
from ..data.encoding import encode_for_inference
from ..data.tokenization import TextTokenizer
from .contract import ModelParts, Scorer
from .modules import AttentionPooling, RNNBackbone

MAX_TOKENS = 2_000  # an explanation runs the text steps times forward and backward: a long one is cut here
METHODS = ("integrated_gradients", "occlusion")

Score = Callable[[Tensor], Tensor]  # (S, T) ids -> (S,) scores, the model run on them


def integrated_gradients(model: ModelParts, ids: Tensor, score: Score, steps: int = 64,
                         chunk: int = 16) -> dict:
    """Attributions of the T tokens of ``ids`` (T,) to ``score``; see the module docstring."""
    if not isinstance(steps, int) or isinstance(steps, bool) or steps < 2:
        raise TextRNNError(f"steps must be an integer of at least 2, got {steps!r}")
    total: Optional[Tensor] = None
    with eval_mode(model), torch.backends.cudnn.flags(enabled=False):  # cuDNN's RNN has no eval-mode backward
        grid, path = scored_path(model, ids, score, steps, 4 * chunk)
        points, widths = path_points(grid, path, steps)
        for part, width in zip(points.split(chunk), widths.split(chunk)):
            _, grads, inputs = _scores(model, ids, part, score, keep_grad=True)
            step = sum((g * x).sum(-1) for g, x in zip(grads, inputs))  # (S, T) summed over members
            weighted = (step * width[:, None]).sum(0)
            total = weighted if total is None else total + weighted
    assert total is not None
    attributions = total.tolist()
    baseline, full = float(path[0]), float(path[-1])
    return {"attributions": attributions, "score": full, "baseline_score": baseline,
            "delta": sum(attributions) - (full - baseline)}


def scored_path(model: ModelParts, ids: Tensor, score: Score, steps: int, chunk: int) -> tuple[Tensor, Tensor]:
    """The path's points and their scores (forward passes only): ``steps`` even intervals, then each interval
    across which the score moves more than an even share of its total movement halved, up to 6 rounds and 8 x
    ``steps`` intervals, so a turn narrower than an interval is found before it is integrated."""
    grid = torch.linspace(0, 1, steps + 1)
    path = torch.cat([_scores(model, ids, part, score, keep_grad=False)[0] for part in grid.split(chunk)])
    for _ in range(6):
        moves = (path[1:] - path[:-1]).abs()
        wide = (moves > moves.sum() / steps) & (grid[1:] - grid[:-1] > 1e-6)
        if not bool(wide.any()) or len(grid) > 8 * steps:
            break
        middles = (grid[:-1][wide] + grid[1:][wide]) / 2
        scored = torch.cat([_scores(model, ids, part, score, keep_grad=False)[0] for part in middles.split(chunk)])
        grid, order = torch.cat([grid, middles]).sort()
        path = torch.cat([path, scored])[order]
    return grid, path


def path_points(grid: Tensor, path: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """Midpoints and widths of about 2 x ``steps`` pieces of [0, 1]: each of the ``grid``'s intervals is cut
    into pieces in proportion to how much the score moves across it (plus an even share), so a sharp turn
    of the score along the path (attention switching tokens, a saturating gate) is integrated finely."""
    moves = (path[1:] - path[:-1]).abs()
    weight = moves + moves.sum() / len(moves) + 1e-12
    pieces = torch.clamp(torch.round(steps * weight / weight.sum()), min=1).long()
    lows, highs = grid[:-1], grid[1:]
    points, widths = [], []
    for low, high, n in zip(lows.tolist(), highs.tolist(), pieces.tolist()):
        width = (high - low) / n
        points.append(low + width * (torch.arange(n, dtype=torch.float32) + 0.5))
        widths.append(torch.full((n,), width))
    return torch.cat(points), torch.cat(widths)


def _scores(model: ModelParts, ids: Tensor, alphas: Tensor, score: Score, keep_grad: bool) -> tuple:
    """The scores of ``ids`` with every input embedding scaled by each alpha; with ``keep_grad``, the
    gradients of their sum with respect to those scaled embeddings, and the unscaled embeddings."""
    scaled: list[Tensor] = []
    plain: list[Tensor] = []

    def hook(module: nn.Module, inputs: Any, output: Tensor) -> Tensor:
        x = output.detach()
        plain.append(x)
        moved = (alphas.to(x.device, x.dtype)[:, None, None] * x).requires_grad_(keep_grad)  # (S, T, E)
        scaled.append(moved)
        return moved

    handles = [b.embedding.register_forward_hook(hook) for b in model.modules() if isinstance(b, RNNBackbone)]
    try:
        with torch.set_grad_enabled(keep_grad):
            values = score(ids[None, :].expand(len(alphas), -1).to(model.device))  # (S,)
            grads = torch.autograd.grad(values.sum(), scaled) if keep_grad else ()
    finally:
        for handle in handles:
            handle.remove()
    return values.detach().cpu(), [g.cpu() for g in grads], [x.cpu() for x in plain]


def attention_weights(model: ModelParts, ids: Tensor, run: Callable[[Tensor], Any]) -> Optional[list[float]]:
    """The attention pooling's weights over the T tokens (averaged over an ensemble's members), or None."""
    pools = [m for m in model.modules() if isinstance(m, AttentionPooling)]
    if not pools:
        return None
    seen: list[Tensor] = []
    handles = [p.score.register_forward_hook(lambda m, i, out: seen.append(torch.softmax(out[0, :, 0].float(), 0)))
               for p in pools]
    try:
        with eval_mode(model), torch.no_grad():
            run(ids[None, :].to(model.device))
    finally:
        for handle in handles:
            handle.remove()
    return torch.stack(seen).mean(0).cpu().tolist()


def occlusion(model: Scorer, ids: Tensor, index: int, run: Callable[[Tensor, Tensor], Tensor]) -> dict:
    """Each of the T tokens' attribution to label ``index``: the label's probability for the whole text minus
    its probability with that token deleted (forward passes only; the T shortened texts run as one batch)."""
    tokens = ids.tolist()
    shortened = [tokens[:t] + tokens[t + 1:] for t in range(len(tokens))]  # row t: every token but t
    batch, lengths = pad_batch([tokens, *shortened], model.config.pad_id)
    with eval_mode(model), torch.no_grad():
        scores = model.probabilities(run(batch.to(model.device), lengths))[:, index].float().cpu()  # (1 + T,)
    return {"attributions": (scores[0] - scores[1:]).tolist(), "score": float(scores[0])}


def explain_label(model: Scorer, text: str, label: Optional[str] = None, steps: int = 64,
                  method: str = "integrated_gradients") -> dict:
    """A classifier's explanation of ``text``: for ``label`` (default: the predicted one), each token's
    attribution to its logit (integrated gradients) or to its probability (``method="occlusion"``), and the
    attention weights where the pooling has them."""
    if method not in METHODS:
        raise choice_error("method", METHODS, method, TextRNNError)
    tokenizer = model.require_tokenizer()
    rows, cut = encode_for_inference(tokenizer, [text], MAX_TOKENS)
    if not rows[0]:
        raise TextRNNError("the text has no tokens to explain; give a text with words in it")
    ids = torch.tensor(rows[0])

    def run(batch: Tensor, lengths: Optional[Tensor] = None) -> Tensor:  # (S, T) -> (S, C) logits
        if lengths is None:  # every row is the whole text
            lengths = torch.full((batch.size(0),), batch.size(1), dtype=torch.long)
        return model(batch, lengths)[0]

    with eval_mode(model), torch.no_grad():
        probabilities = model.probabilities(run(ids[None].to(model.device)))[0]
    names = model.label_names
    if label is not None and label not in names:
        raise TextRNNError(f"label {label!r} is not one of this model's labels ({', '.join(names)})")
    index = names.index(label) if label is not None else int(probabilities.argmax())
    if method == "occlusion":
        found = occlusion(model, ids, index, run)
    else:
        found = integrated_gradients(model, ids, lambda batch: run(batch)[:, index], steps)
    out = {"method": method, "label": names[index], "probability": float(probabilities[index]),
           "tokens": pieces(tokenizer, text, ids), **found, "attention": attention_weights(model, ids, run)}
    return out | ({"truncated_to_tokens": MAX_TOKENS} if cut[0] else {})


def explain_next_token(model: ModelParts, prompt: str, token: Optional[str] = None, steps: int = 64) -> dict:
    """A language model's explanation of its next token after ``prompt`` (default: the most likely one):
    each prompt token's attribution to that token's log-probability."""
    from .generation import prompt_ids

    tokenizer = model.require_tokenizer()
    ids = prompt_ids(tokenizer, prompt)[-MAX_TOKENS:]

    def run(batch: Tensor) -> Tensor:  # (S, T) -> (S, V) log-probabilities of the next token
        return torch.log_softmax(model(batch)[0][:, -1].float(), dim=-1)

    if token is None:
        with eval_mode(model), torch.no_grad():
            target = int(run(ids[None].to(model.device))[0].argmax())
    else:
        wanted = tokenizer.encode(token)
        if len(wanted) != 1:
            raise TextRNNError(f"token {token!r} is {len(wanted)} tokens to this model; give one token")
        target = wanted[0]
    found = integrated_gradients(model, ids, lambda batch: run(batch)[:, target], steps)
    return {"token": tokenizer.token_text(target), "tokens": pieces(tokenizer, prompt, ids), **found}


def pieces(tokenizer: TextTokenizer, text: str, ids: Tensor) -> list[str]:
    """The text each id stands for: its span of ``text`` (so unknown words show as written)."""
    count = len(ids)
    if tokenizer.kind == "char":
        return list(text[:count]) if len(text) >= count else [tokenizer.token_text(int(i)) for i in ids]
    offsets = tokenizer.tokenizer.encode(text, add_special_tokens=False).offsets[:count]
    if len(offsets) == count:
        return [text[a:b] for a, b in offsets]
    return [tokenizer.token_text(int(i)) for i in ids]
