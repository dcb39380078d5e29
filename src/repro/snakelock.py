"""Snakemake's directory lock after a crash: `repro unlock` clears it when no Snakemake runs here.

A SIGKILLed (or OOM-killed, or preempted) `snakemake` leaves its lock files in `.snakemake/locks/`, and
the next run stops with "Directory cannot be locked". Snakemake's locks name no process, so `snakemake
--unlock` removes them blindly. `repro unlock` first looks for a live Snakemake process whose working
directory is this one on this host (Linux /proc) and refuses while there is one; it cannot see
processes on other hosts of a shared file system, which it says. Then:

    repro unlock && snakemake --cores all      # the profile reruns incomplete jobs (rerun-incomplete)

Nothing else is touched: finished job folders stay, partial progress (`.partial-*`) stays and is resumed,
and the per-job locks of dead processes (repro.locks) are taken over by the next run by themselves.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from repro.errors import ReproError

log = logging.getLogger(__name__)

LOCK_DIR = Path(".snakemake/locks")


def snakemake_processes(workdir: Path) -> list[int]:
    """Pids of live processes on this host running Snakemake with `workdir` as working directory."""
    here = os.path.realpath(workdir)
    me = os.getpid()
    out = []
    for d in Path("/proc").glob("[0-9]*"):
        pid = int(d.name)
        if pid == me:
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            cwd = os.readlink(d / "cwd")
        except OSError:
            continue
        if "snakemake" in cmd and "--unlock" not in cmd and os.path.realpath(cwd) == here:
            out.append(pid)
    return sorted(out)


def unlock(workdir: Path = Path(".")) -> list[Path]:
    """Remove Snakemake's lock files in `workdir` unless a Snakemake process runs there; return them."""
    locks = sorted((workdir / LOCK_DIR).glob("*.lock")) if (workdir / LOCK_DIR).is_dir() else []
    if not locks:
        log.info("no Snakemake lock in %s", (workdir / LOCK_DIR))
        return []
    live = snakemake_processes(workdir)
    if live:
        raise ReproError(f"{workdir / LOCK_DIR}: Snakemake is running here (pid {', '.join(map(str, live))}); "
                         "its lock is not stale", exit_code=1)
    for p in locks:
        p.unlink(missing_ok=True)
    log.warning("removed %d stale Snakemake lock files from %s (no Snakemake process runs in this folder on "
                "this host; processes on other hosts cannot be seen from here)", len(locks), workdir / LOCK_DIR)
    return locks
