"""Per-token loss of a checkpoint on prompt/completion records (paper A's token-level loss analysis).

`token_nll` scores exactly what `repro.training.sft` trains on: the rendered prompt + completion + eos,
tokenized as one string (the completion starts where the prompt's tokens stop being a prefix, as in TRL),
truncated to `max_length`, and the loss taken on completion tokens only (eos included). The token-mean of
the result is the quantity TRL logs as `loss` for a batch (sum of token NLLs / number of completion tokens);
tests/test_models_training.py checks that against a real training run.

- `summarize(nlls)`: token-mean, quantiles, high-loss tail share, "dilution" (share of near-zero-loss
  tokens), key-token loss (mean over the top 10% highest-loss tokens).
- `step_type_loss(nlls, offsets, spans)`: token-mean loss per reasoning-step type from character spans.
- `save_nll` / `load_nll`: npz of concatenated float16 values + int64 offsets.

Usage: `model, tok = load_pretrained(ckpt); s = summarize(token_nll(model, tok, records))`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from repro.models import common_prefix, render_prompt, set_threads
from repro.progress import Progress

log = logging.getLogger(__name__)


def encode(
    tokenizer: Any, example: dict[str, str], max_length: int | None = None, completion_only: bool = True
) -> tuple[list[int], int, np.ndarray]:
    """Token ids of one training sequence, the index of its first scored token, and each scored token's
    (start, end) character span in the completion (eos: an empty span at the end; prompt tokens, when
    scored, have negative spans). Mirrors TRL's SFT preprocessing for non-conversational records."""
    prompt = render_prompt(example["prompt"])
    completion = example["completion"]
    if not completion.endswith(tokenizer.eos_token):
        completion = completion + tokenizer.eos_token
    prompt_ids = tokenizer(text=prompt)["input_ids"]
    enc = tokenizer(text=prompt + completion, return_offsets_mapping=True)
    ids = list(enc["input_ids"])
    start = common_prefix(prompt_ids, ids)
    if max_length is not None:
        ids = ids[:max_length]
    first = min(start, len(ids)) if completion_only else 1
    offsets = np.asarray(enc["offset_mapping"][first : len(ids)], dtype=np.int64).reshape(-1, 2) - len(prompt)
    if len(ids) and ids[-1] == tokenizer.eos_token_id and len(offsets):
        offsets[-1] = len(completion) - len(tokenizer.eos_token)
    return ids, first, offsets


@torch.no_grad()
def token_nll(
    model: Any,
    tokenizer: Any,
    examples: Sequence[dict[str, str]],
    batch_size: int = 32,
    max_length: int | None = 512,
    completion_only: bool = True,
    threads: int | None = None,
) -> list[np.ndarray]:
    """Per-token negative log-likelihood (nats, float32) of each example's completion tokens (+eos), in order.
    `max_length` must equal the training max_length for the numbers to match training's. Batches are formed
    from length-sorted examples (right padding) and the results returned in input order."""
    set_threads(threads)
    encoded = [encode(tokenizer, ex, max_length, completion_only) for ex in examples]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    was_training = model.training
    model.eval()
    out: list[np.ndarray] = [np.zeros(0, np.float32)] * len(encoded)
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    with Progress("token nll", total=len(encoded), unit="examples") as progress:
        for batch in batches:
            _nll_batch(model, encoded, batch, pad, device, out)
            progress.update(len(batch))
    model.train(was_training)
    return out


