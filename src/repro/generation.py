"""Sampling from models: a registry of generation backends behind one resumable function.

`generate(sampling, model, prompts, runtime)` asks the backend named by `sampling.backend` (a
`SamplingConfig` from the spec: decoding settings, chat prompt, backend and its args) for
`sampling.n_samples` completions of every prompt and returns them in prompt order. How it runs (threads,
batch size, device, where finished work is kept) is a separate `Runtime`, never part of a job id.

Resume: every answered request is appended (and flushed) to a JSONL file in `runtime.partial` as it
arrives — a finished batch for the local backends, a finished HTTP request for `openai` — so a killed job,
rerun, asks the backend only for the prompts that have no stored answer, and returns the same outputs as
an uninterrupted run (the transformers backend forms its batches over all prompts and seeds each batch
by its position, so skipping finished batches changes nothing else).

Prompts are chat messages (an optional system message + the prompt as the user's turn): local backends
render them with the tokenizer's chat template (`repro.models.chat_text`; our from-scratch checkpoints
save a template equal to `render_prompt`), OpenAI-compatible servers apply their own. `raw=True` sends
already-rendered text instead.

Backends (`BACKENDS`, each a class with a strict `Args` model; `repro list` names them):
- "transformers" (`repro.backends.hf`): batched, left-padded, seeded `model.generate`.
- "vllm" (`repro.backends.vllm`): offline `vllm.LLM`, imported lazily (its own environment on GPU machines).
- "openai" (`repro.backends.openai`): any OpenAI-compatible endpoint over HTTP, bounded concurrency, retries.
Each backend describes itself (`Backend.record`: name, package version, args without secrets, model
revision) and stages write that record into their outputs.

    from repro.config import SamplingConfig
    gens = generate(SamplingConfig(max_new_tokens=64), "results/train/x/checkpoints/step-20", ["2+3=?"])
    gens[0][0].text
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, ClassVar, Sequence

from pydantic import BaseModel, ConfigDict

from repro.config import SamplingConfig
from repro.errors import ReproError
from repro.identity import canonical_json, digest
from repro.registry import Registry

log = logging.getLogger(__name__)


@dataclass
class Generation:
    """One sampled completion: the answer text (reasoning split off where the model or server marks it),
    new tokens incl. the stop token, whether the model stopped before the length limit, the backend."""

    text: str
    n_new_tokens: int
    finished: bool
    backend: str
    reasoning: str | None = None


@dataclass(frozen=True)
class Runtime:
    """How generation runs; none of it changes what a seeded backend returns for a given batch size."""

    threads: int | None = None  # torch threads for local backends (default: all cores)
    batch_size: int = 64  # prompts per batch of the transformers backend
    device: str | None = None  # "cpu", "cuda" or None = cuda when visible
    partial: Path | None = None  # folder that keeps answered requests across a killed run


@dataclass(frozen=True)
class Request:
    """One prompt to answer: `messages` (chat) or `text` (already rendered, raw=True)."""

    key: str
    index: int
    messages: tuple[dict[str, str], ...] = ()
    text: str | None = None


Done = Callable[[Request, list[Generation]], None]


class BackendArgs(BaseModel):
    """Base of every backend's arguments: strict, frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Backend:
    """A generation backend: `run` answers requests and calls `done(request, generations)` for each as soon
    as it is answered (it may skip requests whose key is in `skip`: they are answered already)."""

    name: ClassVar[str]
    Args: ClassVar[type[BackendArgs]] = BackendArgs
    package: ClassVar[str | None] = None  # the package whose version is recorded
    secret_fields: ClassVar[tuple[str, ...]] = ()  # args never recorded

    def __init__(self, args: BackendArgs) -> None:
        self.args = args

    def run(self, model: str, requests: Sequence[Request], sampling: SamplingConfig, runtime: Runtime,
            skip: set[str], done: Done) -> None:
        raise NotImplementedError

    def record(self, model: str) -> dict[str, Any]:
        """What produced the samples: backend name, package version, args (no secrets), model revision."""
        from importlib import metadata

        version = None
        if self.package:
            try:
                version = metadata.version(self.package)
            except metadata.PackageNotFoundError:
                version = None
        args = {k: v for k, v in self.args.model_dump(mode="json").items() if k not in self.secret_fields}
        return {"backend": self.name, "version": version, "args": args, "model": model_revision(model)}


# built-in backends, then plugins (entry point group "repro.backends"); heavy imports inside each backend
BACKENDS: Registry[type[Backend]] = Registry(
    "backend", group="repro.backends",
    builtins=tuple(f"repro.backends.{m}" for m in ("hf", "vllm", "openai")))


def get_backend(name: str) -> type[Backend]:
    return BACKENDS.get(name)


def make_backend(sampling: SamplingConfig) -> Backend:
    """The backend a sampling config names, with its args validated (bad args: ReproError, exit 2)."""
    from pydantic import ValidationError

    cls = get_backend(sampling.backend)
    try:
        return cls(cls.Args(**sampling.backend_args))
    except ValidationError as e:
        errs = "; ".join(f"{'.'.join(map(str, x['loc']))}: {x['msg']}" for x in e.errors())
        raise ReproError(f"sampling.backend_args of backend {sampling.backend!r}: {errs}", exit_code=2) from None


