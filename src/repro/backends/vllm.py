"""The "vllm" backend: offline `vllm.LLM` on GPUs, imported lazily.

vLLM pins its own torch and transformers, so it is installed in its own environment on GPU machines
(docs/backends.md: a second virtualenv or container whose `repro` runs the eval/generate jobs).

Prompts are rendered here with the model's own tokenizer (`repro.models.load_tokenizer`: the chat template
with its kwargs, or our template for old checkpoints) and passed as token ids, so vLLM sees exactly the
tokens the transformers backend sees; outputs come back as token ids and are decoded by the same tokenizer.
Requests are sent in chunks of `chunk_size` prompts, each chunk's answers stored before the next, so a
killed job loses at most one chunk. Each request gets its own seed (`stable_seed(seed, request key)`), so a
resumed run samples every prompt exactly as an uninterrupted one.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar, Literal, Sequence

from pydantic import Field

from repro.config import SamplingConfig
from repro.errors import ReproError
from repro.generation import BACKENDS, Backend, BackendArgs, Done, Generation, Request, Runtime
from repro.identity import stable_seed
from repro.progress import Progress

log = logging.getLogger(__name__)

MISSING = ("generation backend 'vllm' needs the vllm package, which cannot share an environment with this "
           "project's CPU torch/transformers pins: install it in its own environment on a GPU machine "
           "(pip install 'repro[vllm]'; see docs/backends.md) or use backend 'transformers'")


class VLLMArgs(BackendArgs):
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one model is sharded over.")
    pipeline_parallel_size: int = Field(1, ge=1, description="Pipeline stages (GPUs) per model.")
    max_model_len: int | None = Field(None, ge=16, description="Context length (prompt + generation); None = "
                                      "the model's.")
    gpu_memory_utilization: float = Field(0.9, gt=0, le=1, description="Share of each GPU's memory vLLM may use.")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field("auto", description="Weights' dtype.")
    enable_prefix_caching: bool = Field(True, description="Reuse the KV cache of shared prompt prefixes.")
    max_num_seqs: int | None = Field(None, ge=1, description="Sequences scheduled at once (None = vLLM's default).")
    enforce_eager: bool = Field(False, description="Disable CUDA graphs (slower; less memory, faster start).")
    revision: str | None = Field(None, description="Hub revision of a hub model.")
    chunk_size: int = Field(1024, ge=1, description="Prompts per llm.generate call; answers are stored after "
                            "each (a killed job loses at most one chunk).")


def sampling_params(sampling: SamplingConfig, seed: int, eos: list[int]) -> Any:
    """vLLM SamplingParams of one request (greedy when temperature is 0)."""
    from vllm import SamplingParams

    greedy = sampling.temperature <= 0
    return SamplingParams(
        n=sampling.n_samples,
        temperature=0.0 if greedy else sampling.temperature,
        top_p=1.0 if greedy else sampling.top_p,
        top_k=-1 if greedy or sampling.top_k <= 0 else sampling.top_k,
        min_p=0.0 if greedy or not sampling.min_p else sampling.min_p,
        max_tokens=sampling.max_new_tokens,
        seed=seed,
        stop_token_ids=eos,
        detokenize=False,
    )


@BACKENDS.register("vllm")
class VLLMBackend(Backend):
    """vLLM offline engine: tensor parallelism, context length, prefix caching, n samples per prompt."""

    name: ClassVar[str] = "vllm"
    Args: ClassVar[type[BackendArgs]] = VLLMArgs
    package: ClassVar[str | None] = "vllm"

    def engine(self, model: str, sampling: SamplingConfig) -> Any:
        try:
            from vllm import LLM
        except ImportError as e:
            raise ReproError(MISSING, exit_code=2) from e
        a = self.args
        assert isinstance(a, VLLMArgs)
        kw: dict[str, Any] = dict(model=model, seed=sampling.seed, dtype=a.dtype, tensor_parallel_size=a.tensor_parallel_size,
                                  pipeline_parallel_size=a.pipeline_parallel_size, gpu_memory_utilization=a.gpu_memory_utilization,
                                  enable_prefix_caching=a.enable_prefix_caching, enforce_eager=a.enforce_eager,
                                  skip_tokenizer_init=True)
        if a.max_model_len:
            kw["max_model_len"] = a.max_model_len
        if a.max_num_seqs:
            kw["max_num_seqs"] = a.max_num_seqs
        if a.revision:
            kw["revision"] = a.revision
        return LLM(**kw)

    def run(self, model: str, requests: Sequence[Request], sampling: SamplingConfig, runtime: Runtime,
            skip: set[str], done: Done) -> None:
        from repro.backends.hf import encode, render_request, split_output
        from repro.models import load_tokenizer

        llm = self.engine(model, sampling)  # first: a missing vllm fails before anything loads
        tok = load_tokenizer(model)
        a = self.args
        assert isinstance(a, VLLMArgs)
        eos = tok.eos_token_id if isinstance(tok.eos_token_id, list) else [tok.eos_token_id]
        chat = bool(getattr(tok, "chat_template", None))
        todo = [r for r in requests if r.key not in skip]
        with Progress("generate (vllm)", total=len(todo), unit="prompts") as prog:
            for c in range(0, len(todo), a.chunk_size):
                chunk = todo[c : c + a.chunk_size]
                prompts = [{"prompt_token_ids": encode(tok, render_request(tok, r, sampling), chat and r.text is None)}
                           for r in chunk]
                params = [sampling_params(sampling, stable_seed("request", sampling.seed, r.key), eos) for r in chunk]
                outputs = llm.generate(prompts, params, use_tqdm=False)
                for r, out in zip(chunk, outputs):
                    gens = []
                    for o in out.outputs:
                        text, k, finished = split_output(tok, list(o.token_ids), sampling.max_new_tokens, sampling.stop)
                        if not finished and o.finish_reason == "stop":  # the stop token was not echoed: count it
                            finished, k = True, k + 1
                        gens.append(Generation(text, k, finished, "vllm"))
                    done(r, gens)
                prog.update(len(chunk))
