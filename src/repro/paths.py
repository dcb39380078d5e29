"""Where artifacts live: the one owner of paths.

    results/<stage>/<name>-<id>/      a job's output folder; complete only once manifest.json exists
        manifest.json                 what the job is (id, stage, config, inputs, summary): deterministic
        run.json                      how this run went (host, times, versions, git commit): DVC ignores it
    results/<stage>/.tmp-<name>-<id>-<pid>/   where a running job writes before the atomic rename
    results/<stage>/.partial-<name>-<id>/     what a resumable job keeps across a kill (its resume state)
    logs/<stage>/<name>-<id>.log      the engine's log of a job
    reports/index.html, reports/<spec>.html   published reports

The results root is `results/` under the current directory, or $REPRO_RESULTS.
"""

from __future__ import annotations

import os
from pathlib import Path

MANIFEST = "manifest.json"
RUN_RECORD = "run.json"
PARAMS = Path("params.yaml")  # the default experiments: `specs:` (and `set:`) that every command falls back to


def default_params() -> tuple[list[str], list[str]]:
    """params.yaml's `specs` and `set` (the default experiments); empty when there is no params.yaml."""
    import yaml

    data = (yaml.safe_load(PARAMS.read_text()) or {}) if PARAMS.exists() else {}
    return list(data.get("specs") or []), list(data.get("set") or [])


def results_root() -> Path:
    return Path(os.environ.get("REPRO_RESULTS", "results"))


def reports_root() -> Path:
    return Path(os.environ.get("REPRO_REPORTS", "reports"))


def job_dir(stage: str, dirname: str) -> Path:
    return results_root() / stage / dirname


def tmp_dir(stage: str, dirname: str) -> Path:
    return results_root() / stage / f".tmp-{dirname}-{os.getpid()}"


def checkpoint_dir(train_dir: Path, step: int) -> Path:
    """Where a train job saves the model of `step` (0 = before training), in the HF layout."""
    return Path(train_dir) / "checkpoints" / f"step-{step}"


def partial_dir(stage: str, dirname: str) -> Path:
    """A job's resume folder, beside its output folder: survives a killed run, removed when the job completes."""
    return results_root() / stage / f".partial-{dirname}"


def is_done(outdir: Path) -> bool:
    return (outdir / MANIFEST).is_file()
