"""Training at scale, on CPU: the launcher, resuming, the recipe fields and what stays out of a job id.

- Two ranks through torchrun (gloo) give the loss curve of one process at the same global batch.
- A train job SIGTERMed (and another SIGKILLed) midway, then rerun, continues from its saved state and ends
  with the checkpoint and loss log of an uninterrupted run, bit for bit.
- Resources and `train_runtime` (processes, launcher, tracking, resume interval) never change a job id;
  the new recipe fields at their defaults leave the miniatures' ids as they were.

The slow tests run `repro run` in subprocesses (signals need a real job process) on a tiny spec whose
generate and filter jobs a module fixture runs once. Run: `pytest tests/test_training_scale.py`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from repro.config import Condition, PretrainConfig, Resources, TrainConfig, TrainRuntime
from repro.errors import ReproError
from repro.launch import command, world_plan
from repro.resources import resources_for, to_snakemake
from repro.training import RunOptions, batch_geometry, distributed_kwargs, pretrain_recipe, tracking_setup

REPO = Path(__file__).resolve().parents[1]
SPEC = {
    "name": "scale",
    "base": {
        "data": {"task": "countdown", "task_args": {"n_numbers": 3, "ood_n_numbers": 4}, "n": 48, "seed": 0,
                 "teacher": {"name": "convergent"}},
        "filters": [{"name": "verified"}],
        "model": {"source": "scratch", "arch": "xs", "tokenizer": {"kind": "bpe", "vocab_size": 320}},
        "train": {"steps": 16, "checkpoints": [0, 8], "lr": 3.0e-3, "schedule": "constant_with_warmup",
                  "warmup_steps": 2, "batch_size": 8, "max_length": 128},
    },
}


# ---------------------------------------------------------------------------------------------- fast checks


def test_batch_geometry_keeps_the_global_batch() -> None:
    assert batch_geometry(256, 4, 8) == (4, 8)  # study B: 4 per GPU x 8 accumulation x 8 GPUs
    assert batch_geometry(256, 4, 64) == (4, 1)
    assert batch_geometry(16, None, 1) == (16, 1)
    assert batch_geometry(16, None, 2) == (8, 1)
    with pytest.raises(ReproError, match="not a multiple"):
        batch_geometry(256, 3, 8)
    with pytest.raises(ReproError, match="not a multiple"):
        batch_geometry(10, None, 4)


def test_epochs_set_steps() -> None:
    t = TrainConfig(epochs=8, dataset_size=20480, batch_size=256)
    assert t.steps == 640 and t.n_warmup() == 0
    assert TrainConfig(epochs=8, dataset_size=20480, batch_size=256, steps=640, warmup_ratio=0.1).n_warmup() == 64
    with pytest.raises(ValueError, match="disagrees"):
        TrainConfig(epochs=8, dataset_size=20480, batch_size=256, steps=600)
    with pytest.raises(ValueError, match="dataset_size"):
        TrainConfig(epochs=1)
    with pytest.raises(ValueError, match="micro_batch_size"):
        TrainConfig(batch_size=256, micro_batch_size=3)
    assert not TrainConfig(epochs=1, dataset_size=100).length_independent()[0]


def test_new_recipe_fields_at_defaults_keep_ids() -> None:
    """The fields added for full-scale training are dumped (hashed) only when set, so existing jobs keep
    their ids; a set field changes the dump."""
    old = {"steps", "checkpoints", "lr", "schedule", "warmup_steps", "warmup_ratio", "batch_size", "weight_decay",
           "max_length", "seed"}
    assert set(TrainConfig().model_dump(mode="json")) == old
    assert TrainConfig(shuffle=False).model_dump(mode="json")["shuffle"] is False
    assert TrainConfig(lora={"r": 8}).model_dump(mode="json")["lora"]["r"] == 8
    assert set(PretrainConfig(mixture=[]).model_dump(mode="json")) == {"mixture", "steps", "lr", "batch_size",
                                                                       "max_length", "seed"}
    r = pretrain_recipe(PretrainConfig(mixture=[], steps=100))
    assert (r.schedule, r.warmup_ratio, r.n_warmup(), r.completion_only_loss) == ("cosine", 0.05, 5, False)


def test_resources_and_runtime_stay_out_of_ids(tmp_path: Path) -> None:
    from repro.plan import build_plan

    plain = tmp_path / "plain.yaml"
    plain.write_text(yaml.safe_dump(SPEC))
    ranks = tmp_path / "ranks.yaml"
    ranks.write_text(yaml.safe_dump({**SPEC, "base": {
        **SPEC["base"], "resources": {"train": {"processes": 2, "nodes": 1, "cpus": 2, "gpus": 0}},
        "train_runtime": {"launcher": "accelerate", "distributed": "fsdp", "save_state_steps": 5,
                          "report_to": ["tensorboard"], "gradient_checkpointing": True}}}))
    a, b = build_plan([str(plain)]), build_plan([str(ranks)])
    work = lambda plan: sorted(j.id for j in plan.jobs.values() if j.stage != "report")  # noqa: E731
    assert work(a) == work(b)  # (the report job records the spec file's name)
    train = b.by_stage("train")[0]
    assert train.resources["processes"] == 2
    assert train.resources["train_runtime"]["launcher"] == "accelerate"
    assert "train_runtime" not in a.by_stage("train")[0].resources


def test_world_plan() -> None:
    assert world_plan({}) == (1, 1)
    assert world_plan({"processes": 2}) == (1, 2)
    assert world_plan({"gpus": 8}, cuda_devices=8) == (1, 8)
    assert world_plan({"gpus": 16, "nodes": 2}, cuda_devices=8) == (2, 8)
    assert world_plan({"gpus": 8}, cuda_devices=0) == (1, 1)  # a laptop runs the same job on its CPU
    assert world_plan({"gpus": 4}, cuda_devices=8) == (1, 4)


def test_launcher_commands(monkeypatch: pytest.MonkeyPatch) -> None:
    job = Path("/x/launch.json")
    argv = command("torchrun", 1, 2, job)
    assert argv[1:] == ["-m", "torch.distributed.run", "--nnodes=1", "--nproc-per-node=2", "--standalone",
                        "-m", "repro.launch", str(job)]
    acc = command("accelerate", 1, 4, job, cuda=True)
    assert "--num_processes=4" in acc and "--multi_gpu" in acc and acc[-3:] == ["-m", "repro.launch", str(job)]
    assert "--multi_gpu" in command("accelerate", 1, 2, job)  # accelerate's multi-process launcher, CPU too
    assert "--multi_gpu" not in command("accelerate", 1, 1, job)
    monkeypatch.delenv("SLURM_JOB_ID", raising=False)
    with pytest.raises(ReproError, match="SLURM allocation"):
        command("torchrun", 2, 8, job)
    monkeypatch.setenv("SLURM_JOB_ID", "7")
    monkeypatch.delenv("SLURM_JOB_NODELIST", raising=False)
    multi = command("torchrun", 2, 8, job, run_id="abc")
    assert multi[:4] == ["srun", "--nodes=2", "--ntasks-per-node=1", "--kill-on-bad-exit=1"]
    assert "--nnodes=2" in multi[-1] and "--rdzv-backend=c10d" in multi[-1] and "--rdzv-id=abc" in multi[-1]
    assert "--machine_rank=$SLURM_NODEID" in command("accelerate", 2, 8, job)[-1]
    with pytest.raises(ReproError, match="unknown launcher"):
        command("mpirun", 1, 2, job)


def test_slurm_resources_for_nodes() -> None:
    res = Resources(gpus=16, nodes=2, cpus=64, mem_mb=512000, runtime_min=1440).model_dump()
    sm = to_snakemake(res)
    assert (sm["nodes"], sm["tasks"], sm["gpu"]) == (2, 2, 16)
    assert "nodes" not in to_snakemake(Resources().model_dump())
    cond = Condition.model_validate({"model": {"source": "hub", "id": "Qwen/Qwen3-14B-Base"},
                                     "train_runtime": {"distributed": "fsdp"}})
    r = resources_for("train", cond)
    assert r["gpus"] == 8 and r["train_runtime"] == {"distributed": "fsdp"}
    assert "train_runtime" not in resources_for("eval", cond)


def test_distributed_strategies(tmp_path: Path) -> None:
    assert distributed_kwargs(TrainRuntime(distributed="fsdp"), 1) == {}
    assert distributed_kwargs(TrainRuntime(), 8) == {}
    assert distributed_kwargs(TrainRuntime(distributed="fsdp"), 8)["fsdp"] == "full_shard auto_wrap"
    cfg = tmp_path / "fsdp.json"
    cfg.write_text(json.dumps({"fsdp": "shard_grad_op auto_wrap", "use_orig_params": True}))
    kw = distributed_kwargs(TrainRuntime(distributed=str(cfg)), 8)
    assert kw == {"fsdp": "shard_grad_op auto_wrap", "fsdp_config": {"use_orig_params": True}}
    with pytest.raises(ReproError, match="neither"):
        distributed_kwargs(TrainRuntime(distributed="zero9"), 8)
    try:
        import deepspeed  # noqa: F401
    except ImportError:
        with pytest.raises(ReproError, match="pip install deepspeed"):
            distributed_kwargs(TrainRuntime(distributed="zero3"), 8)


def test_tracking_names_and_offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k in ("WANDB_MODE", "WANDB_TAGS", "WANDB_DIR", "WANDB_PROJECT", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(k, raising=False)
    assert tracking_setup(RunOptions()) == {"report_to": "none"}
    opts = RunOptions(runtime=TrainRuntime(report_to=["tensorboard"]), run_name="sft-xs-abc-0123456789ab",
                      tags=("mini_b/data=cot,size=s",), tracking_dir=tmp_path / "t")
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        with pytest.raises(ReproError, match="pip install tensorboard"):
            tracking_setup(opts)
        return
    kw = tracking_setup(opts)
    assert kw["report_to"] == ["tensorboard"] and kw["run_name"] == "sft-xs-abc-0123456789ab"
    assert kw["logging_dir"].startswith(str(tmp_path / "t"))
    assert os.environ["WANDB_MODE"] == "offline" and os.environ["WANDB_TAGS"] == "mini_b/data=cot,size=s"


# ---------------------------------------------------------------------------------------------- real runs


def _env(results: Path) -> dict[str, str]:
    env = {**os.environ, "REPRO_RESULTS": str(results), "PYTHONPATH": str(REPO / "src")}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    return env


def _repro(args: list[str], results: Path, cwd: Path, **kw: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "repro", *args], cwd=cwd, env=_env(results),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)  # type: ignore[call-overload]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The spec in a scratch folder, and a results folder where its generate and filter jobs are done."""
    root = tmp_path_factory.mktemp("scale")
    (root / "spec.yaml").write_text(yaml.safe_dump(SPEC))
    base = root / "base"
    plan = json.loads(subprocess.run([sys.executable, "-m", "repro", "plan", "spec.yaml", "--json"], cwd=root,
                                     env=_env(base), capture_output=True, text=True, check=True).stdout)
    ids = {j["stage"]: j["id"] for j in plan["jobs"]}
    for stage in ("generate", "filter"):
        p = _repro(["run", ids[stage], "--specs", "spec.yaml"], base, root)
        out, _ = p.communicate(timeout=300)
        assert p.returncode == 0, out
    return {"root": root, "base": base, "train": ids["train"]}


