"""The "openai" backend: any OpenAI-compatible HTTP endpoint (`vllm serve`, sglang, `transformers serve`, a
hosted teacher), spoken to with httpx.

- Where: `base_url` (e.g. http://127.0.0.1:8000/v1) or `base_url_env` (an environment variable holding it, so
  the server's address is not part of the job id), and the model name (`model`, default: the job's model).
- Secret: the API key is read from the environment variable named by `api_key_env`; its value is only put
  in the Authorization header — never logged, never in a record, never in an error message.
- Load: at most `max_concurrency` requests in flight (a thread pool); each is retried with exponential
  backoff (honouring Retry-After) on HTTP 429, 5xx, timeouts and connection errors, up to `max_retries`.
- Samples: one HTTP request per sample, with seed `stable_seed(seed, prompt key, sample)`, so servers that
  ignore `n` (transformers serve) still give n samples and a resumed run asks for the same ones.
- Reasoning: `reasoning_content` / `reasoning` fields of the reply, or a `<think>...</think>` block in the
  content, go to `Generation.reasoning`; the answer alone is `Generation.text`.
- Resume: each prompt's answers are handed to the answer store as soon as its requests return, so a killed
  job rerun sends only the prompts without an answer.
"""

from __future__ import annotations

import logging
import os
import random
import re
import threading
import time
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from typing import Any, ClassVar, Literal, Sequence

from pydantic import Field, model_validator

from repro.config import SamplingConfig
from repro.errors import ReproError
from repro.generation import BACKENDS, Backend, BackendArgs, Done, Generation, Request, Runtime
from repro.identity import stable_seed
from repro.progress import Progress

log = logging.getLogger(__name__)

THINK = re.compile(r"^\s*<think>(.*?)</think>\s*", re.S)


class OpenAIArgs(BackendArgs):
    base_url: str | None = Field(None, description="Endpoint root, e.g. http://127.0.0.1:8000/v1 or "
                                 "https://api.example.com/v1 (part of the job id; see base_url_env).")
    base_url_env: str | None = Field(None, description="Environment variable holding the endpoint root instead "
                                     "(where the server runs is then not part of the job id).")
    model: str | None = Field(None, description="Model name sent in requests; None = the job's model (a teacher's "
                              "`model`, an eval job's checkpoint path).")
    api_key_env: str | None = Field(None, description="Environment variable holding the API key (its value is "
                                    "never written anywhere); None = no Authorization header.")
    api: Literal["chat", "completions"] = Field("chat", description="/chat/completions (the server applies the "
                                                "chat template) or /completions (raw text prompts).")
    max_concurrency: int = Field(8, ge=1, description="Requests in flight at once.")
    timeout_s: float = Field(600.0, gt=0, description="Timeout of one HTTP request in seconds.")
    max_retries: int = Field(6, ge=0, description="Retries of a request after 429, 5xx, a timeout or a connection "
                             "error (exponential backoff).")
    backoff_s: float = Field(1.0, ge=0, description="First backoff in seconds (doubles per retry, at most 60 s, "
                             "plus jitter; a Retry-After header wins).")
    extra_body: dict[str, Any] = Field(default_factory=dict, description="Extra fields merged into every request "
                                       "body (server-specific knobs, e.g. transformers serve's generation_config).")
    strip: list[str] = Field(default_factory=list, description="Strings removed from replies (special tokens a "
                             "server leaves in, e.g. <|im_end|>).")


    @model_validator(mode="after")
    def _one_url(self) -> "OpenAIArgs":
        if (self.base_url is None) == (self.base_url_env is None):
            raise ValueError("give exactly one of base_url and base_url_env")
        return self


class RequestFailed(ReproError):
    """An HTTP request that failed for good (a 4xx other than 429, or retries exhausted)."""


def split_reasoning(content: str, reasoning: str | None) -> tuple[str, str | None]:
    """(answer, reasoning): the server's reasoning field, else a leading <think>...</think> block."""
    if reasoning:
        return content, reasoning
    m = THINK.match(content)
    if m:
        return content[m.end():], m.group(1).strip("\n")
    if "</think>" in content and "<think>" not in content:  # template opened the block in the prompt
        head, _, tail = content.partition("</think>")
        return tail.lstrip(), head.strip("\n")
    return content, None


