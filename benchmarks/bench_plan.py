"""Planning speed: a 10,000-condition grid planned in-process, and `snakemake -n` over a ~2,000-job plan
with our Snakefile against a hand-written Snakefile listing the same jobs (each run twice, best taken).

    python -m benchmarks --only plan
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.common import Figure

REPO = Path(__file__).resolve().parents[1]


def grid_spec(n_conditions: int, path: Path, evals: bool = True) -> None:
    """A 4-axis grid of n_conditions = k^4 or k^3 cells (10 x 10 x 10 x 10 for 10,000; 10 x 10 x 10 x 1
    for 1,000)."""
    k4, k3 = round(n_conditions ** 0.25), round(n_conditions ** (1 / 3))
    k, last = (k4, k4) if k4 ** 4 == n_conditions else (k3, 1)
    base = {
        "data": {"task": "countdown", "n": 50, "teacher": {"name": "convergent"}},
        "filters": [{"name": "verified"}],
        "model": {"source": "scratch", "arch": "xs"},
        "train": {"steps": 100, "schedule": "cosine"},
        "eval": {"benchmarks": [{"name": "id", "task": "countdown", "split": "id", "n": 10}]} if evals else {},
    }
    axes = {
        "data_source": {f"t{i}": {"data.teacher.name": "convergent", "data.seed": i} for i in range(k)},
        "data_quality": {f"q{i}": {"filters": [{"name": "verified"}, {"name": "subsample", "args": {"n": 10 + i}}]} for i in range(k)},
        "model_size": {f"m{i}": {"model.init_seed": i} for i in range(k)},
        "training_length": {f"l{i}": {"train.steps": 100 + 10 * i} for i in range(last)},
    }
    path.write_text(yaml.safe_dump({"name": "big", "base": base, "axes": axes}))


def plan_figure(n: int) -> Figure:
    from repro.plan import build_plan

    with tempfile.TemporaryDirectory() as d:
        f = Path(d) / "big.yaml"
        grid_spec(n, f)
        build_plan([str(f)])  # warm imports and registries
        best = float("inf")
        for _ in range(3):
            t0 = time.perf_counter()
            plan = build_plan([str(f)])
            best = min(best, time.perf_counter() - t0)
    n_cond = len(plan.specs[0].conditions)
    return Figure("plan", f"plan {n_cond} conditions -> {len(plan.jobs)} jobs (load, validate, expand, plan)",
                  round(best, 3), "s", target="<= 2 s", met=best <= 2, note="in-process after imports; best of 3")


HAND = '''# hand-written: the same jobs, listed explicitly
import json
JOBS = json.load(open("jobs.json"))
OUT = {j["stage"]: {} for j in JOBS}
for j in JOBS:
    OUT[j["stage"]][j["dir"]] = j
BY_ID = {j["id"]: j for j in JOBS}
rule all:
    input: [f"results/{j['stage']}/{j['dir']}/manifest.json" for j in JOBS if j["stage"] == "report"]
'''
HAND_RULE = '''
rule {stage}:
    output: "results/{stage}/{{job}}/manifest.json"
    input: lambda wc: [f"results/{{BY_ID[d]['stage']}}/{{BY_ID[d]['dir']}}/manifest.json" for d in OUT["{stage}"][wc.job]["deps"]]
    log: "logs/{stage}/{{job}}.log"
    threads: 1
    shell: "repro run {{wildcards.job}} > {{log}} 2>&1"
'''


def snakemake_figure(n_jobs: int) -> Figure:
    from repro.plan import build_plan

    with tempfile.TemporaryDirectory() as d:
        wd = Path(d)
        for name in ("Snakefile", "params.yaml"):
            shutil.copy2(REPO / name, wd / name)
        shutil.copytree(REPO / "profiles", wd / "profiles")
        spec = wd / "big.yaml"
        grid_spec(n_jobs // 2, spec)  # each condition adds a train and an eval job; data jobs are shared
        plan = build_plan([str(spec)])
        jobs = [{"id": j.id, "stage": j.stage, "dir": j.dirname, "deps": j.deps} for j in plan.jobs.values()]
        (wd / "jobs.json").write_text(json.dumps(jobs))
        stages = sorted({j["stage"] for j in jobs})
        (wd / "Hand.smk").write_text(HAND + "".join(HAND_RULE.format(stage=s) for s in stages))

        def timed(args: list[str]) -> float:
            best = float("inf")
            for _ in range(2):
                t0 = time.perf_counter()
                r = subprocess.run(args, cwd=wd, capture_output=True, text=True)
                best = min(best, time.perf_counter() - t0)
                if r.returncode != 0:
                    raise RuntimeError(f"failed: {' '.join(args)}\n{r.stderr[-2000:]}")
            return best

        hand = timed(["snakemake", "-n", "--quiet", "--cores", "1", "-s", "Hand.smk", "--workflow-profile", "none"])
        ours = timed(["snakemake", "-n", "--quiet", "--cores", "1", "--config", f"specs={spec}"])
    r = ours / hand
    return Figure("plan", f"snakemake -n over {len(jobs)} jobs, our Snakefile", round(ours, 2), "s",
                  "hand-written Snakefile, same jobs", round(hand, 2), round(r, 3), "<= 1.3x", r <= 1.3,
                  "best of 2 each; ratio = ours / hand-written (lower is better)")


def run(quick: bool = False, threads: int | None = None) -> list[Figure]:
    return [plan_figure(1000 if quick else 10_000), snakemake_figure(400 if quick else 2_000)]
