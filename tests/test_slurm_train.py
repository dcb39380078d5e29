"""A train job whose resources ask for two processes, run as a SLURM job on the local cluster: the job's log
shows two ranks started by torchrun (CPU, gloo), and its id is the id of the same job with no resources.

slurm + slow; needs root (the session fixture starts scripts/slurm-local's single-node cluster). The
generate and filter jobs run locally first (`repro run`), so SLURM gets only the training job. ~2-4 min.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import copy_workflow

try:
    from slurm_cluster import SnakemakeSlurmTimeout, run_snakemake_slurm, slurm_env  # noqa: F401
except ImportError:  # tests/ as a package
    from tests.slurm_cluster import SnakemakeSlurmTimeout, run_snakemake_slurm, slurm_env  # type: ignore[no-redef]  # noqa: F401

from test_training_scale import SPEC

REPO = Path(__file__).resolve().parents[1]


def _env(base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(base or os.environ)
    for k in ("REPRO_RESULTS", "REPRO_REPORTS", "CUDA_VISIBLE_DEVICES"):
        env.pop(k, None)
    env["PYTHONPATH"] = str(REPO / "src")  # the jobs import this checkout's repro
    return env


def _plan(wd: Path, spec: str) -> dict[str, dict]:
    r = subprocess.run([sys.executable, "-m", "repro", "plan", spec, "--json"], cwd=wd, env=_env(),
                       capture_output=True, text=True, timeout=120, check=True)
    return {j["stage"]: j for j in json.loads(r.stdout)["jobs"]}


@pytest.mark.slurm
@pytest.mark.slow
def test_two_rank_train_job_on_slurm(slurm_env: dict[str, str], tmp_path: Path) -> None:
    wd = copy_workflow(tmp_path)
    plain = {**SPEC, "name": "ranks"}
    ranks = {**plain, "base": {**plain["base"], "resources": {"train": {"processes": 2, "cpus": 2, "mem_mb": 2000,
                                                                        "runtime_min": 20}}}}
    (wd / "experiments" / "ranks_plain.yaml").write_text(yaml.safe_dump(plain))
    (wd / "experiments" / "ranks.yaml").write_text(yaml.safe_dump(ranks))
    jobs, plain_jobs = _plan(wd, "experiments/ranks.yaml"), _plan(wd, "experiments/ranks_plain.yaml")
    train = jobs["train"]
    assert train["id"] == plain_jobs["train"]["id"]  # resources never enter the id
    assert train["resources"]["processes"] == 2 and plain_jobs["train"]["resources"].get("processes") is None
    for stage in ("generate", "filter"):  # locally: SLURM gets the train job only
        r = subprocess.run([sys.executable, "-m", "repro", "run", jobs[stage]["id"], "--specs", "experiments/ranks.yaml"],
                           cwd=wd, env=_env(), capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
    target = f"{train['outdir']}/manifest.json"
    try:
        proc = run_snakemake_slurm(wd, ["--config", "specs=experiments/ranks.yaml", "--jobs", "1", target],
                                   timeout_s=900, env=_env(slurm_env), profile="slurm")
    except SnakemakeSlurmTimeout as e:
        pytest.fail(str(e))
    assert proc.returncode == 0, proc.stdout[-6000:]
    out = wd / train["outdir"]
    assert (out / "manifest.json").is_file()
    assert json.loads((out / "run.json").read_text())["slurm_job_id"]  # it ran inside a SLURM job
    log = (wd / "logs" / "train" / f"{Path(train['outdir']).name}.log").read_text()
    assert "torch.distributed.run --nnodes=1 --nproc-per-node=2" in log, log[-3000:]
    assert "rank 0 of 2" in log and "rank 1 of 2" in log, log[-3000:]
    assert "2 process(es) x micro-batch 4 x 1 accumulation = global batch 8" in log
    rows = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, SPEC["base"]["train"]["steps"] + 1))
