"""The default main job: `snakemake --cores all` on params.yaml's experiments in a fresh copy of the
workflow, timed (target: at most 20 minutes on 2 cores), then the true no-op figures there (see
bench_noop). Only with `python -m benchmarks --main-job`: it takes longer than everything else together.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from benchmarks.bench_noop import copy_workflow, noop_figures, sh
from benchmarks.common import Figure


def run(quick: bool = False, threads: int | None = None, keep: str | None = None) -> list[Figure]:
    d = keep or tempfile.mkdtemp(prefix="repro-main-")
    wd = copy_workflow(Path(d))
    t0 = time.perf_counter()
    sh(wd, "snakemake", "--cores", "all", timeout=4 * 3600)
    wall = time.perf_counter() - t0
    n_jobs = sum(1 for _ in wd.glob("results/*/*/manifest.json"))
    cores = os.cpu_count()
    out = [Figure("main", f"default experiments, snakemake --cores all ({n_jobs} jobs, {cores} cores)",
                  round(wall / 60, 2), "min", target="<= 20 min on 2 cores", met=wall <= 20 * 60,
                  note=f"workspace {wd}")]
    return out + noop_figures(wd, "default experiments")
