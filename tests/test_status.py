"""Progress lines and `repro status`: a heartbeat keeps a running job's log fresh; a real generate job is
seen running (holder pid, last progress line) while it runs, and failed (log path, last lines) once killed
or after an error; done and to-do jobs are counted per spec and stage."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from repro.cli import main
from repro.plan import build_plan
from repro.progress import Progress, parse
from repro.status import job_status, log_path, render, status

SPEC = "experiments/smoke.yaml"
BIG = ["base.data.task=modarith", "base.data.task_args={}", "base.data.n=200000"]  # >10 s of generation even on an idle machine: watch, kill


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[tuple[float, str]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append((time.monotonic(), record.getMessage()))


def _capture() -> tuple[logging.Logger, _Lines]:
    lg = logging.getLogger(f"test.progress.{time.monotonic_ns()}")
    lg.setLevel(logging.INFO)
    h = _Lines()
    lg.addHandler(h)
    return lg, h


def test_progress_lines_are_bounded_and_parse() -> None:
    lg, h = _capture()
    with Progress("work", total=100, unit="items", interval=0.2, logger=lg) as p:
        for _ in range(100):
            p.update(1, loss=0.5)
            time.sleep(0.01)
    msgs = [m for _, m in h.lines]
    assert 3 <= len(msgs) <= 10, msgs  # first, every ~0.2 s, last; not one per item
    last = parse(msgs[-1])
    assert last and last["done"] == 100 and last["total"] == 100 and last["pct"] == 100 and last["what"] == "work"
    assert "loss 0.5" in msgs[-1]
    assert parse("no progress here") is None


def test_heartbeat_logs_during_a_slow_step() -> None:
    """One item that takes 1.2 s still gives lines at the interval (0.25 s): the log never goes stale."""
    lg, h = _capture()
    with Progress("slow", total=2, unit="batches", interval=0.25, logger=lg) as p:
        time.sleep(1.2)
        p.update(1)
    times = [t for t, _ in h.lines]
    assert len(times) >= 5
    assert max(b - a for a, b in zip(times, times[1:])) < 0.25 + 0.35
    assert parse(h.lines[-1][1])["done"] == 1  # leaving early logs where it stopped


def test_status_counts_todo_and_done(workdir: Path) -> None:
    plan = build_plan([SPEC])
    st = status(plan)
    assert st["total"]["todo"] == len(plan.jobs) and st["total"]["done"] == 0
    (sp,) = st["specs"]
    assert sp["stages"]["generate"] == {"done": 0, "running": 0, "failed": 0, "todo": 1}
    gen = plan.by_stage("generate")[0]
    assert job_status(gen, plan)["ready"] is True
    assert job_status(plan.by_stage("train")[0], plan)["ready"] is False
    gen.outdir.mkdir(parents=True)
    (gen.outdir / "manifest.json").write_text("{}")
    assert status(plan)["specs"][0]["stages"]["generate"]["done"] == 1
    assert "smoke (experiments/smoke.yaml): 1 done, 0 running, 0 failed" in render(status(plan))


def test_lock_file_holder_is_read(workdir: Path) -> None:
    """A per-job lock (host/pid/start) names the holder; a lock of a dead pid on this host is a failure."""
    import socket

    plan = build_plan([SPEC])
    job = plan.by_stage("train")[0]
    job.outdir.parent.mkdir(parents=True)
    lock = job.outdir.parent / f".lock-{job.dirname}"
    lock.write_text(json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "start": "2026-01-01T00:00:00"}))
    d = job_status(job, plan)
    assert d["state"] == "running" and d["holder"]["pid"] == os.getpid()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    lock.write_text(f"host: {socket.gethostname()}\npid: {dead.pid}\nstart: now\n")
    d = job_status(job, plan)
    assert d["state"] == "failed" and "gone" in d["reason"]
    lock.write_text(json.dumps({"host": "another-node", "pid": 1}))  # another host: liveness from the log's age
    assert job_status(job, plan)["state"] == "failed"  # no log at all
    log_path(job).parent.mkdir(parents=True)
    log_path(job).write_text("PROGRESS train: 3/10 steps (30%) 1.00 steps/s elapsed 0m03s ETA 0m07s\n")
    d = job_status(job, plan)
    assert d["state"] == "running" and d["progress"].startswith("PROGRESS train: 3/10")


def _status_json(capsys: pytest.CaptureFixture[str], *sets: str) -> dict:
    capsys.readouterr()
    assert main(["status", SPEC, *[a for s in sets for a in ("--set", s)], "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _job(st: dict, jid: str) -> dict:
    return next(j for j in st["jobs"] if j["id"] == jid)


@pytest.mark.slow
def test_killed_generate_job_is_running_then_failed(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Acceptance: a generate job is killed in the middle; before that its log's last progress line is no
    older than the interval and status says running (pid, progress); after, failed with its log path."""
    interval = 1.0
    plan = build_plan([SPEC], BIG)
    gen = plan.by_stage("generate")[0]
    env = dict(os.environ, REPRO_PROGRESS_INTERVAL=str(interval), PYTHONPATH=os.pathsep.join(sys.path))
    sets = [a for s in BIG for a in ("--set", s)]
    proc = subprocess.Popen([sys.executable, "-m", "repro", "run", gen.id, "--specs", SPEC, *sets],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        log = log_path(gen)
        deadline = time.time() + 300
        while time.time() < deadline:
            if log.is_file() and log.read_text().count("PROGRESS") >= 3:
                break
            assert proc.poll() is None, "the job ended before it could be watched"
            time.sleep(0.1)
        else:
            pytest.fail("no progress lines in the log within 300 s")
        st = _status_json(capsys, *BIG)
        j = _job(st, gen.id)
        assert j["state"] == "running", j
        assert j["holder"]["pid"] == proc.pid and j["progress_fields"]["total"] == 200000
        assert j["log"] == str(log)
        assert st["specs"][0]["stages"]["generate"]["running"] == 1
        time.sleep(2 * interval)
        last = [ln for ln in log.read_text().splitlines() if "PROGRESS" in ln][-1]
        age = time.time() - log.stat().st_mtime
        assert age <= interval + 0.5, f"last progress line {age:.2f} s old: {last}"  # 0.5 s: a loaded machine
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    j = _job(_status_json(capsys, *BIG), gen.id)
    assert j["state"] == "failed" and j["log"] == str(log) and "PROGRESS" in "".join(j["last_lines"])
    assert "gone" in j["reason"]
    capsys.readouterr()
    assert main(["status", SPEC, *sets]) == 0
    text = capsys.readouterr().out
    assert "failed:" in text and str(log) in text


def test_failed_job_run_outside_snakemake_has_its_log(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A job run outside Snakemake (as DVC runs it) still gets its log file, with the error; status: failed."""
    plan = build_plan([SPEC])
    filt = plan.by_stage("filter")[0]  # its generate input is not done: the run fails
    assert main(["run", filt.id, "--specs", SPEC]) == 1
    log = log_path(filt)
    assert log.is_file() and "inputs not done" in log.read_text()
    j = _job(_status_json(capsys), filt.id)
    assert j["state"] == "failed" and j["log"] == str(log) and "inputs not done" in "".join(j["last_lines"])


def test_fresh_log_without_holder_is_starting_and_an_error_is_a_failure(workdir: Path) -> None:
    """Snakemake opens the log before `repro run` makes its folder: a fresh log with no error is a job
    starting; once the log holds an error (or is older than STARTING_S) it is a failure."""
    from repro.status import STARTING_S

    plan = build_plan([SPEC])
    job = plan.by_stage("eval")[0]
    log = log_path(job)
    log.parent.mkdir(parents=True)
    log.write_text("2026-01-01 00:00:00 INFO repro.status: RUN x host h pid 1\n")
    assert job_status(job, plan)["state"] == "running"
    os.utime(log, (time.time() - STARTING_S - 1,) * 2)
    assert job_status(job, plan)["state"] == "failed"
    log.write_text("Traceback (most recent call last):\nValueError: boom\n")
    d = job_status(job, plan)
    assert d["state"] == "failed" and d["last_lines"][-1] == "ValueError: boom"