def _nll_batch(model: Any, encoded: list[tuple[list[int], int, np.ndarray]], batch: list[int], pad: int,
               device: Any, out: list[np.ndarray]) -> None:
    """Fill `out[i]` for the examples `i` of one batch (right padding)."""
    width = max(len(encoded[i][0]) for i in batch)
    ids = torch.full((len(batch), width), pad, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, i in enumerate(batch):
        seq = encoded[i][0]
        ids[row, : len(seq)] = torch.tensor(seq)
        mask[row, : len(seq)] = 1
    logits = model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits.float()
    nll = F.cross_entropy(logits[:, :-1].transpose(1, 2), ids[:, 1:].to(device), reduction="none").cpu()
    for row, i in enumerate(batch):
        seq, first, _ = encoded[i]
        out[i] = nll[row, max(first, 1) - 1 : len(seq) - 1].numpy().astype(np.float32)


def summarize(
    nlls: Sequence[np.ndarray], key_quantile: float = 0.9, high: float = 2.0, low: float = 0.1
) -> dict[str, float]:
    """Token-level loss statistics over all tokens of all examples.

    mean: token-mean (TRL's aggregation); seq_mean: mean of per-example means; q*: quantiles; high_share:
    share of tokens with nll > `high` nats (the high-loss tail); dilution: share with nll < `low` nats
    (routine tokens); key_loss: mean nll of the tokens at or above the `key_quantile` quantile (top 10%)."""
    flat = np.concatenate([np.asarray(x, np.float64) for x in nlls]) if len(nlls) else np.zeros(0)
    if flat.size == 0:
        return {"n_tokens": 0, "n_examples": len(nlls)}
    qs = {f"q{int(round(q * 100)):02d}": float(np.quantile(flat, q)) for q in (0.1, 0.25, 0.5, 0.75, 0.9, 0.99)}
    threshold = float(np.quantile(flat, key_quantile))
    per_seq = [float(np.mean(x)) for x in nlls if len(x)]
    return {
        "n_tokens": int(flat.size),
        "n_examples": len(nlls),
        "mean": float(flat.mean()),
        "seq_mean": float(np.mean(per_seq)),
        **qs,
        "high_share": float((flat > high).mean()),
        "dilution": float((flat < low).mean()),
        "key_threshold": threshold,
        "key_loss": float(flat[flat >= threshold].mean()),
    }


def step_spans(completion: str, steps: Iterable[tuple[str, str]]) -> list[tuple[int, int, str]]:
    """Character spans (start, end, type) of (type, text) steps found in order in `completion`."""
    spans, pos = [], 0
    for kind, text in steps:
        start = completion.find(text, pos)
        if start < 0:
            raise ValueError(f"step text not found in completion after char {pos}: {text[:40]!r}")
        spans.append((start, start + len(text), kind))
        pos = start + len(text)
    return spans


def step_type_loss(
    nlls: Sequence[np.ndarray],
    offsets: Sequence[np.ndarray],
    spans: Sequence[Sequence[tuple[int, int, str]]],
    other: str = "other",
) -> dict[str, dict[str, float]]:
    """Token-mean loss per step type. A token belongs to the step whose span contains the token's last
    character (so a token carrying a leading space or newline counts for the step it starts); tokens in no
    step (separators, the final answer line if not a step, eos) count as `other`."""
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    for nll, off, sp in zip(nlls, offsets, spans):
        for value, (s, e) in zip(nll, off):
            last = max(e - 1, s)
            kind = next((k for (a, b, k) in sp if a <= last < b), other)
            sums[kind] = sums.get(kind, 0.0) + float(value)
            counts[kind] = counts.get(kind, 0) + 1
    return {k: {"mean": sums[k] / counts[k], "n_tokens": counts[k]} for k in sorted(sums)}


def save_nll(path: Path, nlls: Sequence[np.ndarray], **extra: np.ndarray) -> Path:
    """Save as npz: `nll` (all values, float16, concatenated) and `offsets` (int64, len(nlls)+1)."""
    lengths = np.array([len(x) for x in nlls], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    flat = np.concatenate([np.asarray(x, np.float32) for x in nlls]) if len(nlls) else np.zeros(0, np.float32)
    if flat.size and float(flat.max()) > 65000:
        raise ValueError("nll too large for float16")
    np.savez_compressed(path, nll=flat.astype(np.float16), offsets=offsets, **extra)
    return Path(path)


def load_nll(path: Path) -> list[np.ndarray]:
    """Inverse of `save_nll` (values come back as float32, rounded to float16 precision)."""
    with np.load(path) as z:
        flat, offsets = z["nll"].astype(np.float32), z["offsets"]
    return [flat[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
