"""The pipeline on SLURM: `snakemake --profile slurm` runs the smoke spec as SLURM jobs with the same outputs
as a local run, asks SLURM for exactly what a spec's `resources` say, and batches small eval jobs.

- test_smoke_on_slurm_matches_local_run (slurm, slow; root): the smoke spec runs twice from copies of the
  workflow, `snakemake --cores 2` and `snakemake --profile slurm` on the local cluster (scripts/slurm-local),
  side by side. Every planned job must have run inside a completed SLURM job of that run (the per-job SLURM
  logs name the jobs they ran; slurmctld's job-completion log has the SLURM jobs), the eval jobs as one
  grouped SLURM job, and every file of the generate, filter and eval folders but run.json must be
  byte-identical to the local run's. ~3-6 min on 2 cores (two smoke runs); hard deadline, then scancel.
- test_sbatch_call_of_a_14b_training_job: a spec asking 8 h200 GPUs, 64 CPUs, 512 GB, 24 h on partition
  `gpu` for training Qwen/Qwen3-14B-Base. `repro plan --json` shows those resources, and the sbatch command
  line the slurm plugin builds for the training job (seen by a stand-in `sbatch` first in PATH that records
  its argv and submits nothing) carries them. No cluster, no root; ~15 s.
- test_default_resources_of_a_14b_model and test_group_batches_cpu_evals: plan-level checks, no engine.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml
from conftest import copy_workflow

try:
    from slurm_cluster import (
        SnakemakeSlurmTimeout,
        fake_sbatch_calls,
        fake_slurm_bin,
        jobcomp_records,
        node_cpus,
        run_snakemake_slurm,
        sbatch_options,
        slurm_env,  # noqa: F401  (session fixture)
        submitted_job_ids,
    )
except ImportError:  # tests/ as a package
    from tests.slurm_cluster import (  # type: ignore[no-redef]
        SnakemakeSlurmTimeout,
        fake_sbatch_calls,
        fake_slurm_bin,
        jobcomp_records,
        node_cpus,
        run_snakemake_slurm,
        sbatch_options,
        slurm_env,  # noqa: F401
        submitted_job_ids,
    )

SPEC = "experiments/smoke.yaml"
SETS = ["base.eval.steps=[0,20]"]  # two checkpoints -> two eval jobs (one per checkpoint), to see them batched
CONFIG = ["--config", f"specs={SPEC}", f"set={';'.join(SETS)}"]
COMPARED_STAGES = ("generate", "filter", "eval")  # data and eval payloads must match byte for byte
DEADLINE_S = float(os.environ.get("REPRO_SLURM_E2E_TIMEOUT", "900"))


def _env() -> dict[str, str]:
    env = dict(os.environ)
    for k in ("REPRO_RESULTS", "REPRO_REPORTS"):
        env.pop(k, None)
    return env


def plan_jobs(wd: Path, spec: str, sets: list[str] | None = None) -> list[dict]:
    extra = [a for x in (sets or []) for a in ("--set", x)]
    r = subprocess.run([sys.executable, "-m", "repro", "plan", spec, "--json", *extra], cwd=wd, env=_env(),
                       capture_output=True, text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)["jobs"]


def job_dir(wd: Path, job: dict) -> Path:
    return wd / job["outdir"]


def dirname(job: dict) -> str:
    """<name>-<id>: the job's folder name, and its Snakemake wildcard `job`."""
    return Path(job["outdir"]).name


def payload_hashes(wd: Path, jobs: list[dict]) -> dict[str, str]:
    """sha256 of every file in the jobs' folders except run.json (it records times, host, SLURM job id);
    manifest.json is deterministic and compared too."""
    out: dict[str, str] = {}
    for job in jobs:
        d = job_dir(wd, job)
        for f in sorted(p for p in d.rglob("*") if p.is_file() and p.name != "run.json"):
            out[str(f.relative_to(wd))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


def slurm_job_of(wd: Path) -> dict[str, str]:
    """Job folder name -> id of the SLURM job that ran it, from the per-SLURM-job logs the profile keeps
    (.snakemake/slurm_logs/<rule or group>/.../<slurm id>.log: the inner snakemake names each job it runs)."""
    ran: dict[str, str] = {}
    for log in (wd / ".snakemake" / "slurm_logs").rglob("*.log"):
        for name in re.findall(r"^\s*wildcards: job=(\S+)\s*$", log.read_text(errors="replace"), re.MULTILINE):
            ran[name] = log.stem
    return ran


def _run_local(wd: Path, deadline: float, result: dict) -> None:
    """`snakemake --cores 2` in wd (in a thread); SIGKILLs its process group at the deadline."""
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "2", *CONFIG],
                            cwd=wd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    result["proc"] = proc
    try:
        out, _ = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        out += "\n[killed at the deadline]"
    result.update(rc=proc.returncode, out=out, wall_s=time.monotonic() - t0)


