"""Supervised fine-tuning and tiny-base-model pretraining with TRL's SFTTrainer, on whatever the job has.

The recipe is the spec's `TrainConfig` (or a `PretrainConfig`, mapped by `pretrain_recipe`); everything
about how it runs is `RunOptions` (threads, the spec's `TrainRuntime`, the resume folder, tracking names),
which never enters a job id:

- device: CUDA when present (bf16 autocast over fp32 master weights, optional gradient checkpointing,
  flash-attention-2 or sdpa, TRL's padding-free batches with flash attention), else the CPU (fp32).
- processes: one, or the ranks a launcher started (`repro.launch`; WORLD_SIZE/RANK in the environment),
  with DDP, FSDP or DeepSpeed ZeRO-3. The global batch is the recipe's; the micro-batch and gradient
  accumulation follow from it and the world size (`batch_geometry`). Only rank 0 writes files.
- resume: with `RunOptions.state_dir`, the trainer's full state (weights, optimizer, scheduler, RNG, data
  position) is saved there every `save_state_steps` steps and when SIGTERM arrives (then training stops
  and `Preempted` is raised); a later call with the same state_dir continues from the last saved step and
  ends with the same checkpoints and log as an uninterrupted run (bit-equal on CPU).

`sft(examples, model, tokenizer, recipe, out_dir, opts)`: loss on completion tokens (+eos) of
{"prompt", "completion"} records (`recipe.completion_only_loss`); prompts go through
`repro.models.render_prompt`. The loss of a step is the token mean over the whole global batch.
`pretrain(...)`: the same trainer with the loss on every token.

Outputs under `out_dir`: `checkpoints/step-N/` (HF layout: model + tokenizer + `repro_checkpoint.json`;
with `save_only_model: false` also optimizer/scheduler/RNG state; step 0 is the model before training),
`train_log.jsonl` (one row per step: step, loss, lr, grad_norm, num_tokens, mean_token_accuracy, entropy)
and `train_summary.json`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from repro.config import PretrainConfig, TrainConfig, TrainRuntime
from repro.errors import ReproError
from repro.models import common_prefix, render_prompt, set_threads
from repro.paths import checkpoint_dir

log = logging.getLogger(__name__)

LOG_KEYS = {"loss": "loss", "learning_rate": "lr", "grad_norm": "grad_norm", "num_tokens": "num_tokens",
            "mean_token_accuracy": "mean_token_accuracy", "entropy": "entropy", "epoch": "epoch"}
PREEMPTED_EXIT = 143  # 128 + SIGTERM: what a job stopped by SIGTERM (with its state saved) exits with


class Preempted(ReproError):
    """Training stopped on SIGTERM after saving its state; rerunning the job continues from it."""

    exit_code = PREEMPTED_EXIT


@dataclass(frozen=True)
class RunOptions:
    """How a training run runs: never part of its result's identity."""

    threads: int | None = None
    runtime: TrainRuntime = field(default_factory=TrainRuntime)
    state_dir: Path | None = None  # resume state (outside the job's content-addressed folder); None: none kept
    run_name: str | None = None  # tracker run name: the job folder's name
    tags: tuple[str, ...] = ()  # tracker tags: the conditions' axis labels
    tracking_dir: Path | None = None  # where offline trackers write


def world() -> tuple[int, int, int]:
    """(rank, local rank, world size) of this process, from the launcher's environment (1 process: 0, 0, 1)."""
    env = os.environ
    return int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1))


def batch_geometry(batch_size: int, micro_batch_size: int | None, world_size: int) -> tuple[int, int]:
    """(per-process micro-batch, gradient-accumulation steps) that make `batch_size` sequences per optimizer
    step over `world_size` processes; ReproError when it does not divide evenly."""
    micro = micro_batch_size or batch_size // world_size
    if micro < 1 or batch_size % (micro * world_size):
        raise ReproError(f"global batch {batch_size} is not a multiple of micro-batch {micro} x {world_size} "
                         f"processes; change train.micro_batch_size or the job's processes", exit_code=2)
    return micro, batch_size // (micro * world_size)