def _results(prepared: dict, name: str) -> Path:
    dst = prepared["root"] / name
    shutil.copytree(prepared["base"], dst)
    return dst


def _train_dir(results: Path) -> Path:
    (d,) = [p for p in (results / "train").iterdir() if not p.name.startswith(".")]
    return d


def _log(d: Path) -> list[dict]:
    return [json.loads(line) for line in (d / "train_log.jsonl").read_text().splitlines()]


def _run_train(prepared: dict, results: Path, *sets: str) -> str:
    args = ["run", prepared["train"], "--specs", "spec.yaml", "--threads", "1"]
    for s in sets:
        args += ["--set", s]
    p = _repro(args, results, prepared["root"])
    out, _ = p.communicate(timeout=600)
    assert p.returncode == 0, out
    return out


@pytest.fixture(scope="module")
def reference(prepared: dict) -> Path:
    """The uninterrupted one-process run."""
    results = _results(prepared, "reference")
    _run_train(prepared, results)
    return _train_dir(results)


@pytest.mark.slow
def test_two_ranks_match_one_process(prepared: dict, reference: Path) -> None:
    """torchrun starts 2 CPU ranks (gloo), each with micro-batch 4 of the global 8: the loss curve is the
    one-process curve (micro-batch 8) to float tolerance, and only rank 0 wrote the outputs."""
    results = _results(prepared, "ranks")
    out = _run_train(prepared, results, "base.resources.train={processes: 2, cpus: 2}")
    assert "torch.distributed.run --nnodes=1 --nproc-per-node=2" in out
    assert "rank 0 of 2" in out and "rank 1 of 2" in out
    assert "2 process(es) x micro-batch 4 x 1 accumulation = global batch 8" in out
    d = _train_dir(results)
    assert d.name == reference.name  # same job id
    two, one = _log(d), _log(reference)
    assert [r["step"] for r in two] == [r["step"] for r in one] == list(range(1, 17))
    assert [r["loss"] for r in two] == pytest.approx([r["loss"] for r in one], rel=1e-5, abs=1e-6)
    assert [r["grad_norm"] for r in two] == pytest.approx([r["grad_norm"] for r in one], rel=1e-4)
    assert [r["num_tokens"] for r in two] == [r["num_tokens"] for r in one]
    assert one[-1]["loss"] < one[0]["loss"] - 0.5  # it trains, so equal curves are not two flat lines
    assert sorted(p.name for p in (d / "checkpoints").iterdir()) == ["step-0", "step-16", "step-8"]
    assert not list((results / "train").glob(".partial-*"))  # the resume folder is gone once done