def sampling_problem(sampling: SamplingConfig) -> str | None:
    """What is wrong with a sampling config's backend name or args (None = fine), for spec validation."""
    try:
        make_backend(sampling)
    except KeyError as e:
        return str(e.args[0])
    except ReproError as e:
        return str(e)
    return None


def model_revision(model: str) -> dict[str, Any]:
    """Which model: a local folder's content fingerprint (config, tokenizer and weight files: names and
    sizes, and the bytes of the small JSON files), or a hub id with the commit its cache resolved to."""
    p = Path(model).expanduser()
    if p.is_dir():
        h = hashlib.sha256()
        for f in sorted(p.iterdir()):
            if f.is_file() and f.suffix in (".json", ".safetensors", ".bin", ".jinja", ".model"):
                h.update(f"{f.name}:{f.stat().st_size}\n".encode())
                if f.suffix in (".json", ".jinja") and f.stat().st_size < 5_000_000:
                    h.update(f.read_bytes())
        # the folder's name, not its path: a job's outputs must not depend on where results/ lives
        return {"folder": p.name, "fingerprint": h.hexdigest()[:16]}
    out: dict[str, Any] = {"id": model, "revision": None}
    try:  # a hub id: the commit of the cached snapshot, when there is one (never a download)
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(model, "config.json")
        if isinstance(cached, str):
            out["revision"] = Path(cached).parent.name
    except Exception:  # noqa: BLE001 - an informative record only
        pass
    return out


def messages_for(prompt: str, sampling: SamplingConfig) -> tuple[dict[str, str], ...]:
    """The chat a prompt becomes: the optional system message, then the prompt as the user's turn."""
    sys = ({"role": "system", "content": sampling.system_prompt},) if sampling.system_prompt else ()
    return sys + ({"role": "user", "content": prompt},)


# ------------------------------------------------------------------------------------------------- resume


class AnswerStore:
    """Answered requests of one generation call, appended as JSON lines (one per request) as they arrive.
    A torn last line (the process was killed mid-write) is cut off on opening."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.answers: dict[str, list[Generation]] = {}
        self._lock = threading.Lock()
        if path is not None and path.is_file():
            data = path.read_bytes()
            if data and not data.endswith(b"\n"):  # a torn last line: drop it, or the next append would join it
                with open(path, "r+b") as f:
                    f.truncate(data.rfind(b"\n") + 1)
            with open(path, encoding="utf-8") as f:
                for line in f:
                    try:
                        row = json.loads(line)
                    except json.JSONDecodeError:
                        continue
                    self.answers[row["key"]] = [Generation(**g) for g in row["gens"]]
            log.info("resuming: %d answered requests in %s", len(self.answers), path)

    def add(self, key: str, gens: list[Generation]) -> None:
        with self._lock:
            self.answers[key] = gens
            if self.path is None:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            line = json.dumps({"key": key, "gens": [dataclasses.asdict(g) for g in gens]}, ensure_ascii=False)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")
                f.flush()
                os.fsync(f.fileno())


def store_path(partial: Path | None, sampling: SamplingConfig, model: str, raw: bool) -> Path | None:
    """One answers file per (model, sampling, raw) inside the job's partial folder; a local model counts by
    its content, not its path (a rerun may see the same results folder under another path)."""
    if partial is None:
        return None
    return Path(partial) / f"answers-{digest([model_revision(model), sampling.model_dump(mode='json'), raw])}.jsonl"


def generate(sampling: SamplingConfig, model: str | Path, prompts: Sequence[str], runtime: Runtime = Runtime(),
             raw: bool = False) -> list[list[Generation]]:
    """`sampling.n_samples` completions of every prompt (in prompt order), resuming from answers kept in
    `runtime.partial`. `raw=True`: prompts are already rendered text (no chat template)."""
    model = str(model)
    backend = make_backend(sampling)
    requests = []
    for i, p in enumerate(prompts):
        msgs = () if raw else messages_for(p, sampling)
        key = digest([i, p if raw else list(msgs)], 24)
        requests.append(Request(key, i, msgs, p if raw else None))
    store = AnswerStore(store_path(runtime.partial, sampling, model, raw))
    skip = {r.key for r in requests if r.key in store.answers}
    if len(skip) < len(requests):
        log.info("generate: %d of %d prompts to answer with backend %s", len(requests) - len(skip), len(requests),
                 sampling.backend)
        backend.run(model, requests, sampling, runtime, skip, lambda r, g: store.add(r.key, g))
    missing = [r.index for r in requests if r.key not in store.answers]
    if missing:
        raise ReproError(f"backend {sampling.backend!r} returned no answer for {len(missing)} prompts "
                         f"(first: #{missing[0]})")
    return [store.answers[r.key] for r in requests]


def backend_record(sampling: SamplingConfig, model: str | Path) -> dict[str, Any]:
    """The record of the backend and model a sampling config uses (for a job's outputs)."""
    rec = make_backend(sampling).record(str(model))
    rec["sampling"] = json.loads(canonical_json(sampling.model_dump(mode="json", exclude={"backend_args"})))
    return rec