def pretrain_recipe(p: PretrainConfig) -> TrainConfig:
    """The trainer recipe of a pretrain job: its own fields, loss on every token, no extra checkpoints."""
    return TrainConfig(steps=p.steps, lr=p.lr, schedule=p.schedule, warmup_ratio=p.warmup_ratio,
                       batch_size=p.batch_size, weight_decay=p.weight_decay, max_length=p.max_length, seed=p.seed,
                       micro_batch_size=p.micro_batch_size, completion_only_loss=False)


def save_checkpoint(model: Any, tokenizer: Any, path: Path, meta: dict[str, Any]) -> Path:
    """Save model + tokenizer (safetensors, HF layout) and a small JSON describing the checkpoint."""
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    (path / "repro_checkpoint.json").write_text(json.dumps(meta, indent=1, sort_keys=True))
    return path


def _to_bf16(path: Path) -> None:
    """Rewrite a saved checkpoint's float32 weights as bfloat16 (the usual HF layout of GPU-trained models)."""
    import torch
    from safetensors.torch import load_file, save_file

    for f in path.glob("*.safetensors"):
        tensors = {k: (v.to(torch.bfloat16) if v.dtype == torch.float32 else v) for k, v in load_file(f).items()}
        save_file(tensors, f, metadata={"format": "pt"})
    cfg = path / "config.json"
    if cfg.is_file():
        c = json.loads(cfg.read_text())
        c["dtype"] = "bfloat16"
        cfg.write_text(json.dumps(c, indent=2, sort_keys=True) + "\n")


def _tokenize(records: Iterable[dict[str, str]], tokenizer: Any, max_length: int, completion_only: bool,
              truncation_side: str = "right") -> list[dict[str, list[int]]]:
    """{"input_ids", "labels"} of each record, exactly as TRL's SFTTrainer prepares a prompt-completion
    dataset (eos appended to the completion; prompt tokens = the common prefix of the tokenized prompt and
    prompt+completion, labelled -100 when `completion_only`; truncated to `max_length` keeping the start,
    or the end with truncation_side="left"; examples left with nothing to learn dropped), but with two
    batched tokenizer calls instead of five `datasets.map` passes (seconds per job on small models)."""
    eos = tokenizer.eos_token
    prompts, texts = [], []
    for r in records:
        prompt, completion = render_prompt(r["prompt"]), r["completion"]
        prompts.append(prompt)
        texts.append(prompt + (completion if completion.endswith(eos) else completion + eos))
    if not texts:
        return []
    cut = slice(None, max_length) if truncation_side == "right" else slice(-max_length, None)
    out = []
    for p_ids, ids in zip(tokenizer(text=prompts)["input_ids"], tokenizer(text=texts)["input_ids"]):
        n = common_prefix(p_ids, ids)
        labels = [-100] * n + list(ids[n:]) if completion_only else list(ids)
        ids, labels = list(ids[cut]), labels[cut]
        if any(x != -100 for x in labels):
            out.append({"input_ids": ids, "labels": labels})
    return out


class PadCollator:
    """Right-pads {"input_ids", "labels"} examples into exactly the batch TRL's SFT collator builds without
    padding-free batches (input_ids padded with the pad token, labels with -100, attention_mask; int64),
    in one numpy pass instead of a tensor per example and key: the difference is a few ms of each step,
    ~6% of a small CPU model's step."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        import numpy as np
        import torch

        width = max(len(e["input_ids"]) for e in examples)
        ids = np.full((len(examples), width), self.pad_token_id, dtype=np.int64)
        labels = np.full((len(examples), width), -100, dtype=np.int64)
        mask = np.zeros((len(examples), width), dtype=np.int64)
        for r, e in enumerate(examples):
            n = len(e["input_ids"])
            ids[r, :n] = e["input_ids"]
            labels[r, :n] = e.get("labels", e["input_ids"])
            mask[r, :n] = 1
        return {"input_ids": torch.from_numpy(ids), "labels": torch.from_numpy(labels),
                "attention_mask": torch.from_numpy(mask)}


def fast_collator(collator: Any) -> Any:
    """`PadCollator` in place of TRL's collator where it builds the same batch (no padding-free batches, no
    position ids, no pad-to-multiple); otherwise TRL's own."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    if (type(collator) is DataCollatorForLanguageModeling and not collator.padding_free
            and not collator.return_position_ids and collator.pad_to_multiple_of is None):
        return PadCollator(collator.pad_token_id)
    return collator