@pytest.mark.slurm
@pytest.mark.slow
def test_smoke_on_slurm_matches_local_run(
    slurm_env: dict[str, str], tmp_path: Path, record_property: pytest.RecordProperty
) -> None:
    (tmp_path / "local").mkdir()
    (tmp_path / "slurm").mkdir()
    local, remote = copy_workflow(tmp_path / "local"), copy_workflow(tmp_path / "slurm")
    deadline = time.monotonic() + DEADLINE_S
    local_result: dict = {}
    t = threading.Thread(target=_run_local, args=(local, deadline, local_result), daemon=True)
    t.start()  # the local run goes side by side: the SLURM run mostly waits on polls and start-ups
    t0 = time.monotonic()
    try:
        # `--profile slurm`, relative: snakemake must find slurm/ in the workflow folder, as from the repo root
        proc = run_snakemake_slurm(remote, CONFIG, timeout_s=DEADLINE_S, env=slurm_env,
                                   profile="slurm")
        slurm_s = time.monotonic() - t0
        t.join(max(1.0, deadline - time.monotonic()) + 60)
    except SnakemakeSlurmTimeout as e:
        pytest.fail(str(e))
    finally:
        if t.is_alive() and "proc" in local_result:  # the SLURM run failed: stop the local one too
            with contextlib.suppress(ProcessLookupError):
                os.killpg(local_result["proc"].pid, signal.SIGKILL)
    record_property("slurm_run_seconds", f"{slurm_s:.1f}")
    record_property("local_run_seconds", f"{local_result.get('wall_s', -1):.1f}")
    print(f"\nsmoke via SLURM: {slurm_s:.1f} s; local (side by side): {local_result.get('wall_s', -1):.1f} s")
    assert proc.returncode == 0, proc.stdout[-6000:]
    assert local_result.get("rc") == 0, local_result.get("out", "")[-6000:]

    jobs = plan_jobs(remote, SPEC, SETS)
    assert {dirname(j) for j in jobs} == {dirname(j) for j in plan_jobs(local, SPEC, SETS)}
    # all done, in both runs
    for wd in (local, remote):
        missing = [dirname(j) for j in jobs if not (job_dir(wd, j) / "manifest.json").is_file()]
        assert not missing, f"{wd.name}: jobs not done: {missing}"
        assert (wd / "reports" / "index.html").is_file()

    # every planned job ran inside a SLURM job that this run submitted and that completed
    prefix = proc.slurm_jobname_prefix  # type: ignore[attr-defined]
    submitted = set(submitted_job_ids(proc.stdout))
    ran = slurm_job_of(remote)
    records = jobcomp_records(slurm_env)
    for job in jobs:
        sid = ran.get(dirname(job))
        assert sid is not None, f"{job['stage']}/{dirname(job)} is in no SLURM log: {sorted(ran)}"
        assert sid in submitted, (dirname(job), sid, sorted(submitted))
        rec = records.get(sid, {})
        assert rec.get("JobState") == "COMPLETED" and rec.get("Name", "").startswith(prefix + "_"), rec
        if job["stage"] != "eval":  # a job on its own asks SLURM for its resources
            r = job["resources"]
            assert f"cpu={r['cpus']}," in rec["Tres"] and f"mem={r['mem_mb']}M" in rec["Tres"], (job, rec)
            assert rec["TimeLimit"] == str(r["runtime_min"]), (job, rec)

    # the CPU-only eval jobs ran batched: one SLURM job (group `eval`, group-components eval=20)
    evals = [j for j in jobs if j["stage"] == "eval"]
    eval_sids = {ran[dirname(j)] for j in evals}
    assert len(evals) > 1 and len(eval_sids) == 1, (
        f"eval jobs ran in SLURM jobs {eval_sids}; expected one group job (Snakefile `group: P.group`?)")
    group_cpus = int(re.search(r"cpu=(\d+)", records[eval_sids.pop()]["Tres"]).group(1))
    assert group_cpus <= node_cpus(slurm_env)  # jobs beyond the node's CPUs ran one after another

    # same bytes as the local run
    compared = [j for j in jobs if j["stage"] in COMPARED_STAGES]
    a, b = payload_hashes(local, compared), payload_hashes(remote, compared)
    assert a and set(a) == set(b), sorted(set(a) ^ set(b))
    differ = sorted(k for k in a if a[k] != b[k])
    assert not differ, f"files differ between the local and the SLURM run: {differ}"


