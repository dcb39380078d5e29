"""The typed configuration of one experimental condition, and of each stage's job.

`Condition` is what one cell of a study grid resolves to: data (task + teacher), filters, model, training,
evaluation, analyses and resources. The planner cuts a condition into per-stage job configs (the
`*Job` models below); a stage function receives exactly one of those. Every model is strict
(`extra="forbid"`) and every field has a description, which becomes the JSON Schema and the error text.

Fields that only say how or where a job runs (`resources`, `runtime`) are kept out of job ids.
"""

from __future__ import annotations

import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator


class Strict(BaseModel):
    """Base model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


Schedule = Literal["constant", "constant_with_warmup", "cosine", "linear"]

# Fields of TrainConfig / PretrainConfig that were there before the full-scale recipe fields: always dumped
# (hashed). The newer fields are dumped only when they differ from their default, so specs that leave them
# alone keep their job ids (the miniatures' ids did not change when the fields were added).
TRAIN_ID_FIELDS = frozenset({"steps", "checkpoints", "lr", "schedule", "warmup_steps", "warmup_ratio", "batch_size",
                             "weight_decay", "max_length", "seed"})
PRETRAIN_ID_FIELDS = frozenset({"mixture", "steps", "lr", "batch_size", "max_length", "seed"})


def _drop_default_extras(model: BaseModel, data: dict[str, Any], keep: frozenset[str]) -> dict[str, Any]:
    """`data` (a dump of `model`) without the fields outside `keep` that hold their default value."""
    fields = type(model).model_fields
    return {k: v for k, v in data.items()
            if k in keep or k not in fields or getattr(model, k) != fields[k].get_default(call_default_factory=True)}


# ---------------------------------------------------------------------------------------------------------
# Pieces of a condition


def _omit_unset(d: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    """Drop `names` whose value is None or empty from a dump: fields added after a model's first version
    leave the dump (and so every job id) unchanged while they are not used."""
    return {k: v for k, v in d.items() if not (k in names and v in (None, {}, []))}


class Named(Strict):
    """A registered component by name, with its own arguments (validated by the component's Args model)."""

    name: str = Field(description="Registered name of the component (see `repro list`).")
    args: dict[str, Any] = Field(default_factory=dict, description="Arguments of the component.")


class DataConfig(Strict):
    """What the generate stage makes: problems of a task, solved by a teacher."""

    task: str = Field("countdown", description="Registered task that makes the training problems.")
    task_args: dict[str, Any] = Field(default_factory=dict, description="Arguments of the task.")
    n: int = Field(200, ge=1, description="Number of training problems to generate.")
    seed: int = Field(0, description="Seed of problem generation and of the teacher's sampling.")
    teacher: Named = Field(
        default_factory=lambda: Named(name="convergent"), description="Teacher that writes the traces."
    )
    reference_teacher: Named | None = Field(
        None,
        description="A second teacher on the same problems, for filters that compare against another "
        "source (study A's step-count ratio, proxy 1). Generated as its own job.",
    )


class TokenizerConfig(Strict):
    """A tokenizer trained from the data, for models made from scratch."""

    kind: Literal["bpe", "word"] = Field("bpe", description="Byte-level BPE, or whitespace word-level.")
    vocab_size: int = Field(512, ge=32, description="Vocabulary size for BPE (word-level uses all words).")
    pretokenizer: Literal["gpt2", "qwen2"] | None = Field(
        None, description="BPE pre-tokenization: gpt2 (unset: the miniatures' default) or qwen2 (digits one by "
        "one), which stock AutoTokenizer reproduces for our qwen2-type checkpoints, so vLLM, lm-eval and "
        "`transformers serve` tokenize them as we do.")

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        return _omit_unset(handler(self), ("pretokenizer",))


class PretrainConfig(Strict):
    """How the pretrain stage makes a tiny base model from scratch on a task mixture (loss on every token).

    `repro.training.pretrain_recipe` maps it to the trainer's recipe explicitly; the fields below the first
    six are optional and, at their defaults, left out of the job id (see `_drop_default_extras`)."""

    mixture: list[MixtureItem] = Field(description="Tasks in the pretraining mixture, answer-only text.")
    steps: int = Field(300, ge=1, description="Optimizer steps of pretraining.")
    lr: float = Field(1e-3, gt=0, description="Peak learning rate.")
    batch_size: int = Field(32, ge=1, description="Global batch: sequences per optimizer step, over all processes.")
    max_length: int = Field(128, ge=8, description="Maximum tokens per sequence.")
    seed: int = Field(0, description="Seed of data sampling and initialisation.")
    schedule: Schedule = Field("cosine", description="Learning-rate schedule.")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="Warmup as a share of all steps.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    micro_batch_size: int | None = Field(
        None, ge=1, description="Sequences per process per forward pass (default: the global batch split over "
        "the processes); gradient accumulation = batch_size / (micro_batch_size x processes).")

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        return _drop_default_extras(self, handler(self), PRETRAIN_ID_FIELDS)


