"""train: supervised fine-tuning of the student on a filter job's traces (TRL SFTTrainer).

Writes `checkpoints/step-N/` (HF layout: model + tokenizer) at every step the plan lists (0 = before SFT),
`train_log.jsonl` (loss, lr, grad norm per step), `train_summary.json` and `metrics.json` (final loss,
examples, checkpoints). Runs on the job's processes (`repro.launch`: one, or ranks under torchrun /
accelerate) and resumes a killed or preempted run from its saved trainer state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from repro.config import ModelConfig, TrainJob
from repro.stages.filter import load_traces


def load_student(m: ModelConfig, texts: list[str], inputs: dict[str, Path]) -> tuple[Any, Any]:
    """The model before SFT: random init with a tokenizer trained on `texts`, a pretrain job's base, or a
    hub/local model."""
    from repro.models import build_model, build_tokenizer, load_pretrained

    if m.source == "scratch":
        tok = build_tokenizer(texts, kind=m.tokenizer.kind, vocab_size=m.tokenizer.vocab_size,
                              pretokenizer=m.tokenizer.pretokenizer or "gpt2")
        return build_model(m.arch, tok, seed=m.init_seed), tok
    if m.source == "pretrain":
        meta = json.loads((inputs["base"] / "metrics.json").read_text())
        model, tok = load_pretrained(inputs["base"] / meta["model_path"])
    else:
        from repro.safety import remote_code_allowed

        model, tok = load_pretrained(m.id or "", trust_remote_code=remote_code_allowed(m))
    model.train()
    return model, tok


def train_here(cfg: TrainJob, inputs: dict[str, Path], work: Path, runtime: dict[str, Any]) -> None:
    """One process's (one rank's) part of the job: load data and student, train into `work`."""
    from repro.errors import ReproError
    from repro.launch import rank_options
    from repro.models import render_prompt, set_threads
    from repro.training import sft

    set_threads(runtime.get("threads"))
    traces = load_traces(inputs["data"])
    if not traces:
        raise ReproError(f"no training examples: every trace was filtered out in {inputs['data']}")
    examples = [{"prompt": t.prompt, "completion": t.completion} for t in traces]
    texts = [render_prompt(e["prompt"]) + e["completion"] for e in examples]
    model, tok = load_student(cfg.model, texts, inputs)
    sft(examples, model, tok, cfg.train, work, rank_options("train", runtime))


def run(cfg: TrainJob, inputs: dict[str, Path], out: Path, runtime: dict[str, Any]) -> dict[str, Any]:
    from repro.launch import run_training

    run_training("train", cfg, inputs, out, runtime)
    t = cfg.train
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if r.get("loss") is not None]
    tail = losses[-max(1, len(losses) // 10):]
    n_examples = len(load_traces(inputs["data"]))
    metrics = {
        "final_loss": round(sum(tail) / len(tail), 6) if tail else None,
        "steps": t.steps,
        "n_examples": n_examples,
        "checkpoints": sorted(set(t.checkpoints) | {t.steps}),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")
    return metrics


def plan(cp: Any) -> None:
    """Planner: the condition's training run (shared by the conditions that differ only in length)."""
    from repro.plan import arch_name

    c = cp.cond
    inputs = {"data": cp.ids["filter"]}
    if "pretrain" in cp.ids:
        inputs["base"] = cp.ids["pretrain"]
    total, ckpts = cp.run
    cp.ids["train"] = cp.cached(("train", id(c.model), cp.train_key, total, tuple(ckpts), tuple(inputs.values())), lambda: (
        "train", f"sft-{arch_name(c)}-{c.data.teacher.name}",
        {"model": cp.b.dump(c.model), "train": {**cp.b.dump(c.train), "steps": total, "checkpoints": ckpts}},
        inputs, cp.res("train")))
