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


def run(steps: int = 30, batch: int = 16, arch: str = "xs", threads: int | None = None, quick: bool = False) -> list[Figure]:
    from repro.models import build_model, build_tokenizer, render_prompt, set_threads
    from repro.training import TrainParams, _tokenize, sft

    if quick:
        steps = 10
    n_threads = set_threads(threads)
    ex = examples(400)
    tok = build_tokenizer([render_prompt(e["prompt"]) + e["completion"] for e in ex], kind="bpe", vocab_size=1024)
    params = TrainParams(max_steps=steps, lr=1e-3, schedule="constant", batch_size=batch, max_length=256, seed=0)
    res = {}
    for rep in range(2):  # alternate, best of two each: the machine is shared
        for which in ("stage", "plain") if rep == 0 else ("plain", "stage"):
            model = build_model(arch, tok, seed=0)
            with tempfile.TemporaryDirectory() as d:
                t0 = time.perf_counter()
                if which == "stage":
                    rows = sft(ex, model, tok, params, Path(d), threads=n_threads)
                    tokens = rows[-1]["num_tokens"]
                else:
                    data = _tokenize(ex, tok, params.max_length, True)
                    tokens = plain_loop(data, model, tok.pad_token_id, steps, batch, params.lr, 0)
                dt = time.perf_counter() - t0
            rate = tokens / dt
            res[which] = max(res.get(which, 0.0), rate)
            log.info("train %s: %d tokens in %.1f s = %.0f tokens/s", which, tokens, dt, rate)
    ratio = res["stage"] / res["plain"]
    return [Figure("train", f"train stage (TRL SFTTrainer), arch {arch}, batch {batch}, {steps} steps",
                   round(res["stage"]), "tokens/s", "plain PyTorch loop", round(res["plain"]), round(ratio, 3),
                   ">= 0.9x", ratio >= 0.9, f"{n_threads} threads; end to end incl. set-up; best of 2 each")]
