"""The stage registry: the one place where the pipeline's stages are defined.

Each `Stage` names its module (`repro.stages.<name>`, which holds `run(cfg, inputs, out_dir, runtime)` and
the planner `plan(ctx)`), its code version, its job config model, its resource class and how `repro
verify` judges a rerun. Every other list of stages (plan order, Snakemake rules, DVC stages, resources,
report provenance, verify) is derived from `STAGES`.

`cfg` is the stage's typed job config (a model in repro.config), `inputs` maps input roles to the input
jobs' output folders, `out_dir` is an empty folder to fill, and `runtime` holds how-to-run settings
(threads, the partial-progress folder) that never change results.

Bump a stage's `version` when its code changes results: every job of that stage (and everything
downstream) gets a new id. `tests/test_stage_versions.py` fails when a stage module's source changed but
its version did not (update `STAGE_SOURCES.json` with `python -m repro.stages --update` together with the
version bump, or alone for a change that cannot change any result).

Stage modules import their heavy dependencies inside `run`, so planning never pays for torch.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal


@dataclass(frozen=True)
class Stage:
    """One stage of the pipeline."""

    name: str
    version: int
    job_model: str  # name of its job config model in repro.config
    verify: Literal["exact", "close"]  # exact: a rerun is bit-identical; close: compared by final loss only
    compute: Literal["light", "train", "infer"]  # resource class for defaults (CPU data work / training / inference)
    priority: int  # scheduling order among ready jobs (higher first); train adds its estimated length

    @property
    def module(self) -> ModuleType:
        return importlib.import_module(f"repro.stages.{self.name}")

    @property
    def job(self) -> type[Any]:
        from repro import config

        return getattr(config, self.job_model)


STAGES: tuple[Stage, ...] = (
    Stage("generate", 1, "GenerateJob", "exact", "light", 1000),
    Stage("filter", 1, "FilterJob", "exact", "light", 1000),
    Stage("pretrain", 2, "PretrainJob", "close", "train", 900),
    Stage("train", 1, "TrainJob", "close", "train", 100),
    Stage("eval", 4, "EvalJob", "exact", "infer", 10),
    Stage("analyze", 3, "AnalyzeJob", "exact", "infer", 10),
    Stage("report", 2, "ReportJob", "close", "light", 0),
)
STAGE_NAMES: tuple[str, ...] = tuple(s.name for s in STAGES)
_BY_NAME = {s.name: s for s in STAGES}
SOURCES_FILE = Path(__file__).with_name("STAGE_SOURCES.json")


def get_stage(name: str) -> Stage:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown stage {name!r}; stages: {', '.join(STAGE_NAMES)}") from None


def run_stage(stage: str, cfg: Any, inputs: dict[str, Path], out_dir: Path, runtime: dict[str, Any]) -> dict[str, Any] | None:
    return get_stage(stage).module.run(cfg, inputs, out_dir, runtime)


def source_hash(stage: str) -> str:
    """sha256 of a stage module's source: what `tests/test_stage_versions.py` pins together with the version."""
    import hashlib

    path = Path(__file__).with_name(f"{stage}.py")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def recorded_sources() -> dict[str, dict[str, Any]]:
    import json

    return json.loads(SOURCES_FILE.read_text()) if SOURCES_FILE.exists() else {}


def update_sources() -> dict[str, dict[str, Any]]:
    """Record every stage's current version and source hash in STAGE_SOURCES.json."""
    import json

    data = {s.name: {"version": s.version, "source_sha256": source_hash(s.name)} for s in STAGES}
    SOURCES_FILE.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
    return data
