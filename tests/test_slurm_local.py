"""The `slurm` profile on a real single-node SLURM cluster: a 3-rule workflow, every job a SLURM job.

Needs root (scripts/slurm-local starts munged, slurmctld and slurmd); skips otherwise, or fails
with REPRO_REQUIRE_SLURM=1. Runs in ~40 s on 2 cores.
"""

from __future__ import annotations

import time
import secrets
import subprocess
from pathlib import Path

import pytest

try:
    from slurm_cluster import (
        PROFILE,
        SnakemakeSlurmTimeout,
        jobcomp_records,
        run_snakemake_slurm,
        show_job,
        slurm_dir,
        slurm_env,  # noqa: F401  (session fixture)
        submitted_job_ids,
    )
except ImportError:  # tests/ as a package
    from tests.slurm_cluster import (  # type: ignore[no-redef]
        PROFILE,
        jobcomp_records,
        run_snakemake_slurm,
        show_job,
        slurm_dir,
        slurm_env,  # noqa: F401
        submitted_job_ids,
    )

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

# a and gpu run side by side, c after both; each job writes the SLURM job id it ran under.
SNAKEFILE = r"""
localrules: all

rule all:
    input: "out/c.txt"

rule a:
    output: "out/a.txt"
    resources: mem_mb=300, runtime=5
    shell: "echo job=$SLURM_JOB_ID > {output}"

rule gpu:
    output: "out/gpu.txt"
    resources: mem_mb=300, runtime=5, gpu=1
    shell: "echo job=$SLURM_JOB_ID cuda=${{CUDA_VISIBLE_DEVICES:-none}} > {output}"

rule c:
    input: "out/a.txt", "out/gpu.txt"
    output: "out/c.txt"
    resources: mem_mb=300, runtime=5
    shell: "cat {input} > {output} && echo job=$SLURM_JOB_ID >> {output}"
"""


def _job_id(path: Path) -> str:
    first = path.read_text().splitlines()[0 if path.name != "c.txt" else -1]
    return first.split()[0].removeprefix("job=")


def test_profile_runs_every_job_as_slurm_job(
    slurm_env: dict[str, str], tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    t0 = time.monotonic()
    proc = run_snakemake_slurm(tmp_path, ["--jobs", "3"], timeout_s=300, env=slurm_env, profile=PROFILE)
    wall_s = time.monotonic() - t0
    record_property("slurm_up_seconds", slurm_env.get("REPRO_SLURM_UP_SECONDS"))
    record_property("workflow_3_jobs_seconds", f"{wall_s:.1f}")
    print(f"\nslurm up: {slurm_env.get('REPRO_SLURM_UP_SECONDS')} s; 3-job workflow: {wall_s:.1f} s")
    assert proc.returncode == 0, proc.stdout[-6000:]

    # the profile was in force: slurm executor, jobs named <prefix>_<uuid>
    prefix = proc.slurm_jobname_prefix  # type: ignore[attr-defined]
    assert f"SLURM run ID: {prefix}_" in proc.stdout
    submitted = submitted_job_ids(proc.stdout)
    assert len(submitted) == 3, proc.stdout[-4000:]

    # each output was written inside a distinct, submitted SLURM job
    ran_in = {name: _job_id(tmp_path / "out" / f"{name}.txt") for name in ("a", "gpu", "c")}
    assert sorted(ran_in.values()) == sorted(submitted), (ran_in, submitted)

    # slurmctld recorded them as completed jobs of this run
    records = jobcomp_records(slurm_env)
    for jid in submitted:
        rec = records.get(jid)
        assert rec is not None, f"job {jid} not in {slurm_dir(slurm_env) / 'log' / 'jobcomp.log'}"
        assert rec["JobState"] == "COMPLETED", rec
        assert rec["Name"].startswith(prefix + "_"), rec

    # the profile keeps per-job SLURM logs (slurm-keep-successful-logs)
    logs = sorted((tmp_path / ".snakemake" / "slurm_logs").rglob("*.log"))
    assert {p.stem for p in logs} == set(submitted), logs

    # the gpu=1 rule asked SLURM for one GPU (--gpus=1 -> TresPerJob=gres:gpu:1) and got one
    gpu_job = show_job(ran_in["gpu"], slurm_env)
    assert gpu_job.get("TresPerJob") == "gres:gpu:1", gpu_job
    assert "cuda=none" not in (tmp_path / "out" / "gpu.txt").read_text()
    for name in ("a", "c"):
        job = show_job(ran_in[name], slurm_env)
        assert job.get("JobId") == ran_in[name], (name, job)  # scontrol answered (show_job gives {} if not)
        assert "gpu" not in job.get("TresPerJob", ""), (name, job)


def test_deadline_kills_snakemake_and_cancels_its_jobs(slurm_env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "Snakefile").write_text(
        'rule slow:\n    output: "slow.txt"\n    resources: mem_mb=300, runtime=5\n'
        '    shell: "sleep 600; touch {output}"\n'
    )
    prefix = f"repro_deadline{secrets.token_hex(3)}"
    with pytest.raises(SnakemakeSlurmTimeout) as info:
        run_snakemake_slurm(tmp_path, ["--jobs", "1"], timeout_s=15, env=slurm_env, jobname_prefix=prefix)
    assert info.value.cancelled, info.value.output[-3000:]
    # nothing of that run is left pending or running
    left = subprocess.run(
        ["squeue", "-h", "-t", "PD,R,CG", "-o", "%i|%j"], env=slurm_env, capture_output=True, text=True, check=True
    ).stdout
    for _ in range(20):
        if prefix not in left:
            break
        time.sleep(0.5)
        left = subprocess.run(
            ["squeue", "-h", "-t", "PD,R,CG", "-o", "%i|%j"], env=slurm_env, capture_output=True, text=True, check=True
        ).stdout
    assert prefix not in left, left
    assert not (tmp_path / "slow.txt").exists()
