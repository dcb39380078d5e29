"""One writer per job (repro.locks) and the runner's crash and concurrency rules: a lock names its holder,
stale locks (dead pid, expired heartbeat, reused pid) are taken over, concurrent takers never overlap, a
done job is left untouched, a manifest an engine deleted is restored, partial progress survives a failure."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from repro import paths
from repro.errors import ReproError
from repro.locks import JobLock, process_start

SPEC = "experiments/smoke.yaml"


def _write_lock(path: Path, host: str, pid: int, proc_start: str | None = None, age_s: float = 0.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"host": host, "pid": pid, "started": "2026-01-01T00:00:00+0000",
                                "token": "feedface", "proc_start": proc_start}))
    t = time.time() - age_s
    os.utime(path, (t, t))


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_second_taker_waits_then_stops_naming_the_holder(tmp_path: Path) -> None:
    path = tmp_path / ".lock-job"
    with JobLock(path, what="job x"):
        holder = json.loads(path.read_text())
        assert holder["host"] == socket.gethostname() and holder["pid"] == os.getpid()
        t0 = time.monotonic()
        with pytest.raises(ReproError) as e:
            JobLock(path, wait_s=0.5, poll_s=0.1, what="job x").acquire()
        assert time.monotonic() - t0 >= 0.5
        msg = str(e.value)
        assert f"host {socket.gethostname()}" in msg and f"pid {os.getpid()}" in msg and "since" in msg
        assert "\n" not in msg
    assert not path.exists(), "released lock file left behind"


def test_lock_of_dead_process_is_taken_over(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / ".lock-job"
    _write_lock(path, socket.gethostname(), _dead_pid())
    with JobLock(path, wait_s=0, what="job x") as lock:
        assert json.loads(path.read_text())["token"] == lock.holder.token
    assert "taking over a stale lock" in caplog.text and "is dead" in caplog.text


def test_reused_pid_counts_as_dead(tmp_path: Path) -> None:
    """Our own (live) pid, but recorded with another process start time: the pid was reused."""
    path = tmp_path / ".lock-job"
    _write_lock(path, socket.gethostname(), os.getpid(), proc_start="1")
    assert process_start(os.getpid()) not in (None, "1")
    with JobLock(path, wait_s=0):
        pass


def test_other_host_live_while_heartbeat_fresh_stale_after_lease(tmp_path: Path) -> None:
    path = tmp_path / ".lock-job"
    _write_lock(path, "some-other-node", 1, age_s=5)
    with pytest.raises(ReproError, match="host some-other-node, pid 1"):
        JobLock(path, wait_s=0.2, poll_s=0.05, lease_s=600).acquire()
    _write_lock(path, "some-other-node", 1, age_s=700)
    with JobLock(path, wait_s=0, lease_s=600) as lock:
        assert lock.owned()


def test_heartbeat_keeps_the_lock_fresh(tmp_path: Path) -> None:
    path = tmp_path / ".lock-job"
    with JobLock(path, lease_s=600, heartbeat_s=0.1):
        os.utime(path, (time.time() - 500, time.time() - 500))
        time.sleep(0.5)
        assert time.time() - path.stat().st_mtime < 5


def test_holder_that_lost_its_lock_does_not_publish(tmp_path: Path) -> None:
    path = tmp_path / ".lock-job"
    lock = JobLock(path).acquire()
    lock.check()
    _write_lock(path, "some-other-node", 1)  # taken over by another process meanwhile
    with pytest.raises(ReproError, match="lost the lock"):
        lock.check()
    lock.release()
    assert json.loads(path.read_text())["host"] == "some-other-node", "released someone else's lock"


def _contender(path: str, log: str, n: int) -> None:
    for _ in range(n):
        with JobLock(Path(path), poll_s=0.01):
            with open(log, "a") as f:
                f.write(f"in {os.getpid()} {time.time()}\n")
            time.sleep(0.02)
            with open(log, "a") as f:
                f.write(f"out {os.getpid()} {time.time()}\n")


def test_concurrent_takers_one_at_a_time_even_racing_for_a_stale_lock(tmp_path: Path) -> None:
    path, log = tmp_path / ".lock-job", tmp_path / "log"
    _write_lock(path, socket.gethostname(), _dead_pid())  # all of them find the same stale lock first
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_contender, args=(str(path), str(log), 4)) for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    events = [line.split() for line in log.read_text().splitlines()]
    assert len(events) == 32
    holder = None
    for kind, pid, _ in events:  # strictly alternating in/out of the same process: never two inside
        if kind == "in":
            assert holder is None, "two processes held the lock at once"
            holder = pid
        else:
            assert holder == pid
            holder = None


# ------------------------------------------------------------------------------------ runner behaviour


def _plan():
    from repro.plan import build_plan

    plan = build_plan([SPEC])
    by_stage = {j.stage: j for j in plan.jobs.values()}
    return plan, by_stage


def _journal() -> list[dict]:
    p = paths.journal()
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def test_done_job_is_left_alone_and_a_deleted_manifest_restored(workdir: Path) -> None:
    from repro.runner import run_job

    plan, by = _plan()
    g = by["generate"]
    run_job(plan, g)
    man = g.outdir / paths.MANIFEST
    st = man.stat()
    files = {p.name: p.stat().st_mtime_ns for p in g.outdir.iterdir()}
    run_job(plan, g)  # done: exits without touching anything
    assert {p.name: p.stat().st_mtime_ns for p in g.outdir.iterdir()} == files
    man.unlink()  # what Snakemake does to a job's declared output before it runs the job
    run_job(plan, g)
    assert man.stat().st_ino == st.st_ino and man.stat().st_mtime_ns == st.st_mtime_ns
    assert [e["event"] for e in _journal()] == ["start", "end", "skip", "skip"]
    # a folder the runner did not finish (no run.json) is never "restored": the job runs again
    man.unlink()
    (g.outdir / paths.RUN_RECORD).unlink()
    run_job(plan, g)
    assert [e["event"] for e in _journal()][-2:] == ["start", "end"]


def test_partial_progress_survives_a_failure_and_goes_on_success(workdir: Path) -> None:
    from repro.runner import run_job

    plan, by = _plan()
    g, f = by["generate"], by["filter"]
    run_job(plan, g)
    traces = g.outdir / "traces.jsonl"
    good = traces.read_bytes()
    partial = paths.partial_dir(f.stage, f.dirname)
    partial.mkdir(parents=True)
    (partial / "shard-00000.jsonl").write_text("{}\n")  # progress a killed run left
    traces.write_bytes(good[: len(good) // 2])  # truncated input: the job fails
    with pytest.raises(ReproError, match="traces.jsonl"):
        run_job(plan, f)
    assert (partial / "shard-00000.jsonl").is_file(), "partial progress deleted on failure"
    assert not list(f.outdir.parent.glob(".tmp-*")) and not f.done()
    traces.write_bytes(good)
    run_job(plan, f)
    assert f.done() and not partial.exists(), "partial progress left after success"
    assert json.loads((f.outdir / paths.RUN_RECORD).read_text())["resumed"] is True


@pytest.mark.slow
def test_second_engine_waits_for_the_holder_and_does_not_rerun(workdir: Path) -> None:
    """Another process holds the job's lock and runs it; run_job waits, then finds it done."""
    from repro.runner import run_job

    plan, by = _plan()
    run_job(plan, by["generate"])
    f = by["filter"]
    script = textwrap.dedent(f"""
        import sys, time
        from repro import paths
        from repro.locks import JobLock
        from repro.plan import build_plan
        from repro.runner import _run_locked
        plan = build_plan([{SPEC!r}])
        job = plan.jobs[{f.id!r}]
        with JobLock(paths.lock_file(job.stage, job.dirname)) as lock:
            print("locked", flush=True)
            time.sleep(2)
            _run_locked(plan, job, lock, None)
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=env)
    assert holder.stdout.readline().strip() == "locked"
    run_job(plan, f, lock_wait_s=60)
    assert holder.wait(60) == 0
    ev = [e for e in _journal() if e["id"] == f.id]
    assert [e["event"] for e in ev] == ["start", "end", "skip"]
    assert ev[0]["pid"] == holder.pid and ev[2]["pid"] == os.getpid()
    assert ev[2]["reason"] == "done by another process"


@pytest.mark.slow
def test_sigterm_releases_the_lock_and_keeps_partial_progress(workdir: Path) -> None:
    """SLURM preempts with SIGTERM: the job unwinds, its lock and temporary folder go, its progress stays."""
    import signal

    from repro.runner import run_job

    plan, by = _plan()
    run_job(plan, by["generate"])
    run_job(plan, by["filter"])
    t = by["train"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-m", "repro", "run", t.id, "--specs", SPEC], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = paths.lock_file(t.stage, t.dirname)
    deadline = time.time() + 120
    while not any(e["event"] == "start" and e["id"] == t.id for e in _journal()):
        assert proc.poll() is None and time.time() < deadline
        time.sleep(0.1)
    assert lock.exists()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 128 + signal.SIGTERM
    assert not lock.exists(), "lock left behind after SIGTERM"
    assert not list(t.outdir.parent.glob(".tmp-*")) and not t.done()
    assert paths.partial_dir(t.stage, t.dirname).is_dir()
    assert [e["event"] for e in _journal() if e["id"] == t.id] == ["start", "fail"]


def test_repro_unlock_clears_a_dead_runs_lock_and_refuses_while_one_runs(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from repro.cli import main

    locks = tmp_path / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("results/a\n")
    (locks / "0.output.lock").write_text("results/b\n")
    monkeypatch.chdir(tmp_path)
    # a live process that looks like Snakemake, running in this folder
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "snakemake", "--cores", "1"],
                            cwd=tmp_path)
    try:
        time.sleep(0.3)
        assert main(["unlock"]) == 1
        assert len(list(locks.glob("*.lock"))) == 2
    finally:
        live.kill()
        live.wait()
    assert main(["unlock"]) == 0
    assert list(locks.glob("*.lock")) == []
    assert main(["unlock"]) == 0  # nothing to do