class MixtureItem(Strict):
    """One task of a pretraining mixture."""

    task: str = Field(description="Registered task.")
    task_args: dict[str, Any] = Field(default_factory=dict, description="Arguments of the task.")
    n: int = Field(1000, ge=1, description="Number of answer-only documents from this task.")
    split: str = Field("train", description="Split of the task to draw from.")


PretrainConfig.model_rebuild()


class ModelConfig(Strict):
    """The student model before SFT."""

    source: Literal["scratch", "pretrain", "hub", "path"] = Field(
        "scratch",
        description="scratch: random init of `arch` with a tokenizer trained on the SFT data; pretrain: a "
        "tiny base model made by the pretrain stage; hub: a model id loaded with from_pretrained; "
        "path: a local model folder.",
    )
    arch: str | dict[str, Any] = Field(
        "xs", description="Named tiny size (xs, s, m, ...) or Qwen2Config fields, for scratch/pretrain."
    )
    id: str | None = Field(None, description="Hub id or local path, for source hub/path.")
    tokenizer: TokenizerConfig = Field(default_factory=TokenizerConfig, description="Tokenizer to train.")
    pretrain: PretrainConfig | None = Field(None, description="Pretraining recipe, for source pretrain.")
    init_seed: int = Field(0, description="Seed of the random initialisation.")
    trust_remote_code: bool = Field(
        False, description="Let transformers run the Python code shipped with this named model (source hub or "
        "path only). Off by default: turn it on only for a model whose code you trust. Omitted from the job "
        "config (and id) while off.")

    @model_serializer(mode="wrap")
    def _omit_off_flags(self, handler: Any) -> dict[str, Any]:
        # trust_remote_code is left out while off, so adding the field re-addresses no existing job
        out = handler(self)
        if isinstance(out, dict) and out.get("trust_remote_code") is False:
            del out["trust_remote_code"]
        return out

    @model_validator(mode="after")
    def _check_source(self) -> "ModelConfig":
        if self.trust_remote_code and self.source not in ("hub", "path"):
            raise ValueError("trust_remote_code is only for a named model (source hub or path with an id)")
        if self.source in ("hub", "path") and not self.id:
            raise ValueError(f"model.source={self.source!r} needs model.id")
        if self.source == "pretrain" and self.pretrain is None:
            raise ValueError("model.source='pretrain' needs model.pretrain")
        return self




class LoraConfig(Strict):
    """LoRA adapters through `peft` instead of full fine-tuning; checkpoints are saved merged (full weights)."""

    r: int = Field(16, ge=1, description="Rank of the adapters.")
    alpha: float = Field(16.0, gt=0, description="Scaling numerator (lora_alpha).")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapter input.")
    target_modules: list[str] | str = Field(
        "all-linear", description="Modules to adapt: a list of names, or 'all-linear' (every linear projection).")


