"""Generation throughput: the eval stage (load the checkpoint, generate for every prompt of a benchmark in
length-sorted batches, score) against `model.generate` called directly on the same prompts in batches of
the same size (load included), and against one prompt at a time. The checkpoint is a randomly initialised
tiny model, so every prompt runs to the token limit (the same work for every method).

    python -m benchmarks --only generate
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

from benchmarks.common import Figure, examples

log = logging.getLogger(__name__)


def direct(ckpt: Path, prompts: list[str], batch: int, max_new: int) -> float:
    """Seconds for batched, left-padded greedy `model.generate` over `prompts` (model load included)."""
    import torch

    from repro.models import load_pretrained, render_prompt

    t0 = time.perf_counter()
    model, tok = load_pretrained(ckpt)
    model.eval()
    ids = [tok(text=render_prompt(p))["input_ids"] for p in prompts]
    with torch.no_grad():
        for i in range(0, len(ids), batch):
            b = ids[i : i + batch]
            w = max(map(len, b))
            x = torch.tensor([[tok.pad_token_id] * (w - len(s)) + s for s in b])
            m = torch.tensor([[0] * (w - len(s)) + [1] * len(s) for s in b])
            out = model.generate(input_ids=x, attention_mask=m, max_new_tokens=max_new, do_sample=False,
                                 pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id)
            tok.batch_decode(out[:, w:], skip_special_tokens=True)
    return time.perf_counter() - t0


def one_at_a_time(ckpt: Path, prompts: list[str], max_new: int) -> float:
    """Seconds for `model.generate` on each prompt alone (model load included)."""
    return direct(ckpt, prompts, 1, max_new)


def run(n: int = 128, batch: int = 32, max_new: int = 64, arch: str = "s", threads: int | None = None,
        quick: bool = False) -> list[Figure]:
    from repro.config import BenchmarkConfig, EvalJob, SamplingConfig
    from repro.models import build_model, build_tokenizer, render_prompt, set_threads
    from repro.stages import eval as eval_stage
    from repro.training import save_checkpoint

    if quick:
        n, max_new = 32, 16
    n_threads = set_threads(threads)
    ex = examples(300)
    tok = build_tokenizer([render_prompt(e["prompt"]) + e["completion"] for e in ex], kind="bpe", vocab_size=1024)
    model = build_model(arch, tok, seed=0)
    cfg = EvalJob(benchmarks=[BenchmarkConfig(name="b", task="modarith", split="id", n=n, seed=1)],
                  sampling=SamplingConfig(max_new_tokens=max_new), step=0, batch_size=batch)
    prompts = [p.prompt for p in eval_stage.load_problems(cfg.benchmarks[0])]
    k = max(4, n // 8)  # one-at-a-time on a subset, scaled to n
    res: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        save_checkpoint(model, tok, eval_stage.checkpoint_path(root / "model", 0), {"step": 0})
        direct(eval_stage.checkpoint_path(root / "model", 0), prompts[:2], batch, 2)  # warm-up: lazy imports
        for rep in range(3):
            for which in ("stage", "direct") if rep % 2 == 0 else ("direct", "stage"):
                t0 = time.perf_counter()
                if which == "stage":
                    out = root / f"out{rep}"
                    out.mkdir()
                    eval_stage.run(cfg, {"model": root / "model"}, out, {"threads": n_threads})
                    dt = time.perf_counter() - t0
                else:
                    dt = direct(eval_stage.checkpoint_path(root / "model", 0), prompts, batch, max_new)
                res[which] = max(res.get(which, 0.0), n / dt)
                log.info("generate %s: %d prompts in %.1f s", which, n, dt)
        dt = one_at_a_time(eval_stage.checkpoint_path(root / "model", 0), prompts[:k], max_new)
        res["single"] = k / dt
    r1, r2 = res["stage"] / res["direct"], res["stage"] / res["single"]
    what = f"eval stage, {n} prompts x {max_new} new tokens, arch {arch}, batch {batch}"
    note = f"{n_threads} threads; load and scoring included; best of 3, alternating"
    return [
        Figure("generate", what, round(res["stage"], 2), "prompts/s", "direct batched model.generate",
               round(res["direct"], 2), round(r1, 3), ">= 0.9x", r1 >= 0.9, note),
        Figure("generate", what, round(res["stage"], 2), "prompts/s", f"one prompt at a time ({k} prompts, scaled)",
               round(res["single"], 2), round(r2, 2), ">= 8x", r2 >= 8, note),
    ]