BIG_SPEC = {
    "name": "big14b",
    "title": "Resources of a 14B model",
    "hypothesis": "The cluster gets what the spec asks for.",
    "base": {
        "data": {"task": "countdown", "task_args": {"n_numbers": 3}, "n": 8, "seed": 0,
                 "teacher": {"name": "convergent"}},
        "filters": [{"name": "verified"}],
        "model": {"source": "hub", "id": "Qwen/Qwen3-14B-Base"},
        "train": {"steps": 10, "batch_size": 4},
        "eval": {"benchmarks": [{"name": "countdown-id", "task": "countdown", "split": "id", "n": 4, "role": "id"}]},
    },
    "axes": {"res": {
        # what the spec asks for, and (a different training run) the defaults derived from the model size
        "asked": {"resources.train": {"gpus": 8, "gpu_model": "h200", "cpus": 64, "mem_mb": 512000,
                                      "runtime_min": 1440, "partition": "gpu"}},
        "default": {"train.seed": 1},
    }},
}
ASKED = BIG_SPEC["axes"]["res"]["asked"]["resources.train"]  # type: ignore[index]


def _big_workdir(tmp_path: Path) -> tuple[Path, list[dict]]:
    wd = copy_workflow(tmp_path)
    (wd / "experiments" / "big14b.yaml").write_text(yaml.safe_dump(BIG_SPEC, sort_keys=False))
    return wd, plan_jobs(wd, "experiments/big14b.yaml")


def test_sbatch_call_of_a_14b_training_job(tmp_path: Path) -> None:
    wd, jobs = _big_workdir(tmp_path)
    trains = {j["config"]["train"]["seed"]: j for j in jobs if j["stage"] == "train"}
    asked, default = trains[0], trains[1]
    assert asked["resources"] == {**ASKED, "slurm_extra": None}, asked["resources"]  # what `repro plan` shows
    assert default["resources"]["gpus"] == 8 and default["resources"]["partition"] is None

    # the training jobs' inputs stand in as done, so snakemake submits just the two training jobs
    for j in jobs:
        if j["stage"] in ("generate", "filter"):
            job_dir(wd, j).mkdir(parents=True)
            (job_dir(wd, j) / "manifest.json").write_text("{}\n")
    fake = fake_slurm_bin(tmp_path / "fakebin")
    env = {**_env(), "PATH": f"{fake}{os.pathsep}{os.environ['PATH']}"}
    env.pop("SLURM_CONF", None)
    targets = [str(job_dir(wd, j).relative_to(wd) / "manifest.json") for j in (asked, default)]
    r = subprocess.run([sys.executable, "-m", "snakemake", *targets, "--profile", "slurm", "--slurm-no-account",
                        "--slurm-init-seconds-before-status-checks", "1",  # else shutdown waits 40 s
                        "--retries", "0", "--keep-going", "--config", "specs=experiments/big14b.yaml"],
                       cwd=wd, env=env, capture_output=True, text=True, timeout=300, check=False)
    out = r.stdout + r.stderr
    assert r.returncode != 0 and "SLURM sbatch failed" in out, out[-4000:]  # the stand-in refuses every job
    calls = {}
    for c in fake_sbatch_calls(fake):
        opts = sbatch_options(c["argv"])
        calls[opts["--comment"].split("wildcards_")[-1]] = (c["argv"], opts)
    assert set(calls) == {dirname(asked), dirname(default)}, out[-4000:]

    argv, opts = calls[dirname(asked)]  # plugin 2.8: -p gpu -t 1440 --mem 512000 --cpus-per-task=64 --gpus=h200:8
    want = {"--gpus": "h200:8", "--mem": "512000", "-t": "1440", "--cpus-per-task": "64", "-p": "gpu"}
    assert {k: opts.get(k) for k in want} == want, argv
    assert f"'train:job={dirname(asked)}'" in opts["--wrap"], opts["--wrap"]  # the job runs that job

    argv, opts = calls[dirname(default)]  # defaults for 14B: 8 GPUs of any model, the default partition
    res = default["resources"]
    want = {"--gpus": str(res["gpus"]), "--mem": str(res["mem_mb"]), "-t": str(res["runtime_min"]),
            "--cpus-per-task": str(res["cpus"]), "-p": "debug"}  # debug*: the stand-in sinfo's default
    assert {k: opts.get(k) for k in want} == want, argv