def _interrupted(prepared: dict, name: str, sig: int, at_step: int) -> tuple[Path, str, str]:
    """Run the train job (state saved every 5 steps), send `sig` once step `at_step` is logged, rerun."""
    results = _results(prepared, name)
    sets = ["base.train_runtime={save_state_steps: 5}"]
    args = ["run", prepared["train"], "--specs", "spec.yaml", "--threads", "1", "--set", sets[0]]
    p = _repro(args, results, prepared["root"])
    log_file = None
    deadline = time.time() + 400
    while time.time() < deadline and p.poll() is None:
        found = list((results / "train").glob(".partial-*/work/train_log.jsonl"))
        if found and len(found[0].read_text().splitlines()) >= at_step:
            log_file = found[0]
            break
        time.sleep(0.05)
    assert log_file is not None, "the job never reached the step"
    p.send_signal(sig)
    first, _ = p.communicate(timeout=120)
    assert p.returncode == (143 if sig == signal.SIGTERM else -signal.SIGKILL), first
    assert not list((results / "train").glob(f"sft-*-{prepared['train']}"))  # not done
    assert list((results / "train").glob(".partial-*/state/checkpoint-*"))
    second = _run_train(prepared, results, *sets)
    return _train_dir(results), first, second


def _same_outputs(d: Path, ref: Path) -> None:
    assert _log(d) == _log(ref)  # every logged number, bit for bit
    for step in (0, 8, 16):
        for f in ("model.safetensors", "config.json", "repro_checkpoint.json", "tokenizer.json"):
            a, b = d / "checkpoints" / f"step-{step}" / f, ref / "checkpoints" / f"step-{step}" / f
            assert a.read_bytes() == b.read_bytes(), (step, f)
    assert json.loads((d / "metrics.json").read_text()) == json.loads((ref / "metrics.json").read_text())


