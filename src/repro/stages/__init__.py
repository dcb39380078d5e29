"""Stage registry: each stage is a module with `run(cfg, inputs, out_dir, runtime)` and a version.

`cfg` is the stage's typed job config (repro.config.*Job), `inputs` maps input roles to the input jobs'
output folders, `out_dir` is an empty folder to fill, and `runtime` holds how-to-run settings (threads)
that never change results. Bump a stage's VERSION when its code changes results: every job of that stage
(and everything downstream) gets a new id.

Stage modules import their heavy dependencies inside `run`, so planning never pays for torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

STAGE_VERSIONS: dict[str, int] = {
    "generate": 1,
    "filter": 1,
    "pretrain": 2,
    "train": 1,
    "eval": 2,
    "analyze": 2,
    "report": 1,
}


def run_stage(stage: str, cfg: Any, inputs: dict[str, Path], out_dir: Path, runtime: dict[str, Any]) -> dict[str, Any] | None:
    mod = importlib.import_module(f"repro.stages.{stage}")
    return mod.run(cfg, inputs, out_dir, runtime)