class TrainConfig(Strict):
    """Supervised fine-tuning with TRL's SFTTrainer: the recipe (everything that changes the result).

    How it runs (device, precision, processes, launcher, sharding, tracking, resume interval) is not here: see
    `TrainRuntime` and `Resources`. The batch is global: the micro-batch and gradient accumulation are derived
    from it and the number of processes, so the recipe is the same on a laptop and on 8 GPUs."""

    steps: int = Field(100, ge=1, description="Optimizer steps (the training length). With `epochs` and "
                       "`dataset_size` it may be left out: ceil(epochs x dataset_size / batch_size).")
    checkpoints: list[int] = Field(
        default_factory=list,
        description="Extra steps to save and evaluate (0 = the model before SFT); the last step always is.",
    )
    lr: float = Field(1e-3, gt=0, description="Peak learning rate.")
    schedule: Schedule = Field("constant_with_warmup", description="Learning-rate schedule.")
    warmup_steps: int = Field(0, ge=0, description="Warmup steps (absolute).")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Warmup as a share of all steps.")
    batch_size: int = Field(16, ge=1, description="Global batch size (sequences per optimizer step, all processes).")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_length: int = Field(256, ge=8, description="Maximum tokens per example (prompt + completion).")
    seed: int = Field(0, description="Seed of data order and dropout.")
    epochs: float | None = Field(None, gt=0, description="Training length in passes over `dataset_size` examples "
                                 "(sets `steps`; the trainer cycles the data when steps outlast it).")
    dataset_size: int | None = Field(None, ge=1, description="Examples one epoch counts (the training set's size, "
                                     "e.g. 20480); needed with `epochs`.")
    micro_batch_size: int | None = Field(
        None, ge=1, description="Sequences per process per forward pass (default: the global batch split evenly "
        "over the processes). Gradient accumulation = batch_size / (micro_batch_size x processes), which must "
        "divide evenly. Only memory and speed depend on it (the loss is the token mean over the global batch).")
    adam_beta1: float = Field(0.9, ge=0, lt=1, description="AdamW beta1.")
    adam_beta2: float = Field(0.999, ge=0, lt=1, description="AdamW beta2.")
    adam_epsilon: float = Field(1e-8, gt=0, description="AdamW epsilon.")
    max_grad_norm: float = Field(1.0, ge=0, description="Gradient clipping by global norm (0 = off).")
    truncation_side: Literal["right", "left"] = Field(
        "right", description="Which end of a sequence longer than max_length is cut: right keeps the start.")
    shuffle: bool = Field(True, description="Shuffle the training data each epoch (seeded); false: file order.")
    completion_only_loss: bool = Field(True, description="Loss on completion tokens (+eos) only; false: on the "
                                       "prompt too.")
    lora: LoraConfig | None = Field(None, description="Train LoRA adapters (peft) instead of all weights.")
    save_only_model: bool = Field(
        True, description="Checkpoints hold the model (HF layout) only; false: also the optimizer, scheduler and "
        "RNG state, so a checkpoint can be trained on (~6x the disk of the weights in bf16).")

    @model_validator(mode="before")
    @classmethod
    def _steps_from_epochs(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("epochs") is None:
            return data
        if data.get("dataset_size") is None:
            raise ValueError("train.epochs needs train.dataset_size (examples per epoch)")
        per_step = data.get("batch_size", cls.model_fields["batch_size"].default)
        steps = math.ceil(float(data["epochs"]) * int(data["dataset_size"]) / int(per_step))
        if data.get("steps") is not None and int(data["steps"]) != steps:
            raise ValueError(f"train.steps {data['steps']} disagrees with epochs {data['epochs']} x dataset_size "
                             f"{data['dataset_size']} / batch_size {per_step} = {steps} steps")
        return {**data, "steps": steps}

    @model_validator(mode="after")
    def _check_warmup(self) -> "TrainConfig":
        if self.schedule == "constant" and (self.warmup_steps or self.warmup_ratio):
            raise ValueError("schedule 'constant' has no warmup; use 'constant_with_warmup'")
        if self.micro_batch_size is not None and self.batch_size % self.micro_batch_size:
            raise ValueError(f"train.batch_size {self.batch_size} is not a multiple of micro_batch_size "
                             f"{self.micro_batch_size}")
        return self

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        return _drop_default_extras(self, handler(self), TRAIN_ID_FIELDS)

    def n_warmup(self) -> int:
        """Warmup steps: the larger of warmup_steps and ceil(warmup_ratio x steps)."""
        return max(self.warmup_steps, math.ceil(self.warmup_ratio * self.steps))

    def length_independent(self) -> tuple[bool, str]:
        """Whether runs that differ only in `steps` are prefixes of one run, and why."""
        if self.schedule in ("cosine", "linear"):
            return False, f"schedule {self.schedule!r} decays over the whole run, so each length is its own run"
        if self.warmup_ratio > 0:
            return False, "warmup_ratio makes warmup depend on the run length, so each length is its own run"
        if self.epochs is not None:
            return False, "the length is given in epochs, so each length is its own run"
        return True, f"schedule {self.schedule!r} does not depend on the run length: lengths are checkpoints of one run"


class TrainRuntime(Strict):
    """How train and pretrain jobs run: never part of a job id (the same job on a laptop and on 8 GPUs).

    The device is what the job finds: CUDA when present (bf16 autocast, fp32 master weights), else the CPU
    (fp32). The number of processes comes from the stage's resources (`processes`, `nodes`, `gpus`)."""

    launcher: Literal["torchrun", "accelerate"] = Field(
        "torchrun", description="Launcher that starts the ranks when a job has more than one process.")
    distributed: str = Field(
        "ddp", description="Multi-process strategy: ddp (replicas), fsdp (FSDP full sharding of parameters, "
        "gradients and optimizer state), zero3 (DeepSpeed ZeRO-3; needs `pip install deepspeed`), or a path to a "
        "DeepSpeed .json / FSDP .json config (relative paths: from the working directory).")
    gradient_checkpointing: bool = Field(False, description="Recompute activations in the backward pass (less "
                                         "memory, ~30% slower); CUDA only.")
    attention: Literal["auto", "sdpa", "flash_attention_2", "eager"] = Field(
        "auto", description="Attention kernel on CUDA: auto = flash_attention_2 when installed, else sdpa.")
    padding_free: bool = Field(True, description="On CUDA with flash attention: TRL's padding-free batches "
                               "(sequences concatenated, no pad tokens). Ignored elsewhere.")
    save_state_steps: int = Field(
        0, ge=0, description="Save the full trainer state (optimizer, scheduler, RNG, data position) every N "
        "steps for resuming (0 = only on SIGTERM). Kept beside the job folder, removed when the job completes.")
    report_to: list[Literal["none", "wandb", "mlflow", "tensorboard", "trackio"]] = Field(
        default_factory=lambda: ["none"], description="Experiment trackers (run name = the job folder's name, "
        "tags = the conditions' axis labels).")
    tracking_offline: bool = Field(True, description="Trackers write locally (logs/tracking/<job>/); false: "
                                   "they use their own server settings (WANDB_*, MLFLOW_TRACKING_URI, ...).")
    tracking_project: str = Field("repro", description="Project / experiment name given to the trackers.")


class SamplingConfig(Strict):
    """How a model generates: the backend that runs it, decoding settings and the chat prompt.

    Fields added for real models (min_p, stop, reasoning_effort, system_prompt, chat_template_kwargs,
    backend_args) are left out of the dump while unset, so the miniatures' job ids do not move."""

    backend: str = Field("transformers", description="Registered generation backend (transformers, vllm, openai, "
                         "or a plugin's; see `repro list`).")
    backend_args: dict[str, Any] = Field(
        default_factory=dict, description="Arguments of the backend (validated by its Args model), e.g. "
        "{tensor_parallel_size: 8} for vllm or {base_url: ..., api_key_env: ...} for openai.")
    temperature: float = Field(0.0, ge=0, description="0 = greedy decoding.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    top_k: int = Field(0, ge=0, description="Top-k sampling (0 = off).")
    min_p: float | None = Field(None, ge=0, le=1, description="Min-p sampling (None = off).")
    n_samples: int = Field(1, ge=1, description="Samples per prompt (avg@n / pass@k; OpenAI's and vLLM's n).")
    max_new_tokens: int = Field(128, ge=1, description="Generation length limit (OpenAI's and vLLM's max_tokens).")
    seed: int = Field(0, description="Sampling seed.")
    stop: list[str] | None = Field(None, description="Stop strings (the string itself is not returned).")
    reasoning_effort: Literal["low", "medium", "high"] | None = Field(
        None, description="Reasoning effort of models that have one (gpt-oss): sent to OpenAI-compatible "
        "servers, and a chat-template argument for local backends.")
    system_prompt: str | None = Field(None, description="System message put before the prompt (None = none).")
    chat_template_kwargs: dict[str, Any] | None = Field(
        None, description="Extra chat-template arguments, e.g. {enable_thinking: false} for Qwen3.")

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        return _omit_unset(handler(self), ("backend_args", "min_p", "stop", "reasoning_effort", "system_prompt",
                                           "chat_template_kwargs"))


class SamplingOverride(Strict):
    """Per-benchmark changes to the condition's sampling: only the fields given here differ."""

    temperature: float | None = Field(None, ge=0, description="0 = greedy decoding.")
    top_p: float | None = Field(None, gt=0, le=1, description="Nucleus sampling mass.")
    top_k: int | None = Field(None, ge=0, description="Top-k sampling (0 = off).")
    min_p: float | None = Field(None, ge=0, le=1, description="Min-p sampling.")
    n_samples: int | None = Field(None, ge=1, description="Samples per prompt.")
    max_new_tokens: int | None = Field(None, ge=1, description="Generation length limit.")
    seed: int | None = Field(None, description="Sampling seed.")
    stop: list[str] | None = Field(None, description="Stop strings.")
    reasoning_effort: Literal["low", "medium", "high"] | None = Field(None, description="Reasoning effort.")
    system_prompt: str | None = Field(None, description="System message.")
    chat_template_kwargs: dict[str, Any] | None = Field(None, description="Extra chat-template arguments.")

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        return {k: v for k, v in handler(self).items() if v is not None}


def effective_sampling(bench: "BenchmarkConfig", sampling: SamplingConfig) -> SamplingConfig:
    """The sampling a benchmark is evaluated with: the condition's, changed by the benchmark's override.
    The backend (and so the loaded model) is the condition's: one eval job loads its checkpoint once."""
    if bench.sampling is None:
        return sampling
    return sampling.model_copy(update=bench.sampling.model_dump())


class BenchmarkConfig(Strict):
    """One evaluation set: a split of a registered task."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$",
                      description="Label of the benchmark in plans and reports (unique per condition); also the "
                      "name of its folder in the eval job's output (letters, digits, _ . + -).")
    task: str = Field(description="Registered task.")
    split: str = Field("id", description="Split of the task.")
    n: int = Field(100, ge=1, description="Number of items.")
    task_args: dict[str, Any] | None = Field(
        None, description="Task arguments; when omitted and the task is the training task, the training data's."
    )
    seed: int | None = Field(None, description="Task seed; when omitted and same task, the training data's.")
    role: Literal["id", "ood", "safety", "probe"] = Field(
        "id", description="How the report reads it: in-distribution, out-of-distribution, safety, other probe."
    )
    sampling: SamplingOverride | None = Field(
        None, description="Sampling of this benchmark where it differs from the condition's eval.sampling "
        "(e.g. {n_samples: 16, temperature: 0.6} for AIME avg@16).")

    @model_serializer(mode="wrap")
    def _dump(self, handler: Any) -> dict[str, Any]:
        return _omit_unset(handler(self), ("sampling",))


class EvalConfig(Strict):
    """Which benchmarks to evaluate at which checkpoints."""

    benchmarks: list[BenchmarkConfig] = Field(default_factory=list, description="Evaluation sets.")
    sampling: SamplingConfig = Field(default_factory=SamplingConfig, description="Generation settings.")
    steps: list[int] | None = Field(
        None, description="Checkpoints to evaluate (default: every checkpoint of the condition)."
    )
    batch_size: int = Field(64, ge=1, description="Prompts per generation batch (how it runs; part of the eval "
                            "job's id because float results can depend on batch composition).")


class Resources(Strict):
    """What a job asks of a cluster. Never part of a job id."""

    gpus: int = Field(0, ge=0, description="GPUs of the whole job (SLURM --gpus via the `gpu` resource).")
    nodes: int = Field(1, ge=1, description="Nodes (SLURM --nodes); train/pretrain start their ranks on each.")
    processes: int | None = Field(
        None, ge=1, description="Training processes per node (default: the GPUs per node CUDA shows, else 1). "
        "More than one in all: the job starts them through `train_runtime.launcher`.")
    gpu_model: str | None = Field(None, description="GPU model, e.g. a100 (SLURM gpu_model).")
    cpus: int = Field(1, ge=1, description="CPU cores (cpus_per_task); also torch threads.")
    mem_mb: int = Field(4000, ge=100, description="Memory in MB.")
    runtime_min: int = Field(60, ge=1, description="Wall-time limit in minutes.")
    partition: str | None = Field(None, description="SLURM partition.")
    slurm_extra: str | None = Field(None, description="Extra sbatch flags (e.g. --qos=high).")


def _stage_resources_model() -> type[Strict]:
    """`resources`: one optional `Resources` per stage of the stage registry (repro.stages.STAGES)."""
    from pydantic import create_model

    from repro.stages import STAGE_NAMES

    fields: dict[str, Any] = {
        name: (Resources | None, Field(None, description=f"Resources of {name} jobs.")) for name in STAGE_NAMES
    }
    model = create_model("StageResources", __base__=Strict, **fields)
    model.__doc__ = "Resources per stage; unset stages get defaults derived from the model size."
    return model


StageResources = _stage_resources_model()


class AnalysisConfig(Strict):
    """A registered analysis run on a trained condition."""

    name: str = Field(description="Registered analysis (token_loss, steps, logit_lens, or a plugin's; see `repro list`).")
    args: dict[str, Any] = Field(default_factory=dict, description="Arguments of the analysis (checked against its Args).")


class Condition(Strict):
    """Everything that defines one condition of a study."""

    data: DataConfig = Field(default_factory=DataConfig, description="Training data: task and teacher.")
    filters: list[Named] = Field(default_factory=list, description="Filters applied in order to the traces.")
    model: ModelConfig = Field(default_factory=ModelConfig, description="Student model.")
    train: TrainConfig = Field(default_factory=TrainConfig, description="SFT settings.")
    eval: EvalConfig = Field(default_factory=EvalConfig, description="Evaluation settings.")
    analyses: list[AnalysisConfig] = Field(default_factory=list, description="Analyses of the trained model.")
    resources: StageResources = Field(default_factory=StageResources, description="Cluster resources.")
    train_runtime: TrainRuntime = Field(
        default_factory=TrainRuntime, description="How train and pretrain jobs run (never part of a job id).")
    throughput: dict[str, float] = Field(
        default_factory=dict,
        description="Tokens per GPU-second by stage (e.g. {train: 3000, eval: 20000}) for GPU-hour estimates.",
    )


# ---------------------------------------------------------------------------------------------------------
# Per-stage job configs: what each stage function receives (and what is hashed into the job id).


class GenerateJob(Strict):
    task: str = Field(description="Registered task.")
    task_args: dict[str, Any] = Field(description="Task arguments (validated).")
    n: int = Field(description="Number of problems.")
    seed: int = Field(description="Seed.")
    teacher: Named = Field(description="Teacher writing the traces.")


class FilterJob(Strict):
    filters: list[Named] = Field(description="Filter chain, applied in order.")
    seed: int = Field(description="Seed for random filters (subsample, delete_steps, noise).")


class PretrainJob(Strict):
    arch: str | dict[str, Any] = Field(description="Model size.")
    tokenizer: TokenizerConfig = Field(description="Tokenizer trained on the mixture.")
    pretrain: PretrainConfig = Field(description="Pretraining recipe.")
    init_seed: int = Field(description="Initialisation seed.")


class TrainJob(Strict):
    model: ModelConfig = Field(description="Student model.")
    train: TrainConfig = Field(description="SFT settings; `steps` is the run's total, `checkpoints` all saved.")


class EvalJob(Strict):
    benchmarks: list[BenchmarkConfig] = Field(description="Resolved benchmarks, all evaluated with one load of "
                                              "the checkpoint (one generation pass over their prompts).")
    sampling: SamplingConfig = Field(description="Generation settings.")
    step: int = Field(description="Checkpoint step.")
    batch_size: int = Field(64, ge=1, description="Prompts per generation batch (outputs are bit-identical only "
                            "for the same batch size, so it is part of the job's identity).")


class AnalyzeJob(Strict):
    analysis: AnalysisConfig = Field(description="Analysis.")
    step: int = Field(description="Checkpoint step analysed.")
    benchmarks: list[str] = Field(default_factory=list, description="Benchmarks whose samples are read.")


class ReportJob(Strict):
    spec: str = Field(description="Spec name.")
    spec_file: str = Field("", description="Path of the spec file, for the how-to-reproduce commands.")
    title: str = Field(description="Title of the study.")
    hypothesis: str = Field("", description="What the study tests.")
    conditions: list[dict[str, Any]] = Field(description="Conditions with their labels and job ids by role.")
    claims: list[dict[str, Any]] = Field(default_factory=list, description="The papers' claims to check.")