@pytest.mark.slow
def test_sigterm_saves_state_and_the_rerun_continues(prepared: dict, reference: Path) -> None:
    d, first, second = _interrupted(prepared, "sigterm", signal.SIGTERM, at_step=7)
    assert "stopped by SIGTERM after step" in first
    stopped = int(first.split("stopped by SIGTERM after step ")[1].split(";")[0])
    assert 7 <= stopped < 16
    assert f"resuming from step {stopped}" in second
    assert f"step {stopped + 1}/16" in second and f"step {stopped}/16 " not in second  # not from 0
    _same_outputs(d, reference)


@pytest.mark.slow
def test_sigkill_rerun_continues_from_the_last_interval_state(prepared: dict, reference: Path) -> None:
    d, _, second = _interrupted(prepared, "sigkill", signal.SIGKILL, at_step=7)
    assert "resuming from step 5" in second or "resuming from step 10" in second  # save_state_steps: 5
    assert "step 1/16 " not in second
    _same_outputs(d, reference)


# ---------------------------------------------------------------------------------------------- full-scale specs


@pytest.mark.parametrize("name", ["full_a", "full_b", "full_c"])
def test_full_scale_specs_validate_and_plan(name: str) -> None:
    from repro.plan import build_plan
    from repro.plansummary import render_summary

    plan = build_plan([str(REPO / "experiments" / f"{name}.yaml")])
    text = render_summary(plan, show_jobs=True)
    assert "training runs" in text and "checkpoint_GB" in text and "gpu_hours" in text
    assert all(j.resources.get("gpus") for j in plan.by_stage("train") if j.config["model"]["source"] == "hub")


