"""`repro status`: per spec and stage, which jobs are done, running, failed or still to do — read from the
results and logs folders only, so it works from any machine that sees a cluster's shared file system.

A job is
- done: its folder holds manifest.json (the runner writes it last);
- running: someone holds it — a per-job lock file (host, pid, start) if the runner wrote one, else the
  runner's temporary folder `results/<stage>/.tmp-<name>-<id>-<pid>/` — and the holder is alive: its pid
  exists when it runs on this host, or its log was written within `stale_after()` seconds (a running job
  logs a PROGRESS line at least every $REPRO_PROGRESS_INTERVAL seconds, see repro.progress); also a log
  opened less than STARTING_S ago with no error in it (the engine started the job, the runner has not
  made its folder yet);
- failed: not done, not running, and it left a trace: a log `logs/<stage>/<name>-<id>.log`, a temporary
  folder or lock of a dead process (killed), or kept partial work (`.partial-<name>-<id>/`);
- to do: none of these; `ready` when all its inputs are done.

`job_log(job)` is what `repro run` uses to make sure a job's log lands in that file under every engine:
Snakemake redirects the job's output there itself; under DVC or by hand the runner adds a log handler.
It starts every run with a `RUN <id> host <host> pid <pid>` line, which names the host of the pid in a
temporary folder's name. A per-job lock file is read as JSON or `key: value` lines (host, pid, start).

    repro status                        # the default experiments (params.yaml)
    repro status experiments/smoke.yaml --json
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from repro import paths
from repro.plan import STAGE_ORDER, Job, Plan
from repro.progress import PREFIX, default_interval, parse

log = logging.getLogger(__name__)

STATES = ("done", "running", "failed", "todo")
TAIL_LINES = 15
STARTING_S = 10.0  # a fresh log without a holder or an error: the job is starting
_ERROR = re.compile(r"Traceback|\bERROR\b|^error:|Error:")
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def log_path(job: Job) -> Path:
    """Where the engines write a job's log: logs/<stage>/<name>-<id>.log (as the Snakefile's `log:`)."""
    return Path("logs") / job.stage / f"{job.dirname}.log"


def stale_after() -> float:
    """Seconds without a log line after which a holder on another host counts as gone."""
    return max(60.0, 3 * default_interval())


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except (OverflowError, ValueError):
        return False
    return True


def _read_lock(path: Path) -> dict[str, Any]:
    """A lock file's holder: JSON, or `key: value` / `key=value` lines (host, pid, start...)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            return data
    except ValueError:
        pass
    out: dict[str, Any] = {}
    for line in text.splitlines():
        m = re.match(r"\s*(\w+)\s*[:=]\s*(.*?)\s*$", line)
        if m:
            out[m.group(1)] = m.group(2)
    return out


def lock_files(job: Job) -> list[Path]:
    """The job's lock file (repro.locks: `results/<stage>/.lock-<name>-<id>`), if someone holds it."""
    lock = paths.lock_file(job.stage, job.dirname)
    return [lock] if lock.is_file() else []


def _tail(path: Path, n: int = TAIL_LINES, max_bytes: int = 65536) -> list[str]:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return []
    return data.decode("utf-8", errors="replace").splitlines()[-n:]


def _last_progress(path: Path) -> str | None:
    for line in reversed(_tail(path, 400, 262144)):
        if PREFIX in line:
            return line[line.index(PREFIX):]
    return None


_RUN = re.compile(r"RUN (?P<id>\w+) host (?P<host>\S+) pid (?P<pid>\d+)")


def _run_lines(path: Path) -> dict[int, str]:
    """pid -> host of the runs a log records (`job_log` writes a RUN line at each start)."""
    out: dict[int, str] = {}
    for line in _tail(path, 10**6, 8 * 2**20):
        m = _RUN.search(line)
        if m:
            out[int(m.group("pid"))] = m.group("host")
    return out


def _holder(job: Job, log_age: float | None) -> tuple[dict[str, Any] | None, bool]:
    """(who holds the job, whether that holder is alive); (None, False) when nobody does."""
    host = socket.gethostname()
    fresh = log_age is not None and log_age <= stale_after()
    for lock in lock_files(job):
        h = _read_lock(lock)
        h["lock"] = str(lock)
        try:
            pid = int(h.get("pid", -1))
        except (TypeError, ValueError):
            pid = -1
        if h.get("host") in (None, "", host) and pid > 0:
            return h, _pid_alive(pid)
        return h, fresh
    parent = job.outdir.parent
    tmps = sorted(parent.glob(f".tmp-{job.dirname}-*")) if parent.is_dir() else []
    for tmp in tmps:
        m = re.search(r"-(\d+)$", tmp.name)
        pid = int(m.group(1)) if m else -1
        h: dict[str, Any] = {"pid": pid, "tmp": str(tmp)}
        try:
            h["start"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(tmp.stat().st_mtime))
        except OSError:
            pass
        # the tmp folder names the pid; the log's RUN line of that pid names the host
        h["host"] = _run_lines(log_path(job)).get(pid)
        if h["host"] == host:
            return h, _pid_alive(pid)
        return h, fresh or (h["host"] is None and pid > 0 and _pid_alive(pid))
    return None, False


