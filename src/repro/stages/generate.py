"""generate: seeded problems of a task, solved by a programmatic teacher into step-tagged traces.

Writes `problems.jsonl` (every problem), `traces.jsonl` (one trace per solved problem) and `stats.json`.
Deterministic: the same config gives byte-identical files.
"""

from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any

from tqdm import tqdm

from repro.config import GenerateJob
from repro.identity import stable_seed
from repro.records import write_jsonl
from repro.tasks import get_task
from repro.teachers import get_teacher

log = logging.getLogger(__name__)


def run(cfg: GenerateJob, inputs: dict[str, Path], out: Path, runtime: dict[str, Any]) -> dict[str, Any]:
    task = get_task(cfg.task)
    problems = task.problems(task.Args(**cfg.task_args), "train", cfg.n, cfg.seed)
    teacher = get_teacher(cfg.teacher.name)
    targs = teacher.Args(**cfg.teacher.args)
    rng = random.Random(stable_seed("teacher", cfg.teacher.name, cfg.seed))
    traces = []
    for p in tqdm(problems, desc=f"generate {cfg.teacher.name}", mininterval=2, disable=None):
        t = teacher.write(p, targs, rng)
        if t is not None:
            traces.append(t)
    write_jsonl(out / "problems.jsonl", problems)
    write_jsonl(out / "traces.jsonl", traces)
    stats = {"problems": len(problems), "traces": len(traces), "unsolved": len(problems) - len(traces)}
    (out / "stats.json").write_text(json.dumps(stats, indent=2, sort_keys=True) + "\n")
    log.info("generated %d traces for %d problems", len(traces), len(problems))
    return stats


def plan(cp: Any) -> None:
    """Planner: the condition's generate job (and its reference teacher's, on the same problems)."""
    d = cp.cond.data

    def job(teacher: Any) -> Any:
        cfg = GenerateJob(task=d.task, task_args=d.task_args, n=d.n, seed=d.seed, teacher=teacher)
        return "generate", f"{d.task}-{teacher.name}", cfg.model_dump(mode="json"), {}, cp.res("generate")

    cp.ids["generate"] = cp.cached(("generate", id(d)), lambda: job(d.teacher))
    if d.reference_teacher:
        cp.ids["reference"] = cp.cached(("reference", id(d)), lambda: job(d.reference_teacher))