# ------------------------------------------------------------------------------------------- run settings


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _attention(rt: TrainRuntime) -> str | None:
    """The attention kernel to use on CUDA (None on CPU: the model's default)."""
    if not _cuda():
        return None
    if rt.attention != "auto":
        return rt.attention
    try:
        import flash_attn  # noqa: F401
    except ImportError:
        return "sdpa"
    return "flash_attention_2"


def distributed_kwargs(rt: TrainRuntime, world_size: int) -> dict[str, Any]:
    """TrainingArguments for the multi-process strategy the runtime names (empty for one process or DDP)."""
    if world_size <= 1 or rt.distributed == "ddp":
        return {}
    if rt.distributed == "fsdp":
        return {"fsdp": "full_shard auto_wrap", "fsdp_config": {"use_orig_params": True, "sync_module_states": True}}
    if rt.distributed == "zero3":
        _need("deepspeed", "train_runtime.distributed: zero3")
        return {"deepspeed": {
            "zero_optimization": {"stage": 3, "overlap_comm": True, "contiguous_gradients": True,
                                  "stage3_gather_16bit_weights_on_model_save": True},
            "bf16": {"enabled": "auto"}, "train_micro_batch_size_per_gpu": "auto", "train_batch_size": "auto",
            "gradient_accumulation_steps": "auto", "gradient_clipping": "auto"}}
    path = Path(rt.distributed)
    if not path.is_file():
        raise ReproError(f"train_runtime.distributed: {rt.distributed!r} is neither ddp, fsdp, zero3 nor a config "
                         "file", exit_code=2)
    data = json.loads(path.read_text())
    if "zero_optimization" in data:
        _need("deepspeed", f"train_runtime.distributed: {path}")
        return {"deepspeed": str(path)}
    return {"fsdp": data.pop("fsdp", "full_shard auto_wrap"), "fsdp_config": data}


def _need(module: str, what: str) -> None:
    import importlib.util

    if importlib.util.find_spec(module) is None:
        raise ReproError(f"{what} needs the {module} package (pip install {module})", exit_code=2)


TRACKER_MODULES = {"wandb": "wandb", "mlflow": "mlflow", "tensorboard": "tensorboard", "trackio": "trackio"}


def tracking_setup(opts: RunOptions) -> dict[str, Any]:
    """TrainingArguments for experiment tracking (report_to, run_name, logging_dir) and, as a side effect, the
    trackers' environment: offline mode writing under `opts.tracking_dir`, the project, the tags."""
    rt = opts.runtime
    trackers = [t for t in rt.report_to if t != "none"]
    if not trackers:
        return {"report_to": "none"}
    for t in trackers:
        _need(TRACKER_MODULES[t], f"train_runtime.report_to: {t}")
    env = os.environ
    where = Path(opts.tracking_dir or "logs/tracking").resolve()
    tags = list(opts.tags)
    env["WANDB_PROJECT"] = env.get("WANDB_PROJECT", rt.tracking_project)
    env["MLFLOW_EXPERIMENT_NAME"] = env.get("MLFLOW_EXPERIMENT_NAME", rt.tracking_project)
    env["TRACKIO_PROJECT"] = env.get("TRACKIO_PROJECT", rt.tracking_project)
    if tags:
        env["WANDB_TAGS"] = ",".join(t[:64] for t in tags)
        env["MLFLOW_TAGS"] = json.dumps({f"condition{i}": t for i, t in enumerate(tags)})
    if rt.tracking_offline:
        where.mkdir(parents=True, exist_ok=True)
        env["WANDB_MODE"] = "offline"
        env["WANDB_DIR"] = str(where)
        env["MLFLOW_TRACKING_URI"] = (where / "mlruns").as_uri()
        env["TRACKIO_DIR"] = str(where / "trackio")
    return {"report_to": trackers, "run_name": opts.run_name, "logging_dir": str(where / "tensorboard")}


