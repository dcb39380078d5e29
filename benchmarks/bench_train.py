"""Training throughput: the train stage's SFT (TRL SFTTrainer, as `repro run` trains) against a plain
PyTorch loop (AdamW, the same clipping, right-padded batches, loss on completion tokens) on the same
model initialisation, tokenized data and batch size. Both are timed end to end from a built model to the
last step (tokenization and trainer set-up included); tokens are the non-padding tokens processed.

    python -m benchmarks --only train
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure, examples

log = logging.getLogger(__name__)


def plain_loop(data: list[dict[str, list[int]]], model, pad: int, steps: int, batch: int, lr: float, seed: int) -> int:
    """Train `model` for `steps` steps on `data` (input_ids/labels); return the tokens processed."""
    import torch

    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model.train()
    order: list[int] = []
    tokens = 0
    for _ in range(steps):
        if len(order) < batch:
            order += torch.randperm(len(data), generator=g).tolist()
        idx, order = order[:batch], order[batch:]
        width = max(len(data[i]["input_ids"]) for i in idx)
        ids = torch.full((len(idx), width), pad, dtype=torch.long)
        labels = torch.full((len(idx), width), -100, dtype=torch.long)
        mask = torch.zeros((len(idx), width), dtype=torch.long)
        for r, i in enumerate(idx):
            n = len(data[i]["input_ids"])
            ids[r, :n] = torch.tensor(data[i]["input_ids"])
            labels[r, :n] = torch.tensor(data[i]["labels"])
            mask[r, :n] = 1
        tokens += int(mask.sum())
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
    return tokens


def run(steps: int = 45, batch: int = 16, arch: str = "xs", threads: int | None = None, quick: bool = False) -> list[Figure]:
    from repro.models import build_model, build_tokenizer, render_prompt, set_threads
    from repro.config import TrainConfig
    from repro.training import RunOptions, _tokenize, sft

    if quick:
        steps = 10
    n_threads = set_threads(threads)
    ex = examples(400)
    tok = build_tokenizer([render_prompt(e["prompt"]) + e["completion"] for e in ex], kind="bpe", vocab_size=1024)
    recipe = TrainConfig(steps=steps, lr=1e-3, schedule="constant", batch_size=batch, max_length=256, seed=0,
                         weight_decay=0.0)
    short = max(2, steps // 3)
    t: dict[tuple[str, int], tuple[float, int]] = {}
    for which, n in (("stage", steps), ("plain", steps), ("plain", short), ("stage", short)):  # alternating
        p = recipe.model_copy(update={"steps": n})
        model = build_model(arch, tok, seed=0)
        with tempfile.TemporaryDirectory() as d:
            t0 = time.perf_counter()
            if which == "stage":
                rows = sft(ex, model, tok, p, Path(d), RunOptions(threads=n_threads))
                tokens = rows[-1]["num_tokens"]
            else:
                data = _tokenize(ex, tok, p.max_length, True)
                tokens = plain_loop(data, model, tok.pad_token_id, n, batch, p.lr, 0)
            dt = time.perf_counter() - t0
        t[which, n] = (dt, tokens)
        log.info("train %s %d steps: %d tokens in %.1f s = %.0f tokens/s", which, n, tokens, dt, tokens / dt)
    res = {w: t[w, steps][1] / t[w, steps][0] for w in ("stage", "plain")}
    # per-step rate without the set-up: the extra tokens of the long run over its extra time
    steady = {w: (t[w, steps][1] - t[w, short][1]) / max(1e-9, t[w, steps][0] - t[w, short][0]) for w in ("stage", "plain")}
    ratio = res["stage"] / res["plain"]
    r2 = steady["stage"] / steady["plain"]
    what = f"train stage (TRL SFTTrainer), arch {arch}, batch {batch}"
    note = f"{n_threads} threads; runs of {steps} and {short} steps, alternating"
    return [Figure("train", f"{what}, {steps} steps end to end (set-up included)", round(res["stage"]), "tokens/s",
                   "plain PyTorch loop", round(res["plain"]), round(ratio, 3), ">= 0.9x", ratio >= 0.9, note),
            Figure("train", f"{what}, steady state (steps {short + 1}-{steps})", round(steady["stage"]), "tokens/s",
                   "plain PyTorch loop", round(steady["plain"]), round(r2, 3), ">= 0.9x", r2 >= 0.9,
                   note + "; rate = extra tokens / extra time of the long run over the short one")]
