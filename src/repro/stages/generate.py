"""generate: a task's problems, solved by a teacher into traces.

Programmatic teachers write one step-tagged trace per problem (`Teacher.write`); batch teachers — an LLM
behind a generation backend ("llm"), ready-made traces from a dataset ("dataset") — answer the whole pool
at once (`write_all`), may give several samples per problem, and record how they made them.

Writes `problems.jsonl` (every problem), `traces.jsonl`, `stats.json` and, for batch teachers,
`generation.json` (backend, version, args without secrets, model revision, requests, generated tokens).
Programmatic teachers are deterministic (same config, byte-identical files); an LLM teacher is as
deterministic as its backend, and a killed job resumes from the answers kept in `runtime["partial"]`.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
from pathlib import Path
from typing import Any

from repro.config import GenerateJob
from repro.identity import stable_seed
from repro.progress import Progress
from repro.records import write_jsonl
from repro.tasks import get_task
from repro.teachers import get_teacher

log = logging.getLogger(__name__)


def run(cfg: GenerateJob, inputs: dict[str, Path], out: Path, runtime: dict[str, Any]) -> dict[str, Any]:
    task = get_task(cfg.task)
    problems = task.problems(task.Args(**cfg.task_args), "train", cfg.n, cfg.seed)
    teacher = get_teacher(cfg.teacher.name)
    targs = teacher.Args(**cfg.teacher.args)
    stats: dict[str, Any] = {"problems": len(problems)}
    if hasattr(teacher, "write_all"):
        rt = dict(runtime)
        own_partial = not rt.get("partial")
        rt["partial"] = Path(rt.get("partial") or out / ".partial")
        res = teacher.write_all(problems, targs, rt, cfg.task_args)
        problems = res.problems if res.problems is not None else problems
        traces = res.traces
        (out / "generation.json").write_text(json.dumps(res.record, indent=2, sort_keys=True) + "\n")
        if own_partial:
            shutil.rmtree(rt["partial"], ignore_errors=True)
        stats["problems"] = len(problems)
        if any("correct" in t.meta for t in traces):
            correct = {t.problem_id for t in traces if t.meta.get("correct")}
            stats.update(correct_samples=sum(bool(t.meta.get("correct")) for t in traces),
                         problems_with_a_correct_sample=len(correct))
        stats["unsolved"] = len(problems) - len({t.problem_id for t in traces})
    else:
        rng = random.Random(stable_seed("teacher", cfg.teacher.name, cfg.seed))
        traces = []
        with Progress(f"generate {cfg.teacher.name}", total=len(problems), unit="problems") as prog:
            for p in problems:
                t = teacher.write(p, targs, rng)
                if t is not None:
                    traces.append(t)
                prog.update(1)
        stats["unsolved"] = len(problems) - len(traces)
    stats["traces"] = len(traces)
    write_jsonl(out / "problems.jsonl", problems)
    write_jsonl(out / "traces.jsonl", traces)
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
