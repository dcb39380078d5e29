"""The cache's saving: jobs the plan runs for a spec against the jobs a naive per-condition pipeline would
run (every condition its own generate, reference, filter, pretrain, training run of its own length, one
eval job per benchmark and checkpoint, its analyses; one report), and the training steps of each.

    python -m benchmarks --only cache
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.common import Figure

REPO = Path(__file__).resolve().parents[1]
SPECS = ("experiments/mini_a.yaml", "experiments/mini_b.yaml", "experiments/mini_c.yaml")


def counts(spec: str) -> dict[str, int]:
    from repro.plan import build_plan

    plan = build_plan([spec])
    sp = plan.specs[0]
    rows = plan.jobs[sp.report_id].config["conditions"]
    naive = 1  # the report
    naive_steps = 0
    for r in rows:
        naive += 2 + bool(r.get("reference")) + bool(r.get("pretrain")) + 1  # generate, filter, (ref), (pretrain), train
        naive += len(r["evals"]) + len(r["analyses"])
        naive_steps += r["steps"]
    ours_steps = sum(plan.jobs[j].config["train"]["steps"] for j in sp.job_ids if plan.jobs[j].stage == "train")
    return {"conditions": len(rows), "jobs": len(sp.job_ids), "naive_jobs": naive, "train_steps": ours_steps,
            "naive_train_steps": naive_steps}


def run(quick: bool = False, threads: int | None = None) -> list[Figure]:
    out = []
    for spec in SPECS:
        c = counts(str(REPO / spec))
        name = Path(spec).stem
        out.append(Figure("cache", f"{name}: jobs run ({c['conditions']} conditions)", c["jobs"], "jobs",
                          "naive per-condition pipeline", c["naive_jobs"], round(c["jobs"] / c["naive_jobs"], 3),
                          note=f"training steps {c['train_steps']} vs {c['naive_train_steps']} naive "
                               f"({c['train_steps'] / max(1, c['naive_train_steps']):.2f}x)", extra=c))
    return out