# ------------------------------------------------------------------------------------------- the trainer


class _Stop:
    """SIGTERM -> a flag the trainer checks after each step (agreed over all ranks before acting on it)."""

    def __init__(self) -> None:
        self.asked = False
        self.previous: Any = None

    def __enter__(self) -> "_Stop":
        try:
            self.previous = signal.signal(signal.SIGTERM, self._on_term)
        except ValueError:  # not the main thread: no preemption notice
            self.previous = None
        return self

    def _on_term(self, signum: int, frame: Any) -> None:
        log.warning("SIGTERM: saving the trainer state after this step, then stopping")
        self.asked = True

    def __exit__(self, *exc: Any) -> None:
        if self.previous is not None:
            signal.signal(signal.SIGTERM, self.previous)

    def agreed(self, device: Any) -> bool:
        """Whether any rank was asked to stop (an all-reduce over the ranks; no communication alone)."""
        import torch
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self.asked
        flag = torch.tensor([1.0 if self.asked else 0.0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())


def _callback(out_dir: Path, recipe: TrainConfig, tokenizer: Any, rows: list[dict], stop: _Stop, bf16: bool,
              holder: dict[str, Any]) -> Any:
    from transformers import TrainerCallback

    steps = set(recipe.checkpoints)
    every = max(1, recipe.steps // 20)
    meta = {"train": recipe.model_dump(mode="json")}

    class StepHook(TrainerCallback):
        """Saves checkpoints at the plan's steps, writes one log row per step, acts on SIGTERM."""

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> Any:
            # a resumed run: TRL's running token count restarts at 0; continue it from the restored log
            seen = [h["num_tokens"] for h in state.log_history if "num_tokens" in h]
            if seen and hasattr(holder["trainer"], "_total_train_tokens"):
                holder["trainer"]._total_train_tokens = int(seen[-1])
            return control

        def on_step_end(self, args: Any, state: Any, control: Any, model: Any = None, **kw: Any) -> Any:
            if state.global_step in steps:
                _save_step(holder["trainer"], checkpoint_dir(out_dir, state.global_step), tokenizer,
                           {**meta, "step": state.global_step}, recipe.save_only_model, bf16)
            if stop.agreed(args.device) and state.global_step < state.max_steps:
                holder["preempted"] = state.global_step
                control.should_save = True  # the full trainer state, into the resume folder
                control.should_training_stop = True
            return control

        def on_log(self, args: Any, state: Any, control: Any, logs: dict | None = None, **kw: Any) -> Any:
            if logs and "loss" in logs and state.is_world_process_zero:
                row = {"step": state.global_step}
                row.update({new: logs[old] for old, new in LOG_KEYS.items() if old in logs})
                rows.append(row)
                if state.global_step % every == 0 or state.global_step == recipe.steps:
                    log.info("step %d/%d loss %.4f", state.global_step, recipe.steps, row["loss"])
                with open(out_dir / "train_log.jsonl", "a") as f:
                    f.write(json.dumps(row, sort_keys=True) + "\n")
            return control

    return StepHook()


def _save_step(trainer: Any, path: Path, tokenizer: Any, meta: dict[str, Any], only_model: bool, bf16: bool) -> None:
    """One plan checkpoint in HF layout (every rank takes part: FSDP/ZeRO-3 gather the weights; rank 0 writes).
    LoRA runs are saved merged, so a checkpoint is always a plain model."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    main = trainer.is_world_process_zero()
    if hasattr(model, "merge_and_unload"):  # peft
        if main:
            import copy

            copy.deepcopy(model).merge_and_unload().save_pretrained(path)
    else:
        trainer.save_model(str(path))
    if not only_model:
        trainer._save_optimizer_and_scheduler(str(path))
        trainer._save_rng_state(str(path))
        if main:
            trainer.state.save_to_json(str(path / "trainer_state.json"))
    if main:
        if bf16:
            _to_bf16(path)
        tokenizer.save_pretrained(path)
        for extra in ("training_args.bin",):
            (path / extra).unlink(missing_ok=True)
        (path / "repro_checkpoint.json").write_text(json.dumps(meta, indent=1, sort_keys=True))


def last_state(state_dir: Path | None) -> tuple[Path | None, int]:
    """The newest complete trainer state in `state_dir` (checkpoint-N with its trainer_state.json) and N."""
    if state_dir is None or not state_dir.is_dir():
        return None, 0
    found = [(int(m.group(1)), p) for p in state_dir.iterdir()
             if (m := re.fullmatch(r"checkpoint-(\d+)", p.name)) and (p / "trainer_state.json").is_file()]
    if not found:
        return None, 0
    step, path = max(found)
    return path, step


def _train(records: Iterable[dict[str, str]], model: Any, tokenizer: Any, recipe: TrainConfig, out_dir: Path,
           opts: RunOptions) -> list[dict]:
    import datasets
    import transformers
    from transformers.trainer_callback import PrinterCallback
    from trl import SFTConfig, SFTTrainer

    quiet = not sys.stderr.isatty()
    if quiet:  # no progress bars in log files (stage jobs)
        datasets.disable_progress_bars()
        transformers.utils.logging.disable_progress_bar()
    n_threads = set_threads(opts.threads)
    rank, _, world_size = world()
    main = rank == 0
    rt = opts.runtime
    cuda = _cuda()
    bf16 = cuda and __import__("torch").cuda.is_bf16_supported()
    micro, accum = batch_geometry(recipe.batch_size, recipe.micro_batch_size, world_size)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = set(recipe.checkpoints)
    if bad := sorted(s for s in steps if not 0 <= s <= recipe.steps):
        raise ValueError(f"checkpoint steps outside [0, {recipe.steps}]: {bad}")
    resume, resumed_step = last_state(opts.state_dir)
    log_file = out_dir / "train_log.jsonl"
    rows: list[dict] = []
    if main and resume is not None and log_file.is_file():  # keep the rows up to the saved state; redo later ones
        rows = [r for r in map(json.loads, log_file.read_text().splitlines()) if r["step"] <= resumed_step]
    if main:
        log_file.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    data = _tokenize(records, tokenizer, recipe.max_length, recipe.completion_only_loss, recipe.truncation_side)
    if not data:
        raise ValueError("no training records (or every one was truncated to nothing to learn)")
    attention = _attention(rt)
    if attention and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation(attention)
    if 0 in steps and main and resume is None:
        save_checkpoint(model, tokenizer, checkpoint_dir(out_dir, 0),
                        {"step": 0, "train": recipe.model_dump(mode="json")})
        if bf16:
            _to_bf16(checkpoint_dir(out_dir, 0))
    peft_config = None
    if recipe.lora is not None:
        from peft import LoraConfig

        lo = recipe.lora
        peft_config = LoraConfig(r=lo.r, lora_alpha=lo.alpha, lora_dropout=lo.dropout,
                                 target_modules=lo.target_modules, task_type="CAUSAL_LM")
    fields = SFTConfig.__dataclass_fields__
    # SFTConfig turns checkpointing on by default; transformers 5.x renamed it (the old name warns)
    ckpt_name = "activation_checkpointing" if "activation_checkpointing" in fields else "gradient_checkpointing"
    state_dir = opts.state_dir or out_dir / "trainer"
    save_every = rt.save_state_steps if opts.state_dir is not None else 0
    extra: dict[str, Any] = {}
    if "padding_free" in fields:
        extra["padding_free"] = bool(cuda and rt.padding_free and attention == "flash_attention_2")
    config = SFTConfig(
        **{ckpt_name: bool(cuda and rt.gradient_checkpointing)},
        **extra,
        **distributed_kwargs(rt, world_size),
        **tracking_setup(opts),
        output_dir=str(state_dir),
        max_steps=recipe.steps,
        learning_rate=recipe.lr,
        lr_scheduler_type=recipe.schedule,
        warmup_steps=recipe.n_warmup(),
        per_device_train_batch_size=micro,
        gradient_accumulation_steps=accum,
        weight_decay=recipe.weight_decay,
        adam_beta1=recipe.adam_beta1,
        adam_beta2=recipe.adam_beta2,
        adam_epsilon=recipe.adam_epsilon,
        max_grad_norm=recipe.max_grad_norm,
        max_length=recipe.max_length,
        seed=recipe.seed,
        data_seed=recipe.seed,
        train_sampling_strategy="random" if recipe.shuffle else "sequential",
        completion_only_loss=recipe.completion_only_loss,
        packing=False,
        logging_steps=1,
        save_strategy="steps" if save_every else "no",
        save_steps=save_every or 500,
        save_total_limit=1,
        save_only_model=False,
        eval_strategy="no",
        use_cpu=not cuda,
        bf16=bf16,
        fp16=False,
        ddp_backend=None if cuda or world_size == 1 else "gloo",
        ddp_find_unused_parameters=False if world_size > 1 and recipe.lora is None else None,
        dataloader_num_workers=0,
        disable_tqdm=quiet,
        dataset_kwargs={"skip_prepare_dataset": True},  # _tokenize did TRL's preparation, in one batched pass
    )
    holder: dict[str, Any] = {}
    with _Stop() as stop:
        trainer = SFTTrainer(
            model=model,
            args=config,
            train_dataset=datasets.Dataset.from_list(data),
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[_callback(out_dir, recipe, tokenizer, rows, stop, bf16, holder)],
        )
        holder["trainer"] = trainer
        trainer.data_collator = fast_collator(trainer.data_collator)
        trainer.remove_callback(PrinterCallback)  # our callback logs; PrinterCallback would print every step
        if main:
            log.info("training on %s: %d process(es) x micro-batch %d x %d accumulation = global batch %d; %s%s",
                     "cuda" if cuda else "cpu", world_size, micro, accum, recipe.batch_size,
                     "bf16" if bf16 else "fp32", f"; resuming from step {resumed_step}" if resume else "")
        t0 = time.perf_counter()
        result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
        seconds = time.perf_counter() - t0
    if "preempted" in holder:
        raise Preempted(f"stopped by SIGTERM after step {holder['preempted']}; trainer state saved in "
                        f"{state_dir}; rerun the job to continue from it")
    if opts.state_dir is None and state_dir.is_dir() and main:
        shutil.rmtree(state_dir, ignore_errors=True)  # no resume folder: Trainer's output_dir is scratch
    tokens = rows[-1].get("num_tokens", 0) if rows else 0
    if main:
        summary = {"steps": result.global_step, "tokens": tokens, "final_loss": rows[-1]["loss"] if rows else None,
                   "completion_only": recipe.completion_only_loss, "examples": len(data)}
        (out_dir / "train_summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True))
        done = result.global_step - resumed_step
        log.info("trained %d steps in %.1f s on %d thread(s) x %d process(es) (%.0f tokens/s, prompt+completion, "
                 "no padding)", done, seconds, n_threads, world_size,
                 tokens * done / max(result.global_step, 1) / seconds if seconds else 0)
    return rows


def sft(examples: Iterable[dict[str, str]], model: Any, tokenizer: Any, recipe: TrainConfig, out_dir: Path,
        opts: RunOptions | None = None) -> list[dict]:
    """Fine-tune `model` in place on {"prompt", "completion"} records with `recipe`.

    Checkpoints at `recipe.checkpoints` go to out_dir/checkpoints/step-N (0 = before training). Returns the
    per-step log rows (also in out_dir/train_log.jsonl; on ranks other than 0: only this process's view)."""
    return _train(examples, model, tokenizer, recipe, out_dir, opts or RunOptions())


def pretrain(docs: Iterable[dict[str, str]], model: Any, tokenizer: Any, recipe: PretrainConfig | TrainConfig,
             out_dir: Path, opts: RunOptions | None = None) -> list[dict]:
    """Train a tiny base model on {"prompt", "completion"} documents with the loss on the whole sequence
    (rendered prompt + completion + eos). A PretrainConfig is mapped by `pretrain_recipe`."""
    if isinstance(recipe, PretrainConfig):
        recipe = pretrain_recipe(recipe)
    return _train(docs, model, tokenizer, recipe, out_dir, opts or RunOptions())
