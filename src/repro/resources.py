"""Cluster resources of a job: from the spec's `resources.<stage>`, or defaults from model size and stage.

Resources never enter a job id. `to_snakemake()` maps them to the SLURM executor plugin's names, which
become sbatch flags (checked against snakemake-executor-plugin-slurm 2.8 in tests/test_slurm_e2e.py):

    gpus, gpu_model -> gpu, gpu_model        -> --gpus=<model>:<n> (or --gpus=<n>)
    nodes (> 1)     -> nodes, tasks          -> --nodes=<n> --ntasks=<n> (one launcher per node)
    cpus            -> cpus_per_task         -> --cpus-per-task=<n>
    mem_mb          -> mem_mb                -> --mem <MB>
    runtime_min     -> runtime               -> -t <minutes>
    partition       -> slurm_partition       -> -p <name>
    slurm_extra     -> slurm_extra           -> appended verbatim (not --qos/--gres/--mem/...: use the above)

A field that is unset maps to no resource at all (so no flag), never to 0. `processes` (ranks per node) is
not a SLURM resource: the train job starts them itself (`repro.launch`). Train and pretrain jobs also carry
the condition's `train_runtime` (launcher, sharding, tracking, resume interval) when it is not the default:
like every resource, it never enters a job id.
"""

from __future__ import annotations

import re
from typing import Any

from repro.config import Condition, Resources


def model_billions(cond: Condition | None) -> float:
    """Parameter count in billions guessed from a hub id like Qwen/Qwen3-14B-Base (0 for tiny models)."""
    if cond is None or not cond.model.id:
        return 0.0
    m = re.search(r"(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])", cond.model.id.split("/")[-1])
    return float(m.group(1)) if m else 7.0


def default_resources(stage: str, cond: Condition | None) -> Resources:
    """Defaults: tiny local models get CPUs only; hub models get GPUs scaled by size."""
    from repro.stages import get_stage

    b = model_billions(cond)
    compute = get_stage(stage).compute
    if b == 0.0:
        cpus = 1 if compute == "light" else 2
        return Resources(cpus=cpus, mem_mb=4000, runtime_min=60)
    if compute == "light":
        return Resources(cpus=4, mem_mb=16000, runtime_min=120)
    if compute == "train":
        # full fine-tuning: bf16 weights + fp32 Adam states ~16 bytes/parameter, sharded over the GPUs
        # (14B: ~224 GB -> one node of 8 x 80 GB); host RAM for every rank loading its copy of the weights.
        gpus = 1 if b <= 2 else 2 if b <= 4 else 4 if b <= 9 else 8
        return Resources(gpus=gpus, cpus=8 * gpus, mem_mb=64000 * gpus, runtime_min=24 * 60)
    # inference (eval, analyze): bf16 weights ~2 bytes/parameter plus KV cache (14B: 28 GB -> one 80 GB GPU)
    gpus = 1 if b <= 16 else 2 if b <= 40 else 4
    return Resources(gpus=gpus, cpus=8 * gpus, mem_mb=64000 * gpus, runtime_min=6 * 60)


def resources_for(stage: str, cond: Condition | None) -> dict[str, Any]:
    """A job's resources (JSON): the spec's for the stage, else the defaults; train/pretrain jobs also get
    the condition's non-default `train_runtime`."""
    given = getattr(cond.resources, stage) if cond is not None else None
    res = given if given is not None else default_resources(stage, cond)
    out = res.model_dump(mode="json")
    for key, default in (("nodes", 1), ("processes", None)):  # shown only when asked for (one-process jobs as before)
        if out.get(key) == default:
            out.pop(key, None)
    if stage in ("train", "pretrain") and cond is not None:
        rt = cond.train_runtime.model_dump(mode="json", exclude_defaults=True)
        if rt:
            out["train_runtime"] = rt
    return out


def to_snakemake(res: dict[str, Any]) -> dict[str, Any]:
    """Snakemake/SLURM-plugin resource names for one job's resources."""
    names = {"mem_mb": "mem_mb", "runtime_min": "runtime", "cpus": "cpus_per_task", "partition": "slurm_partition",
             "slurm_extra": "slurm_extra"}
    out: dict[str, Any] = {names[k]: res[k] for k in names if res.get(k)}
    if (res.get("nodes") or 1) > 1:
        out["nodes"] = out["tasks"] = res["nodes"]
    if res.get("gpus"):
        out["gpu"] = res["gpus"]
        if res.get("gpu_model"):
            out["gpu_model"] = res["gpu_model"]
    return out


# The named tiny sizes' widths and depths, as in repro.models.ARCHS (which imports torch; planning must not).
TINY_ARCHS: dict[str, dict[str, int]] = {name: {"hidden_size": d, "num_hidden_layers": n}
                                         for name, d, n in [("xs", 64, 2), ("s", 128, 4), ("m", 256, 4), ("l", 256, 8)]}


def model_params(model: dict[str, Any]) -> float:
    """Parameter count of a job's model config (JSON): from the hub id's size (Qwen3-14B-Base -> 14e9), or
    from a tiny arch's dimensions (tied embeddings, a vocabulary of the tokenizer's size)."""
    if model.get("id"):
        m = re.search(r"(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])", str(model["id"]).split("/")[-1])
        return float(m.group(1)) * 1e9 if m else 7e9
    arch = model.get("arch", "xs")
    a = TINY_ARCHS.get(arch, {}) if isinstance(arch, str) else arch
    d, layers = a.get("hidden_size", 64), a.get("num_hidden_layers", 2)
    ff = a.get("intermediate_size", 4 * d)
    vocab = (model.get("tokenizer") or {}).get("vocab_size", 512)
    return float(vocab * d + layers * (4 * d * d + 3 * d * ff + 2 * d) + d)


def checkpoint_disk(train_config: dict[str, Any]) -> dict[str, float]:
    """Disk of one train job (bytes): each plan checkpoint (HF layout: bf16 weights for hub models, trained on
    GPUs; fp32 for the tiny ones; + fp32 Adam moments and a master copy when `save_only_model` is false),
    all of them, and the resume state kept beside the job while it runs (fp32 weights + Adam moments)."""
    model, train = train_config["model"], train_config["train"]
    n = model_params(model)
    weights = n * (2 if model.get("source") in ("hub", "path") else 4)
    per = weights + (0 if train.get("save_only_model", True) else 12 * n)
    ckpts = len(set(train.get("checkpoints", [])) | {train["steps"]})
    return {"checkpoint_bytes": per, "checkpoints_bytes": per * ckpts, "resume_state_bytes": 12 * n}