def test_default_resources_of_a_14b_model() -> None:
    """Defaults for Qwen/Qwen3-14B-Base when the spec gives none: a full fine-tune on one node of 8 GPUs, and
    inference on one GPU (bf16 weights, 28 GB, fit one 80 GB card); data stages need no GPU."""
    from repro.config import Condition
    from repro.resources import default_resources, model_billions

    cond = Condition.model_validate({"model": {"source": "hub", "id": "Qwen/Qwen3-14B-Base"}})
    assert model_billions(cond) == 14.0
    train, ev = default_resources("train", cond), default_resources("eval", cond)
    assert train.gpus == 8 and train.cpus == 64 and train.mem_mb >= 512000 and train.runtime_min >= 24 * 60
    assert ev.gpus == 1 and ev.mem_mb >= 64000 and ev.runtime_min >= 60
    assert default_resources("generate", cond).gpus == 0 and default_resources("filter", cond).gpus == 0


def test_unset_resources_are_no_flags() -> None:
    """A resource a job lacks maps to no Snakemake resource (None: no sbatch flag), never to 0 or ''."""
    from repro.resources import to_snakemake
    from repro.snake import SnakePlan

    assert to_snakemake({"cpus": 2, "runtime_min": 5}) == {"cpus_per_task": 2, "runtime": 5}
    p = SnakePlan({"specs": [str(Path(__file__).resolve().parents[1] / SPEC)]})
    eval_job = next(j for j in p.plan.jobs.values() if j.stage == "eval")

    class WC:
        job = eval_job.dirname

    assert "gpu" not in p.resource_names("eval") and p.resource("gpu")(WC) is None
    assert p.resource("slurm_partition")(WC) is None and p.resource("mem_mb")(WC) == eval_job.resources["mem_mb"]


def test_group_batches_cpu_evals(tmp_path: Path) -> None:
    """CPU-only eval jobs join group `eval` (batched by the slurm profile); GPU evals and other stages don't."""
    from repro.snake import EVAL_GROUP, SnakePlan

    (tmp_path / "big14b.yaml").write_text(yaml.safe_dump(BIG_SPEC, sort_keys=False))
    for spec, eval_group in ((Path(__file__).resolve().parents[1] / SPEC, EVAL_GROUP), (tmp_path / "big14b.yaml", None)):
        p = SnakePlan({"specs": [str(spec)]})
        groups: dict[str, set] = {}
        for j in p.plan.jobs.values():
            groups.setdefault(j.stage, set()).add(p.group(type("WC", (), {"job": j.dirname})))
        assert groups.pop("eval") == {eval_group}, spec
        assert all(g == {None} for g in groups.values()), groups
    profile = yaml.safe_load((Path(__file__).resolve().parents[1] / "slurm" / "config.yaml").read_text())
    assert f"{EVAL_GROUP}=20" in profile["group-components"] and profile["cores"] >= 2


def test_every_study_plans_resources() -> None:
    """Every job of every spec in experiments/ carries the resources SLURM is asked for (what `repro plan`
    shows): CPUs, memory and a time limit always; GPUs for training and evaluating hub models."""
    from repro.plan import build_plan
    from repro.resources import to_snakemake

    repo = Path(__file__).resolve().parents[1]
    specs = sorted((repo / "experiments").glob("*.yaml"))
    assert specs
    for spec in specs:
        plan = build_plan([str(spec)], [])
        for job in plan.jobs.values():
            r = job.resources
            assert r["cpus"] >= 1 and r["mem_mb"] >= 100 and r["runtime_min"] >= 1, (spec.name, job.dirname, r)
            sm = to_snakemake(r)
            assert (sm["cpus_per_task"], sm["mem_mb"], sm["runtime"]) == (r["cpus"], r["mem_mb"], r["runtime_min"])
            model = (job.config.get("model") or {}) if job.stage in ("train", "eval") else {}
            if model.get("source") == "hub" and job.stage == "train":
                assert r["gpus"] >= 1, (spec.name, job.dirname, r)