@BACKENDS.register("openai")
class OpenAIBackend(Backend):
    """An OpenAI-compatible server over HTTP: bounded concurrency, retries, reasoning kept apart, resumable."""

    name: ClassVar[str] = "openai"
    Args: ClassVar[type[BackendArgs]] = OpenAIArgs
    package: ClassVar[str | None] = "httpx"

    @property
    def a(self) -> OpenAIArgs:
        assert isinstance(self.args, OpenAIArgs)
        return self.args

    def url(self) -> str:
        if self.a.base_url is not None:
            return self.a.base_url.rstrip("/")
        url = os.environ.get(self.a.base_url_env or "")
        if not url:
            raise ReproError(f"backend openai: environment variable {self.a.base_url_env} (backend_args.base_url_env) "
                             "is not set", exit_code=2)
        return url.rstrip("/")

    def headers(self) -> dict[str, str]:
        if not self.a.api_key_env:
            return {}
        key = os.environ.get(self.a.api_key_env)
        if not key:
            raise ReproError(f"backend openai: environment variable {self.a.api_key_env} (backend_args.api_key_env) "
                             "is not set", exit_code=2)
        return {"Authorization": f"Bearer {key}"}

    def body(self, model: str, r: Request, sampling: SamplingConfig, sample: int) -> dict[str, Any]:
        greedy = sampling.temperature <= 0
        b: dict[str, Any] = {"model": model, "max_tokens": sampling.max_new_tokens, "n": 1,
                             "temperature": 0.0 if greedy else sampling.temperature,
                             "seed": stable_seed("request", sampling.seed, r.key, sample) % 2**31}
        if not greedy:
            b["top_p"] = sampling.top_p
            if sampling.top_k > 0:
                b["top_k"] = sampling.top_k
            if sampling.min_p:
                b["min_p"] = sampling.min_p
        if sampling.stop:
            b["stop"] = list(sampling.stop)
        if sampling.reasoning_effort:
            b["reasoning_effort"] = sampling.reasoning_effort
        if self.a.api == "chat":
            b["messages"] = [dict(m) for m in r.messages] if r.text is None else [{"role": "user", "content": r.text}]
            if sampling.chat_template_kwargs:
                b["chat_template_kwargs"] = dict(sampling.chat_template_kwargs)
        else:
            if r.text is None:
                raise ReproError("backend openai with api 'completions' needs raw text prompts; use api 'chat'",
                                 exit_code=2)
            b["prompt"] = r.text
        return {**b, **self.a.extra_body}

    def post(self, client: Any, path: str, body: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
        """POST with retries on 429/5xx/timeouts/connection errors."""
        import httpx

        attempt = 0
        while True:
            wait_s: float | None = None
            try:
                resp = client.post(path, json=body, headers=headers)
            except (httpx.TimeoutException, httpx.TransportError) as e:
                problem = f"{type(e).__name__}"
            else:
                if resp.status_code < 400:
                    return resp.json()
                problem = f"HTTP {resp.status_code}: {resp.text[:300]}"
                if resp.status_code != 429 and resp.status_code < 500:
                    raise RequestFailed(f"backend openai: {client.base_url}{path} answered {problem}")
                ra = resp.headers.get("retry-after")
                if ra:
                    try:
                        wait_s = float(ra)
                    except ValueError:
                        wait_s = None
            if attempt >= self.a.max_retries:
                raise RequestFailed(f"backend openai: {client.base_url}{path} failed after {attempt + 1} tries: {problem}")
            delay = wait_s if wait_s is not None else min(60.0, self.a.backoff_s * 2**attempt) * (1 + random.random() / 4)
            log.warning("openai request failed (%s); retry %d/%d in %.1fs", problem, attempt + 1, self.a.max_retries, delay)
            time.sleep(delay)
            attempt += 1

    def parse(self, reply: dict[str, Any]) -> Generation:
        choice = reply["choices"][0]
        if self.a.api == "chat":
            msg = choice.get("message") or {}
            content = msg.get("content") or ""
            reasoning = msg.get("reasoning_content") or msg.get("reasoning")
        else:
            content, reasoning = choice.get("text") or "", None
        for s in self.a.strip:
            content = content.replace(s, "")
        text, reasoning = split_reasoning(content, reasoning)
        usage = reply.get("usage") or {}
        n_tokens = int(usage.get("completion_tokens") or 0)
        return Generation(text, n_tokens, choice.get("finish_reason") == "stop", "openai", reasoning)

    def run(self, model: str, requests: Sequence[Request], sampling: SamplingConfig, runtime: Runtime,
            skip: set[str], done: Done) -> None:
        import httpx

        name = self.a.model or model
        headers = self.headers()
        path = "/chat/completions" if self.a.api == "chat" else "/completions"
        todo = [r for r in requests if r.key not in skip]
        stop = threading.Event()
        limits = httpx.Limits(max_connections=self.a.max_concurrency, max_keepalive_connections=self.a.max_concurrency)
        with httpx.Client(base_url=self.url(), timeout=self.a.timeout_s, limits=limits) as client, \
                Progress("generate (openai)", total=len(todo), unit="prompts") as prog:
            lock = threading.Lock()

            def answer(r: Request) -> None:
                gens = []
                for j in range(sampling.n_samples):
                    if stop.is_set():
                        return
                    gens.append(self.parse(self.post(client, path, self.body(name, r, sampling, j), headers)))
                done(r, gens)
                with lock:
                    prog.update(1)

            with ThreadPoolExecutor(max_workers=self.a.max_concurrency, thread_name_prefix="openai") as pool:
                futures = [pool.submit(answer, r) for r in todo]
                finished, _ = wait(futures, return_when=FIRST_EXCEPTION)
                errors = [f.exception() for f in finished if f.exception() is not None]
                if errors:
                    stop.set()
                    for f in futures:
                        f.cancel()
                    raise errors[0]  # type: ignore[misc]
