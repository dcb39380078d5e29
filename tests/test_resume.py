"""Crashes and concurrent engines through the real Snakemake and DVC, on the smoke spec.

1. The run is SIGKILLed (Snakemake and its jobs) at three random moments; after each kill the documented
   command (`repro unlock`, then `snakemake --rerun-incomplete`) goes on; the finished data, training and
   eval files equal an uninterrupted run's byte for byte.
2. Two `snakemake` processes started together (the second with `--nolock`, as users do), and a
   `snakemake` with a `dvc repro`, both finish; the results equal a single run's, and the run journal
   shows no job executed by two processes at the same time (and none executed twice at all).

The seed of the kill moments is printed; REPRO_KILL_SEED=N replays one.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import REPO, copy_workflow

pytestmark = pytest.mark.slow

SPEC = "experiments/smoke.yaml"
COMPARED = ("generate", "filter", "train", "eval")  # everything but run.json; the report holds timestamps


def _env() -> dict[str, str]:
    env = dict(os.environ, DVC_NO_ANALYTICS="1", PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.pop("REPRO_RESULTS", None)
    env.pop("REPRO_REPORTS", None)
    return env


def snakemake_cmd(*extra: str) -> list[str]:
    return [sys.executable, "-m", "snakemake", "--cores", "2", "--config", f"specs={SPEC}", *extra]


def run(wd: Path, cmd: list[str], timeout: int = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=wd, capture_output=True, text=True, timeout=timeout, env=_env())


def payload(wd: Path) -> dict[str, str]:
    """sha256 of every file of every finished job folder of the compared stages, run.json excepted."""
    out = {}
    for stage in COMPARED:
        for man in sorted((wd / "results" / stage).glob("*/manifest.json")):
            for f in sorted(man.parent.rglob("*")):
                if f.is_file() and f.name != "run.json":
                    out[str(f.relative_to(wd))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def journal(wd: Path) -> list[dict]:
    p = wd / "results" / ".journal.jsonl"
    return [json.loads(x) for x in p.read_text().splitlines()] if p.exists() else []


def runs(wd: Path) -> dict[str, list[tuple[int, float, float | None]]]:
    """job id -> [(pid, start, end or None if it never ended: killed)] from the run journal."""
    out: dict[str, list[tuple[int, float, float | None]]] = {}
    open_: dict[tuple[str, int], float] = {}
    for e in journal(wd):
        key = (e["id"], e["pid"])
        if e["event"] == "start":
            open_[key] = e["t"]
        elif e["event"] in ("end", "fail") and key in open_:
            out.setdefault(e["id"], []).append((e["pid"], open_.pop(key), e["t"]))
    for (jid, pid), t in open_.items():
        out.setdefault(jid, []).append((pid, t, None))
    return out


def assert_never_two_at_once(wd: Path) -> dict[str, list[tuple[int, float, float | None]]]:
    r = runs(wd)
    for jid, spans in r.items():
        spans = sorted(spans, key=lambda s: s[1])
        for (p1, s1, e1), (p2, s2, _) in zip(spans, spans[1:]):
            assert e1 is not None and e1 <= s2, f"job {jid} ran in pid {p1} and pid {p2} at the same time"
    return r


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, str], float]:
    """An uninterrupted run: its payload and wall time."""
    wd = copy_workflow(tmp_path_factory.mktemp("ref"))
    t0 = time.time()
    r = run(wd, snakemake_cmd())
    assert r.returncode == 0, r.stderr[-3000:]
    wall = time.time() - t0
    ref = payload(wd)
    assert {k.split("/")[1] for k in ref} == set(COMPARED)
    print(f"uninterrupted smoke run: {wall:.1f} s, {len(ref)} files")
    return ref, wall


def test_sigkill_three_times_then_rerun_equals_uninterrupted(reference: tuple[dict[str, str], float],
                                                             tmp_path: Path) -> None:
    ref, wall = reference
    wd = copy_workflow(tmp_path)
    seed = int(os.environ.get("REPRO_KILL_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)
    print(f"kill seed {seed} (REPRO_KILL_SEED={seed} replays it)")
    killed_in: list[str] = []
    for k in range(3):
        if k:
            assert run(wd, [sys.executable, "-m", "repro", "unlock"]).returncode == 0
        proc = subprocess.Popen(snakemake_cmd("--rerun-incomplete"), cwd=wd, env=_env(), start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        delay = rng.uniform(0.05, 0.3) * wall
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            pass
        assert proc.poll() is None, f"attempt {k + 1} finished before its kill at {delay:.1f} s"
        running = [jid for jid, spans in runs(wd).items() if spans[-1][2] is None]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        killed_in.append(f"{delay:.1f}s:{','.join(running) or 'between jobs'}")
    print("killed at", "; ".join(killed_in))
    # a killed run leaves Snakemake's lock: the plain rerun refuses, the documented command goes on
    stuck = run(wd, snakemake_cmd("--rerun-incomplete"))
    assert stuck.returncode != 0 and "cannot be locked" in stuck.stdout + stuck.stderr
    assert run(wd, [sys.executable, "-m", "repro", "unlock"]).returncode == 0
    r = run(wd, snakemake_cmd("--rerun-incomplete"))
    assert r.returncode == 0, r.stderr[-3000:]
    got = payload(wd)
    assert got.keys() == ref.keys()
    assert [k for k in ref if got[k] != ref[k]] == []
    assert (wd / "reports" / "index.html").is_file()
    assert not list((wd / "results").glob("*/.tmp-*")) and not list((wd / "results").glob("*/.partial-*"))
    # every job finished exactly once; the runs the kills cut short never ended (and never published)
    ends = [e["id"] for e in journal(wd) if e["event"] == "end"]
    assert sorted(ends) == sorted(set(ends)) and len(ends) == len(runs(wd))


def run_together(wd: Path, ref: dict[str, str], *cmds: list[str]) -> None:
    """Start `cmds` at once in `wd`; each must succeed, the results must equal the uninterrupted run's, and
    no job may have been executed twice or by two processes at the same time."""
    procs = [subprocess.Popen(c, cwd=wd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for c in cmds]
    for c, p in zip(cmds, procs):
        out = p.communicate(timeout=900)[0]
        assert p.returncode == 0, (c, out[-3000:])
    assert payload(wd) == ref
    r = assert_never_two_at_once(wd)
    assert {jid: len(s) for jid, s in r.items() if len(s) != 1} == {}, "a job was executed twice"


def test_two_snakemakes_at_once(reference: tuple[dict[str, str], float], tmp_path: Path) -> None:
    ref, _ = reference
    wd = copy_workflow(tmp_path)
    run_together(wd, ref, snakemake_cmd(), snakemake_cmd("--nolock"))
    assert (wd / "reports" / "index.html").is_file()


def test_snakemake_and_dvc_at_once(reference: tuple[dict[str, str], float], tmp_path: Path) -> None:
    ref, _ = reference
    wd = copy_workflow(tmp_path)
    (wd / "params.yaml").write_text(f"specs: [{SPEC}]\n")
    shutil.copy2(REPO / ".gitignore", wd / ".gitignore")
    shutil.copy2(REPO / ".dvcignore", wd / ".dvcignore")
    for cmd in (["git", "init", "-q"], ["dvc", "init", "-q"], [sys.executable, "-m", "repro", "dvc"],
                ["git", "add", "-A"], ["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "w"]):
        r = run(wd, cmd)
        assert r.returncode == 0, (cmd, r.stderr)
    run_together(wd, ref, snakemake_cmd(), ["dvc", "repro"])
    # DVC recorded every job folder as it is now; only reports/ may differ: both engines publish it, and
    # index.html carries the time it was written
    st = run(wd, ["dvc", "status", "--json"])
    assert st.returncode == 0, st.stderr
    assert set(json.loads(st.stdout or "{}")) <= {"publish"}, st.stdout
