"""Run one job: the only thing Snakemake and DVC call (`repro run ID`).

The stage writes into a fresh temporary folder beside the target; then `run.json` (package versions, git
commit, host, SLURM job, start/end time, resources) and, last, `manifest.json` (id, stage, config, inputs,
summary) are written, and the folder is renamed into place, so a folder without a manifest is never
mistaken for a finished job. A job killed midway leaves a `.tmp-*` folder (the next run removes it) and
its partial progress.

Everything but run.json is deterministic (same inputs, same bytes), the manifest included; what varies
from run to run goes in run.json only, which DVC is told to ignore (.dvcignore). So DVC's hash of a job
folder is the same on every machine, and a folder DVC restores (checkout, pull) still has its manifest.

Crashes and concurrent engines (docs/resume.md):
- Partial progress: the stage gets `runtime["partial"]`, a folder beside the output
  (`results/<stage>/.partial-<name>-<id>/`) where resumable stages keep finished items. It survives a
  failed or killed run and is removed only when the job completes; the next run of the job resumes from it.
- One writer per job: the job runs under a lock file (`repro.locks.JobLock`, `.lock-<name>-<id>` beside the
  output). A second engine (another `snakemake`, `dvc repro`, a SLURM node) on the same job waits for it
  and then finds it done; a lock of a dead process is taken over.
- A job that is already done exits 0 without touching its folder. Snakemake deletes a job's declared
  output (`manifest.json`) before it runs it, also when another engine finished it a moment before; the
  runner then restores the manifest from its second link (`.complete-<name>-<id>.json`, same inode, same
  mtime) instead of running the job again, as long as the folder still holds the run's `run.json`.
- Every start, end, failure and skip is appended to `results/.journal.jsonl` (host, pid, times).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import platform
import shutil
import socket
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from repro import __version__, paths
from repro.errors import ReproError
from repro.locks import JobLock
from repro.plan import Job, Plan
from repro.safety import check_writable
from repro.stages import get_stage, run_stage

log = logging.getLogger(__name__)

PACKAGES = ("torch", "transformers", "trl", "tokenizers", "datasets", "accelerate", "math-verify",
            "pydantic", "numpy", "snakemake", "dvc", "vllm")


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "repro": __version__}
    for p in PACKAGES:
        try:
            out[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            pass
    return out


def git_commit() -> str | None:
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (sha + ("-dirty" if dirty else "")) if sha else None


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def journal(event: str, job: Job, **extra: Any) -> None:
    """Append one line to the run journal (O_APPEND: lines of concurrent processes do not interleave)."""
    rec = {"t": round(time.time(), 3), "event": event, "id": job.id, "stage": job.stage,
           "host": socket.gethostname(), "pid": os.getpid(), **extra}
    path = paths.journal()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (json.dumps(rec, sort_keys=True) + "\n").encode())
        finally:
            os.close(fd)
    except OSError as e:  # the journal is a record, never a reason to fail a job
        log.warning("could not write the run journal %s: %s", path, e)


def restore_manifest(job: Job) -> bool:
    """Put back a finished job's manifest that an engine deleted; True if the job is done (now)."""
    out = job.outdir
    if paths.is_done(out):
        return True
    rec = paths.completion_record(job.stage, job.dirname)
    if not (rec.is_file() and (out / paths.RUN_RECORD).is_file()):
        return False
    try:
        if json.loads(rec.read_text()).get("id") != job.id:
            return False
    except (OSError, ValueError):
        return False
    try:
        os.link(rec, out / paths.MANIFEST)
    except FileExistsError:
        pass
    except OSError:  # no hard links on this file system: copy, keeping the time
        tmp = out / f".{paths.MANIFEST}.{os.getpid()}"
        shutil.copy2(rec, tmp)
        os.replace(tmp, out / paths.MANIFEST)
    log.info("%s %s: restored its manifest (deleted by an engine after the job had finished)", job.stage, job.id)
    return paths.is_done(out)


def finished(job: Job) -> bool:
    """Whether `job` is done, restoring its manifest if an engine deleted it after the job finished."""
    return paths.is_done(job.outdir) or restore_manifest(job)


def _record_completion(job: Job) -> None:
    """Link the published manifest to `.complete-<name>-<id>.json` (a copy where links are impossible)."""
    rec = paths.completion_record(job.stage, job.dirname)
    tmp = rec.with_name(f"{rec.name}.{os.getpid()}")
    try:
        tmp.unlink(missing_ok=True)
        try:
            os.link(job.outdir / paths.MANIFEST, tmp)
        except OSError:
            shutil.copy2(job.outdir / paths.MANIFEST, tmp)
        os.replace(tmp, rec)
    except OSError as e:
        log.warning("could not record the completion of %s: %s", job.id, e)


