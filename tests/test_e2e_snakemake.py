"""End to end through the real Snakemake: the smoke spec runs (the session's shared `smoke_run`), a second
run does nothing, regenerating the report changes only its timestamp, and a job killed midway (SIGKILL)
leaves no manifest and is redone with exactly its dependents. Tests that change files work on a copy."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import SMOKE_SPEC, snakemake

pytestmark = pytest.mark.slow

SPEC = SMOKE_SPEC


def plan_json(wd: Path) -> list[dict]:
    r = subprocess.run([sys.executable, "-m", "repro", "plan", SPEC, "--json"], cwd=wd, capture_output=True, text=True, check=True)
    return json.loads(r.stdout)["jobs"]


def dry_run_counts(wd: Path) -> dict[str, int]:
    """Rule -> number of jobs Snakemake would run now."""
    r = snakemake(wd, "-n")
    assert r.returncode == 0, r.stderr
    out = r.stdout + r.stderr
    if "Nothing to be done" in out:
        return {}
    table = out.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, re.M) if m.group(1) != "total"}


def test_smoke_runs_end_to_end(smoke_run: Path) -> None:
    from repro.records import read_jsonl
    from repro.tasks import get_task

    wd = smoke_run
    assert (wd / "reports/index.html").is_file()
    assert (wd / "reports/smoke.html").is_file()
    jobs = plan_json(wd)
    assert {j["stage"] for j in jobs} == {"generate", "filter", "train", "eval", "report"}
    for j in jobs:
        assert j["state"] == "done", j
        m = json.loads((wd / j["outdir"] / "manifest.json").read_text())
        assert m["id"] == j["id"] and m["config"] == j["config"]
        run = json.loads((wd / j["outdir"] / "run.json").read_text())
        assert {"versions", "git_commit", "started", "ended", "host", "wall_s"} <= set(run)
    (ev,) = [j for j in jobs if j["stage"] == "eval"]  # one job per checkpoint, every benchmark in it
    assert len(ev["config"]["benchmarks"]) == 2
    suite = json.loads((wd / ev["outdir"] / "metrics.json").read_text())["benchmarks"]
    for b in ev["config"]["benchmarks"]:
        metrics = json.loads((wd / ev["outdir"] / b["name"] / "metrics.json").read_text())
        assert metrics == suite[b["name"]] and metrics["n_items"] == b["n"]
        # every sample regraded by the task's own scorer; the accuracy is their mean
        task = get_task(b["task"])
        problems = task.problems(task.Args(**(b["task_args"] or {})), b["split"], b["n"], b["seed"] or 0)
        rows = list(read_jsonl(wd / ev["outdir"] / b["name"] / "samples.jsonl"))
        assert [r["problem_id"] for r in rows] == [p.id for p in problems]
        assert [r["correct"] for r in rows] == [bool(task.score(p, r["output"]).correct) for p, r in zip(problems, rows)]
        assert metrics["accuracy"] == pytest.approx(sum(r["correct"] for r in rows) / len(rows), abs=1e-6)
    assert not list((wd / "results").glob("*/.tmp-*")), "temporary folders left behind"


def test_second_run_does_nothing(smoke_copy: Path) -> None:
    wd = smoke_copy
    assert dry_run_counts(wd) == {}
    r = snakemake(wd)
    assert r.returncode == 0 and "Nothing to be done" in (r.stdout + r.stderr)


@pytest.mark.browser
def test_reports_open_in_chromium(smoke_run: Path) -> None:
    from browser import check_page

    wd = smoke_run
    art = Path(__file__).resolve().parents[1] / "test-artifacts"
    art.mkdir(exist_ok=True)
    for page in ("index.html", "smoke.html"):
        res = check_page(wd / "reports" / page, art / f"e2e-{page}.png")
        assert not res["console_errors"], res["console_errors"]
        assert not res["failed_requests"], res["failed_requests"]
        assert not res["broken_images"], res["broken_images"]
    assert res["n_images"] >= 1


def test_regenerating_report_changes_only_timestamps(smoke_copy: Path) -> None:
    from repro.report.html import strip_timestamp

    wd = smoke_copy
    before = {p: strip_timestamp((wd / "reports" / p).read_text()) for p in ("index.html", "smoke.html")}
    r = subprocess.run([sys.executable, "-m", "repro", "report", SPEC, "--force"], cwd=wd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    after = {p: strip_timestamp((wd / "reports" / p).read_text()) for p in ("index.html", "smoke.html")}
    assert before == after


def test_sigkill_midway_redoes_exactly_that_job(smoke_copy: Path) -> None:
    """Snakemake is SIGKILLed (with its job) while training runs; the next run redoes exactly the train job
    and what depends on it, and nothing upstream."""
    wd = smoke_copy
    jobs = plan_json(wd)
    by_stage = {j["stage"]: j for j in jobs}
    train = by_stage["train"]
    outdir = wd / train["outdir"]
    before = {s: (wd / by_stage[s]["outdir"] / "manifest.json").stat().st_mtime for s in ("generate", "filter")}
    # back to the state before training first ran: the train job and everything downstream not run yet
    for j in jobs:
        if j["stage"] in ("train", "eval", "report"):
            shutil.rmtree(wd / j["outdir"])
    (wd / "reports/index.html").unlink()
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--config", f"specs={SPEC}"]
    proc = subprocess.Popen(cmd, cwd=wd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    tmp_glob = f"{outdir.parent.name}/.tmp-{outdir.name}-*"
    work = wd / "results" / outdir.parent.name / f".partial-{outdir.name}" / "work"  # training writes here
    try:
        while time.time() < deadline:  # midway: the job's resume folder holds its first checkpoint
            if list(work.glob("checkpoints/step-*")):
                break
            assert proc.poll() is None, "run finished before it could be killed"
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (outdir / "manifest.json").exists()
    subprocess.run([sys.executable, "-m", "snakemake", "--unlock", "--config", f"specs={SPEC}"], cwd=wd, capture_output=True)
    n_eval = sum(1 for j in jobs if j["stage"] == "eval")
    counts = dry_run_counts(wd)
    assert counts == {"train": 1, "eval": n_eval, "report": 1, "publish": 1, "all": 1}, counts
    r = snakemake(wd)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (outdir / "manifest.json").exists()
    assert not list((wd / "results").glob(tmp_glob)), "stale temporary folder not cleaned"
    assert not work.parent.exists(), "resume folder not removed after the job completed"
    after = {s: (wd / by_stage[s]["outdir"] / "manifest.json").stat().st_mtime for s in ("generate", "filter")}
    assert before == after, "upstream jobs were redone"
