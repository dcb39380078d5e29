"""The typed configuration of one experimental condition, and of each stage's job.

`Condition` is what one cell of a study grid resolves to: data (task + teacher), filters, model, training,
evaluation, analyses and resources. The planner cuts a condition into per-stage job configs (the
`*Job` models below); a stage function receives exactly one of those. Every model is strict
(`extra="forbid"`) and every field has a description, which becomes the JSON Schema and the error text.

Fields that only say how or where a job runs (`resources`, `runtime`) are kept out of job ids.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator


class Strict(BaseModel):
    """Base model: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


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
    """How the pretrain stage makes a tiny base model from scratch on a task mixture."""

    mixture: list[MixtureItem] = Field(description="Tasks in the pretraining mixture, answer-only text.")
    steps: int = Field(300, ge=1, description="Optimizer steps of pretraining.")
    lr: float = Field(1e-3, gt=0, description="Peak learning rate.")
    batch_size: int = Field(32, ge=1, description="Sequences per optimizer step.")
    max_length: int = Field(128, ge=8, description="Maximum tokens per sequence.")
    seed: int = Field(0, description="Seed of data sampling and initialisation.")


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

    @model_validator(mode="after")
    def _check_source(self) -> "ModelConfig":
        if self.source in ("hub", "path") and not self.id:
            raise ValueError(f"model.source={self.source!r} needs model.id")
        if self.source == "pretrain" and self.pretrain is None:
            raise ValueError("model.source='pretrain' needs model.pretrain")
        return self


Schedule = Literal["constant", "constant_with_warmup", "cosine", "linear"]


class TrainConfig(Strict):
    """Supervised fine-tuning with TRL's SFTTrainer (completion-only loss)."""

    steps: int = Field(100, ge=1, description="Optimizer steps (the training length).")
    checkpoints: list[int] = Field(
        default_factory=list,
        description="Extra steps to save and evaluate (0 = the model before SFT); the last step always is.",
    )
    lr: float = Field(1e-3, gt=0, description="Peak learning rate.")
    schedule: Schedule = Field("constant_with_warmup", description="Learning-rate schedule.")
    warmup_steps: int = Field(0, ge=0, description="Warmup steps (absolute).")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Warmup as a share of all steps.")
    batch_size: int = Field(16, ge=1, description="Global batch size (sequences per optimizer step).")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    max_length: int = Field(256, ge=8, description="Maximum tokens per example (prompt + completion).")
    seed: int = Field(0, description="Seed of data order and dropout.")

    @model_validator(mode="after")
    def _check_warmup(self) -> "TrainConfig":
        if self.schedule == "constant" and (self.warmup_steps or self.warmup_ratio):
            raise ValueError("schedule 'constant' has no warmup; use 'constant_with_warmup'")
        return self

    def length_independent(self) -> tuple[bool, str]:
        """Whether runs that differ only in `steps` are prefixes of one run, and why."""
        if self.schedule in ("cosine", "linear"):
            return False, f"schedule {self.schedule!r} decays over the whole run, so each length is its own run"
        if self.warmup_ratio > 0:
            return False, "warmup_ratio makes warmup depend on the run length, so each length is its own run"
        return True, f"schedule {self.schedule!r} does not depend on the run length: lengths are checkpoints of one run"


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

    gpus: int = Field(0, ge=0, description="GPUs (SLURM --gpus via the `gpu` resource).")
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