def _publish(tmp: Path, out: Path) -> None:
    """Move the finished folder `tmp` into place at `out`, replacing an incomplete (or --force) folder; the
    old folder is renamed away first, so a reader never finds `out` half-removed."""
    out.parent.mkdir(parents=True, exist_ok=True)
    old = out.parent / f".old-{out.name}-{os.getpid()}"
    if out.exists():
        os.rename(out, old)
    os.rename(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def _drop_leftovers(job: Job) -> None:
    """Partial progress of a job that is done (its run was killed after publishing) goes, unless another
    process holds the job's lock (a --force rerun)."""
    partial = paths.partial_dir(job.stage, job.dirname)
    if not partial.exists():
        return
    try:
        with JobLock(paths.lock_file(job.stage, job.dirname), wait_s=0, what=f"job {job.stage}/{job.dirname}"):
            shutil.rmtree(partial, ignore_errors=True)
    except ReproError:
        pass


def run_job(plan: Plan, job: Job, force: bool = False, threads: int | None = None,
            lock_wait_s: float | None = None) -> Path:
    """Run `job` unless it is done; return its output folder.

    The job runs under its lock; a job another process is running is waited for (up to `lock_wait_s`,
    default $REPRO_LOCK_WAIT_S) and then, being done, not run again (unless `force`)."""
    out = job.outdir
    if not force and finished(job):
        log.info("%s %s is done already: %s", job.stage, job.id, out)
        journal("skip", job, reason="done")
        _drop_leftovers(job)
        return out
    missing = [d for d in job.deps if not finished(plan.jobs[d])]
    if missing:
        names = ", ".join(f"{plan.jobs[d].stage}/{plan.jobs[d].dirname}" for d in missing[:5])
        raise ReproError(f"job {job.id} ({job.stage}) cannot run: inputs not done: {names}")
    lock = JobLock(paths.lock_file(job.stage, job.dirname), wait_s=lock_wait_s,
                   what=f"job {job.stage}/{job.dirname}")
    with lock:
        if not force and finished(job):  # finished by another process since the check above
            who = lock.waited_for.describe() if lock.waited_for else "another process"
            log.info("%s %s was run by %s meanwhile: done", job.stage, job.id, who)
            journal("skip", job, reason="done by another process", holder=who)
            return out
        return _run_locked(plan, job, lock, threads)


def _run_locked(plan: Plan, job: Job, lock: JobLock, threads: int | None) -> Path:
    out = check_writable(job.outdir)
    # We hold the job's lock, so no other process writes this job: leftovers of killed runs can go.
    if out.parent.exists():
        for stale in [*out.parent.glob(f".tmp-{job.dirname}-*"), *out.parent.glob(f".old-{job.dirname}-*")]:
            shutil.rmtree(stale, ignore_errors=True)
    tmp = paths.tmp_dir(job.stage, job.dirname)
    tmp.mkdir(parents=True)
    partial = paths.partial_dir(job.stage, job.dirname)
    resumed = partial.is_dir() and any(partial.iterdir())
    partial.mkdir(parents=True, exist_ok=True)
    cfg = get_stage(job.stage).job.model_validate(job.config)
    inputs = {role: plan.jobs[jid].outdir for role, jid in job.inputs.items()}
    runtime = {"threads": threads or int(job.resources.get("cpus", 1)), "job_id": job.id, "partial": partial,
               "dirname": job.dirname, "resources": job.resources, "conditions": job.conditions}
    started, t0 = _now(), time.time()
    log.info("running %s %s -> %s%s", job.stage, job.id, out, f" (resuming from {partial})" if resumed else "")
    journal("start", job, resumed=resumed)
    try:
        summary = run_stage(job.stage, cfg, inputs, tmp, runtime)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)  # the partial progress stays for the next run
        journal("fail", job, error=type(e).__name__)
        raise
    manifest = {
        "id": job.id,
        "stage": job.stage,
        "stage_version": get_stage(job.stage).version,
        "name": job.name,
        "config": job.config,
        "inputs": {role: {"id": jid, "dir": f"{plan.jobs[jid].stage}/{plan.jobs[jid].dirname}"} for role, jid in job.inputs.items()},
        "summary": summary or {},
    }
    record = {
        "id": job.id,
        "resources": job.resources,
        "conditions": job.conditions,
        "versions": package_versions(),
        "git_commit": git_commit(),
        "host": socket.gethostname(),
        "slurm_job_id": os.environ.get("SLURM_JOB_ID"),
        "started": started,
        "ended": _now(),
        "wall_s": round(time.time() - t0, 3),
        "resumed": resumed,
    }
    (tmp / paths.RUN_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    (tmp / paths.MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    lock.check()  # taken over as stale (a holder frozen past the lease)? then the new holder publishes
    _publish(tmp, out)
    _record_completion(job)
    shutil.rmtree(partial, ignore_errors=True)
    journal("end", job, wall_s=record["wall_s"])
    log.info("done %s %s in %.1fs", job.stage, job.id, record["wall_s"])
    return out
