"""pretrain: a tiny base model made from scratch on an answer-only task mixture (with safety refusals).

Stands in for base-model capability in the miniatures: sizes are ablated like the real studies ablate
Qwen3-1.7B...14B. Writes `model/` (model + tokenizer), `train_log.jsonl` and `metrics.json`.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from repro.config import PretrainJob
from repro.identity import stable_seed
from repro.tasks import get_task


def mixture_docs(cfg: PretrainJob) -> list[dict[str, str]]:
    """Answer-only {prompt, completion} documents of every mixture task, shuffled with the seed.

    Every item draws its problems with `pretrain.seed`, the seed that also assigns items to splits, so the
    train split seen here is disjoint from the id/ood splits of benchmarks drawn with the same seed."""
    docs: list[dict[str, str]] = []
    for item in cfg.pretrain.mixture:
        task = get_task(item.task)
        # One seed for every item: a task's split buckets depend on the seed, so this keeps the mixture's
        # train items out of the id/ood items that benchmarks with the same seed evaluate.
        probs = task.problems(task.Args(**item.task_args), item.split, item.n, cfg.pretrain.seed)
        docs.extend({"prompt": p.prompt, "completion": task.answer_only(p)} for p in probs)  # type: ignore[attr-defined]
    random.Random(stable_seed("pretrain", cfg.pretrain.seed)).shuffle(docs)
    return docs


def train_here(cfg: PretrainJob, inputs: dict[str, Path], work: Path, runtime: dict[str, Any]) -> None:
    """One process's (one rank's) part of the job: build tokenizer and model, pretrain into `work`, save
    `work/model/` (rank 0)."""
    from repro.launch import rank_options
    from repro.models import build_model, build_tokenizer, n_params, render_prompt, set_threads
    from repro.training import pretrain, save_checkpoint, world

    set_threads(runtime.get("threads"))
    docs = mixture_docs(cfg)
    tok = build_tokenizer([render_prompt(d["prompt"]) + d["completion"] for d in docs],
                          kind=cfg.tokenizer.kind, vocab_size=cfg.tokenizer.vocab_size,
                          pretokenizer=cfg.tokenizer.pretokenizer or "gpt2")
    model = build_model(cfg.arch, tok, seed=cfg.init_seed)
    pretrain(docs, model, tok, cfg.pretrain, work, rank_options("pretrain", runtime))
    if world()[0] == 0:
        model = getattr(model, "module", model)
        save_checkpoint(model, tok, work / "model", {"step": cfg.pretrain.steps, "stage": "pretrain"})
        (work / "pretrain_info.json").write_text(json.dumps({"n_docs": len(docs), "params": n_params(model)}))


def run(cfg: PretrainJob, inputs: dict[str, Path], out: Path, runtime: dict[str, Any]) -> dict[str, Any]:
    from repro.launch import run_training

    run_training("pretrain", cfg, inputs, out, runtime)
    info = json.loads((out / "pretrain_info.json").read_text())
    (out / "pretrain_info.json").unlink()
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if r.get("loss") is not None]
    tail = losses[-max(1, len(losses) // 10):]
    p = cfg.pretrain
    metrics = {"final_loss": round(sum(tail) / len(tail), 6) if tail else None, "steps": p.steps,
               "n_docs": info["n_docs"], "params": info["params"], "model_path": "model"}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


def plan(cp: Any) -> None:
    """Planner: the tiny base model of a condition whose model source is `pretrain`."""
    from repro.plan import arch_name

    m = cp.cond.model
    if m.source != "pretrain" or m.pretrain is None:
        return
    cp.ids["pretrain"] = cp.cached(("pretrain", id(m)), lambda: (
        "pretrain", f"base-{arch_name(cp.cond)}",
        PretrainJob(arch=m.arch, tokenizer=m.tokenizer, pretrain=m.pretrain, init_seed=m.init_seed).model_dump(mode="json"),
        {}, cp.res("pretrain")))