def test_full_b_is_study_b() -> None:
    """Acceptance numbers of study B's plan: students, 640 steps = 8 epochs of 20,480 at batch 256, the
    evaluated steps, the optimiser, the teacher's sampling."""
    from repro.plan import build_plan

    plan = build_plan([str(REPO / "experiments" / "full_b.yaml")])
    sp = plan.specs[0]
    main = {c.name: c.condition for c in sp.conditions}
    ids = {main[f"qwen3-{s}-math-cot"].model.id for s in ("1.7b", "4b", "8b", "14b")}
    assert ids == {"Qwen/Qwen3-1.7B-Base", "Qwen/Qwen3-4B-Base", "Qwen/Qwen3-8B-Base", "Qwen/Qwen3-14B-Base"}
    for s in ("1.7b", "4b", "8b", "14b"):
        t = main[f"qwen3-{s}-math-cot"].train
        assert (t.steps, t.epochs, t.dataset_size, t.batch_size) == (640, 8, 20480, 256)
        assert (t.lr, t.schedule, t.warmup_ratio, t.n_warmup(), t.weight_decay) == (5e-5, "cosine", 0.1, 64, 0.01)
        assert (t.adam_beta1, t.adam_beta2, t.max_grad_norm, t.shuffle, t.max_length) == (0.9, 0.999, 1.0, False, 20000)
        assert batch_geometry(t.batch_size, t.micro_batch_size, 8) == (4, 8)
    cot14 = next(r for r in plan.jobs[sp.report_id].config["conditions"] if r["name"] == "qwen3-14b-math-cot")
    assert sorted({e["step"] for e in cot14["evals"]}) == [0, 10, 20, 40, 80, 160, 320, 480, 640]
    s = main["qwen3-14b-math-cot"].eval.sampling
    assert (s.temperature, s.top_p, s.n_samples) == (0.6, 0.95, 3)
    teacher = main["qwen3-14b-math-cot"].data.teacher
    ts = teacher.args["sampling"]
    assert (teacher.name, teacher.args["model"]) == ("llm", "Qwen/Qwen3-32B")
    assert (ts["temperature"], ts["top_p"], ts["top_k"], ts["max_new_tokens"]) == (0.6, 0.95, 20, 16384)
    aime = [b for b in main["qwen3-14b-math-cot"].eval.benchmarks if b.name == "aime24"][0]
    assert aime.sampling is not None and aime.sampling.n_samples == 10
    assert main["14b-ep16-cosine"].train.steps == 1280 and main["14b-2.5k-ep8-bs32"].train.steps == 640
    assert main["14b-20k-ep1-bs32"].train.steps == 640
