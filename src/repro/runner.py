"""Run one job: the only thing Snakemake and DVC call (`repro run ID`).

The stage writes into a fresh temporary folder beside the target; then `run.json` (package versions, git
commit, host, SLURM job, start/end time, resources) and, last, `manifest.json` (id, stage, config, inputs,
summary) are written, and the folder is renamed into place, so a folder without a manifest is never
mistaken for a finished job. A job killed midway leaves only a `.tmp-*` folder, which the next run removes.

Everything but run.json is deterministic (same inputs, same bytes), the manifest included; what varies
from run to run goes in run.json only, which DVC is told to ignore (.dvcignore). So DVC's hash of a job
folder is the same on every machine, and a folder DVC restores (checkout, pull) still has its manifest.
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

from repro import __version__, paths
from repro.errors import ReproError
from repro.plan import Job, Plan
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


def run_job(plan: Plan, job: Job, force: bool = False, threads: int | None = None) -> Path:
    """Run `job` unless it is done; return its output folder."""
    out = job.outdir
    if job.done() and not force:
        log.info("%s %s is done already: %s", job.stage, job.id, out)
        return out
    missing = [d for d in job.deps if not plan.jobs[d].done()]
    if missing:
        names = ", ".join(f"{plan.jobs[d].stage}/{plan.jobs[d].dirname}" for d in missing[:5])
        raise ReproError(f"job {job.id} ({job.stage}) cannot run: inputs not done: {names}")
    tmp = paths.tmp_dir(job.stage, job.dirname)
    if tmp.exists():
        shutil.rmtree(tmp)
    for stale in out.parent.glob(f".tmp-{job.dirname}-*") if out.parent.exists() else []:
        shutil.rmtree(stale, ignore_errors=True)  # left by a killed run
    tmp.mkdir(parents=True)
    cfg = get_stage(job.stage).job.model_validate(job.config)
    inputs = {role: plan.jobs[jid].outdir for role, jid in job.inputs.items()}
    partial = out.parent / f".partial-{job.dirname}"  # finished items of a killed run; kept until done
    runtime = {"threads": threads or int(job.resources.get("cpus", 1)), "job_id": job.id, "partial": partial,
               "dirname": job.dirname, "resources": job.resources, "conditions": job.conditions}
    started, t0 = _now(), time.time()
    log.info("running %s %s -> %s", job.stage, job.id, out)
    try:
        summary = run_stage(job.stage, cfg, inputs, tmp, runtime)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
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
    }
    (tmp / paths.RUN_RECORD).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    (tmp / paths.MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    if out.exists():
        shutil.rmtree(out)  # an incomplete folder (no manifest), or --force
    out.parent.mkdir(parents=True, exist_ok=True)
    os.rename(tmp, out)
    shutil.rmtree(partial, ignore_errors=True)
    log.info("done %s %s in %.1fs", job.stage, job.id, record["wall_s"])
    return out