def job_status(job: Job, plan: Plan | None = None) -> dict[str, Any]:
    """State of one job, with who holds it and its last progress line (running), or its log's last lines
    (failed)."""
    d: dict[str, Any] = {"id": job.id, "stage": job.stage, "name": job.name, "dir": str(job.outdir)}
    if job.done():
        d["state"] = "done"
        return d
    lp = log_path(job)
    age = None
    if lp.is_file():
        d["log"] = str(lp)
        age = max(0.0, time.time() - lp.stat().st_mtime)
        d["log_age_s"] = round(age, 1)
    holder, alive = _holder(job, age)
    partial = job.outdir.parent / f".partial-{job.dirname}"
    if partial.is_dir():
        d["partial"] = str(partial)
    if holder is not None and alive:
        d["state"] = "running"
        d["holder"] = holder
        d["progress"] = _last_progress(lp) if lp.is_file() else None
        if d["progress"]:
            d["progress_fields"] = parse(d["progress"])
        return d
    tail = _tail(lp) if lp.is_file() else []
    if holder is None and age is not None and age < STARTING_S and not any(_ERROR.search(x) for x in tail):
        d["state"] = "running"  # the engine opened the log; the runner has not made its folder yet
        d["holder"] = {"starting": True}
        d["progress"] = _last_progress(lp)
        return d
    if holder is not None or lp.is_file() or partial.is_dir():
        d["state"] = "failed"
        if holder is not None:
            d["holder"] = holder
            d["reason"] = "its process is gone (killed?)"
        d["last_lines"] = tail
        return d
    d["state"] = "todo"
    if plan is not None:
        d["ready"] = all(plan.jobs[x].done() for x in job.deps)
    return d


def status(plan: Plan) -> dict[str, Any]:
    """Every job's status once, and per spec and stage the number of jobs in each state."""
    jobs = {jid: job_status(j, plan) for jid, j in plan.jobs.items()}
    specs = []
    for sp in plan.specs:
        per: dict[str, Counter[str]] = {}
        for jid in sp.job_ids:
            j = jobs[jid]
            per.setdefault(j["stage"], Counter())[j["state"]] += 1
            j.setdefault("specs", [])
            if sp.spec.name not in j["specs"]:
                j["specs"].append(sp.spec.name)
        stages = {s: {k: per[s].get(k, 0) for k in STATES} for s in STAGE_ORDER if s in per}
        totals = {k: sum(v[k] for v in stages.values()) for k in STATES}
        specs.append({"spec": sp.spec.name, "file": sp.file, "stages": stages, "total": totals})
    return {"specs": specs, "jobs": list(jobs.values()),
            "total": {k: sum(j["state"] == k for j in jobs.values()) for k in STATES}}


def _ago(s: float | None) -> str:
    return "?" if s is None else f"{s:.0f} s ago" if s < 120 else f"{s / 60:.0f} min ago"


def render(st: dict[str, Any]) -> str:
    """The text of `repro status`: a table per spec, then the running and the failed jobs."""
    lines = []
    for sp in st["specs"]:
        t = sp["total"]
        lines.append(f"{sp['spec']} ({sp['file']}): {t['done']} done, {t['running']} running, "
                     f"{t['failed']} failed, {t['todo']} to do")
        lines.append(f"  {'stage':<10}" + "".join(f"{k:>9}" for k in STATES))
        for stage, c in sp["stages"].items():
            lines.append(f"  {stage:<10}" + "".join(f"{c[k]:>9}" for k in STATES))
    running = [j for j in st["jobs"] if j["state"] == "running"]
    failed = [j for j in st["jobs"] if j["state"] == "failed"]
    if running:
        lines.append("\nrunning:")
        for j in running:
            h = j.get("holder") or {}
            who = " ".join(f"{k} {h[k]}" for k in ("host", "pid", "start") if h.get(k) not in (None, ""))
            lines.append(f"  {j['stage']}/{j['name']}-{j['id']} ({who or 'holder unknown'})")
            lines.append(f"    {j.get('progress') or 'no progress line yet'} (log written {_ago(j.get('log_age_s'))})")
    if failed:
        lines.append("\nfailed:")
        for j in failed:
            lines.append(f"  {j['stage']}/{j['name']}-{j['id']}: log {j.get('log', 'none')}"
                         + (f"; {j['reason']}" if j.get("reason") else "")
                         + (f"; partial work kept in {j['partial']}" if j.get("partial") else ""))
            lines.extend(f"    | {x}" for x in j.get("last_lines", [])[-5:])
    return "\n".join(lines)


@contextlib.contextmanager
def job_log(job: Job) -> Iterator[Path]:
    """Make sure the job's log lines (and a failure's traceback) reach logs/<stage>/<name>-<id>.log:
    unless stderr already is that file (Snakemake's `> {log} 2>&1`), add a handler that appends there."""
    path = log_path(job)
    run_line = ("RUN %s host %s pid %d", job.id, socket.gethostname(), os.getpid())
    try:
        err = os.fstat(2)
        same = path.is_file() and os.path.samestat(err, path.stat())
    except OSError:
        same = False
    if same:
        log.info(*run_line)
        yield path
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    root.addHandler(handler)
    log.info(*run_line)
    try:
        yield path
    except BaseException as e:
        logging.getLogger("repro.runner").error("job %s failed: %s: %s", job.id, type(e).__name__, e,
                                                exc_info=not isinstance(e, (KeyboardInterrupt, SystemExit))
                                                and getattr(e, "exit_code", 1) != 2)  # bad input: its one line
        raise
    finally:
        root.removeHandler(handler)
        handler.close()
