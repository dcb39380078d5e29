"""Shared test fixtures: a temporary working directory holding a copy of the workflow files, and one smoke
run through the real Snakemake (session-scoped) for the slow tests that read its results.

`smoke_run` is shared: tests must only read it. A test that changes files (reruns, deletes, kills) takes
`smoke_copy`, its own copy of the finished run."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


def copy_workflow(dst: Path) -> Path:
    """Copy what a run needs (Snakefile, params, experiments, profiles, slurm profile, data) into dst."""
    for name in ("Snakefile", "params.yaml", "dvc.yaml"):
        if (REPO / name).exists():
            shutil.copy2(REPO / name, dst / name)
    for d in ("experiments", "profiles", "slurm", "data"):
        if (REPO / d).exists():
            shutil.copytree(REPO / d, dst / d, dirs_exist_ok=True)
    return dst


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh copy of the workflow as the current directory, with results/ and reports/ inside it."""
    copy_workflow(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REPRO_RESULTS", raising=False)
    monkeypatch.delenv("REPRO_REPORTS", raising=False)
    return tmp_path


def required(name: str) -> bool:
    """In CI (CI=true) or with REPRO_REQUIRE_<NAME>=1 a missing system tool fails instead of skipping."""
    return bool(os.environ.get("CI")) or os.environ.get(f"REPRO_REQUIRE_{name.upper()}") == "1"


SMOKE_SPEC = "experiments/smoke.yaml"


def snakemake(wd: Path, *args: str, spec: str = SMOKE_SPEC, timeout: int = 600) -> subprocess.CompletedProcess[str]:
    """`snakemake --cores 2 --config specs=SPEC ARGS...` in wd (the environment's snakemake)."""
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--config", f"specs={spec}", *args]
    env = {k: v for k, v in os.environ.items() if k not in ("REPRO_RESULTS", "REPRO_REPORTS")}
    return subprocess.run(cmd, cwd=wd, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A workflow copy in which `snakemake --cores 2` ran the smoke spec to the end (about 30-60 s on 2
    cores). Shared by the whole session: read it, never change it (use `smoke_copy` for that)."""
    wd = copy_workflow(tmp_path_factory.mktemp("smoke"))
    r = snakemake(wd)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return wd


@pytest.fixture
def smoke_copy(smoke_run: Path, tmp_path: Path) -> Path:
    """This test's own copy of the finished smoke run (files, Snakemake metadata and mtimes)."""
    dst = tmp_path / "smoke"
    shutil.copytree(smoke_run, dst, symlinks=True)
    return dst
