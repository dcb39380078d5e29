"""End to end through the real Snakemake: the smoke spec runs, a second run does nothing, and a job
killed midway (SIGKILL) leaves no manifest and is redone with exactly its dependents."""

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

from conftest import copy_workflow

pytestmark = pytest.mark.slow

SPEC = "experiments/smoke.yaml"


def snakemake(wd: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--config", f"specs={SPEC}", *args]
    return subprocess.run(cmd, cwd=wd, capture_output=True, text=True, timeout=timeout)


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


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    wd = copy_workflow(tmp_path_factory.mktemp("smoke"))
    t0 = time.time()
    r = snakemake(wd)
    wall = time.time() - t0
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return wd, wall


def test_smoke_runs_end_to_end(smoke_run: tuple[Path, float]) -> None:
    wd, wall = smoke_run
    print(f"smoke through snakemake: {wall:.1f} s")
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
        assert metrics == suite[b["name"]]
        assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["n_items"] == b["n"]
        assert len((wd / ev["outdir"] / b["name"] / "samples.jsonl").read_text().splitlines()) == b["n"]
    assert not list((wd / "results").glob("*/.tmp-*")), "temporary folders left behind"


def test_second_run_does_nothing(smoke_run: tuple[Path, float]) -> None:
    wd, _ = smoke_run
    assert dry_run_counts(wd) == {}
    r = snakemake(wd)
    assert r.returncode == 0 and "Nothing to be done" in (r.stdout + r.stderr)


@pytest.mark.browser
def test_reports_open_in_chromium(smoke_run: tuple[Path, float]) -> None:
    from browser import check_page

    wd, _ = smoke_run
    art = Path(__file__).resolve().parents[1] / "test-artifacts"
    art.mkdir(exist_ok=True)
    for page in ("index.html", "smoke.html"):
        res = check_page(wd / "reports" / page, art / f"e2e-{page}.png")
        assert not res["console_errors"], res["console_errors"]
        assert not res["failed_requests"], res["failed_requests"]
        assert not res["broken_images"], res["broken_images"]
    assert res["n_images"] >= 1


def test_regenerating_report_changes_only_timestamps(smoke_run: tuple[Path, float]) -> None:
    from repro.report.html import strip_timestamp

    wd, _ = smoke_run
    before = {p: strip_timestamp((wd / "reports" / p).read_text()) for p in ("index.html", "smoke.html")}
    t0 = time.time()
    r = subprocess.run([sys.executable, "-m", "repro", "report", SPEC, "--force"], cwd=wd, capture_output=True, text=True)
    wall = time.time() - t0
    assert r.returncode == 0, r.stderr
    print(f"report regeneration: {wall:.1f} s")
    assert wall <= 30
    after = {p: strip_timestamp((wd / "reports" / p).read_text()) for p in ("index.html", "smoke.html")}
    assert before == after


def test_sigkill_midway_redoes_exactly_that_job(smoke_run: tuple[Path, float]) -> None:
    """Snakemake is SIGKILLed (with its job) while training runs; the next run redoes exactly the train job
    and what depends on it, and nothing upstream."""
    wd, _ = smoke_run
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
