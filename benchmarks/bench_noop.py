"""No-op reruns: in a workspace where every job is done, how long `snakemake`, `dvc repro` and `repro plan`
take to find nothing to do (best of 2 each).

Without `--workspace`, the runner makes one: the smoke spec (shrunk to one short run and one small eval)
as the workspace's params.yaml experiments, run once with Snakemake; DVC then adopts the finished jobs
(`repro dvc --adopt`) so `dvc repro` has nothing to do. Alongside, on the real default experiments
(params.yaml of this checkout, results not needed): `repro plan` and `snakemake -n`, which builds the
same job DAG a no-op run builds. `--main-job` (see bench_main) measures the true no-op figures of the
default experiments right after running them.

    python -m benchmarks --only noop
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from benchmarks.common import Figure

REPO = Path(__file__).resolve().parents[1]
# The smoke spec shrunk to one short run and one small eval (also what tests/test_dvc.py runs).
SMALL = [
    "base.data.n=24",
    "base.train.steps=10",
    "base.train.checkpoints=[]",
    "base.eval.steps=null",
    "base.eval.benchmarks=[{name: countdown-id, task: countdown, split: id, n: 8, role: id}]",
    "base.eval.sampling.max_new_tokens=32",
]


def env() -> dict[str, str]:
    e = dict(os.environ, DVC_NO_ANALYTICS="1")
    e["PATH"] = os.path.dirname(sys.executable) + os.pathsep + e.get("PATH", "")
    e.pop("REPRO_RESULTS", None)
    e.pop("REPRO_REPORTS", None)
    return e


def sh(wd: Path, *cmd: str, timeout: int = 1800) -> subprocess.CompletedProcess[str]:
    r = subprocess.run(list(cmd), cwd=wd, capture_output=True, text=True, env=env(), timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed in {wd}:\n{r.stdout[-1500:]}\n{r.stderr[-1500:]}")
    return r


def best_of(wd: Path, cmd: list[str], n: int = 2) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        sh(wd, *cmd)
        best = min(best, time.perf_counter() - t0)
    return best


def copy_workflow(dst: Path) -> Path:
    for name in ("Snakefile", "params.yaml", ".gitignore", ".dvcignore"):
        shutil.copy2(REPO / name, dst / name)
    for d in ("experiments", "profiles", "data", ".dvc"):
        if (REPO / d).exists():
            shutil.copytree(REPO / d, dst / d, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("cache", "tmp", "config.local"))
    return dst


def adopt_into_dvc(wd: Path) -> None:
    """git + DVC in `wd`, dvc.yaml rendered, every finished job adopted (no rerun)."""
    if not (wd / ".git").exists():
        sh(wd, "git", "init", "-q")
    if not (wd / ".dvc" / "config").exists():
        sh(wd, "dvc", "init", "-q", "--force")
    sh(wd, sys.executable, "-m", "repro", "dvc")
    sh(wd, sys.executable, "-m", "repro", "dvc", "--adopt")


def noop_figures(wd: Path, label: str, note: str = "") -> list[Figure]:
    """The three no-op figures in a finished workspace `wd` (params.yaml's experiments all done)."""
    snake = best_of(wd, ["snakemake", "--cores", "2"])
    adopt_into_dvc(wd)
    r = sh(wd, "dvc", "status")
    if "up to date" not in r.stdout + r.stderr:
        raise RuntimeError(f"dvc status is not clean after adoption:\n{r.stdout[-1500:]}")
    dvc = best_of(wd, ["dvc", "repro"])
    plan = best_of(wd, [sys.executable, "-m", "repro", "plan", "--summary"])
    return [
        Figure("noop", f"{label}: snakemake --cores 2, nothing to do", round(snake, 2), "s", target="<= 5 s", met=snake <= 5, note=note),
        Figure("noop", f"{label}: dvc repro, nothing to do", round(dvc, 2), "s", target="<= 10 s", met=dvc <= 10, note=note),
        Figure("noop", f"{label}: repro plan (process start included)", round(plan, 2), "s", target="<= 1 s", met=plan <= 1, note=note),
    ]


def default_dag_figures() -> list[Figure]:
    """On the default experiments without results: `repro plan` and `snakemake -n` (the DAG a no-op builds)."""
    with tempfile.TemporaryDirectory() as d:
        wd = copy_workflow(Path(d))
        plan = best_of(wd, [sys.executable, "-m", "repro", "plan", "--summary"])
        dag = best_of(wd, ["snakemake", "-n", "--quiet", "--cores", "2"])
    return [
        Figure("noop", "default experiments: repro plan (process start included)", round(plan, 2), "s",
               target="<= 1 s", met=plan <= 1, note="no results needed: same work as on a finished workspace"),
        Figure("noop", "default experiments: snakemake -n (DAG of every job)", round(dag, 2), "s", target="<= 5 s",
               met=dag <= 5, note="proxy for the no-op rerun: the same DAG, nothing checked as done"),
    ]


def run(quick: bool = False, threads: int | None = None, workspace: str | None = None) -> list[Figure]:
    out = default_dag_figures()
    if workspace:
        return out + noop_figures(Path(workspace), f"workspace {workspace}")
    with tempfile.TemporaryDirectory() as d:
        wd = copy_workflow(Path(d))
        (wd / "params.yaml").write_text(yaml.safe_dump({"specs": ["experiments/smoke.yaml"], "set": SMALL}))
        t0 = time.perf_counter()
        sh(wd, "snakemake", "--cores", "2")
        first = time.perf_counter() - t0
        out += noop_figures(wd, "smoke (shrunk)", f"first run {first:.0f} s")
    return out
