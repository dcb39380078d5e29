"""The benchmark runner: `python -m benchmarks` prints a table and writes JSON with each figure beside its
alternative; the cache group's counts follow the plan (fast); the grading group meets its deadline (slow)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO


def _run(tmp_path: Path, *args: str) -> tuple[str, dict]:
    out = tmp_path / "b.json"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "benchmarks", *args, "--json", str(out)], cwd=REPO, env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout, json.loads(out.read_text())


def test_cache_group_table_and_json(tmp_path: Path) -> None:
    from benchmarks.bench_cache import counts
    from repro.plan import build_plan

    text, rec = _run(tmp_path, "--only", "cache")
    figs = rec["figures"]
    assert [f["group"] for f in figs] == ["cache"] * 3 and not rec["errors"]
    assert rec["cpus"] == os.cpu_count() and len(rec["load_before"]) == 3
    for f in figs:
        assert f["alt"] == "naive per-condition pipeline" and f["ratio"] == round(f["value"] / f["alt_value"], 3)
        assert f["name"].split(":")[0] in text
    b = counts(str(REPO / "experiments/mini_b.yaml"))
    plan = build_plan([str(REPO / "experiments/mini_b.yaml")])
    assert b["jobs"] == len(plan.specs[0].job_ids) < b["naive_jobs"]
    assert b["train_steps"] < b["naive_train_steps"]  # lengths share one run


def test_unknown_group_is_refused(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "nope"], cwd=REPO, capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=f"{REPO}{os.pathsep}{REPO / 'src'}"))
    assert r.returncode == 2 and "unknown group" in r.stderr


@pytest.mark.slow
def test_grading_group_meets_deadline(tmp_path: Path) -> None:
    _, rec = _run(tmp_path, "--only", "grading", "--quick")
    rate, worst = rec["figures"]
    assert rate["value"] > 0 and worst["met"] is True and not worst["extra"].get("unexpected")


@pytest.mark.slow
def test_train_group_runs_the_train_stage(tmp_path: Path) -> None:
    """The train comparison runs on the current training API (it once imported a removed name unnoticed)."""
    _, rec = _run(tmp_path, "--only", "train", "--quick")
    assert not rec["errors"] and [f["group"] for f in rec["figures"]] == ["train", "train"]
    assert all(f["value"] > 0 and f["alt_value"] > 0 for f in rec["figures"])
