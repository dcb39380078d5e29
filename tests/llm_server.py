"""Test helpers for the LLM paths: a tiny local model folder and a real OpenAI-compatible server serving it.

`tiny_model(path)` saves a random tiny Qwen2 (untied embeddings and a wide init, so greedy decoding does not
just repeat the prompt's last token; special tokens other than eos suppressed in its generation config) with a tokenizer built by `repro.models.build_tokenizer` (chat template
included). `Server(model)` runs `transformers serve` on a free loopback port in its own process group,
logs to a file, and counts the chat/completions requests it answered (uvicorn's access log).

    with Server(tiny_model(tmp / "m")) as srv:
        srv.base_url, srv.requests()
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

from repro.models import ARCHS, build_model, build_tokenizer

TEXTS = [f"{a} + {b} = {a + b} so the answer is \\boxed{{{a + b}}}" for a in range(12) for b in range(12)]
# our special tokens other than eos
SPECIAL = ["<|pad|>", "<|bos|>", "<|unk|>"]


def tiny_model(path: Path, seed: int = 0) -> Path:
    tok = build_tokenizer(TEXTS, "bpe", vocab_size=300, pretokenizer="qwen2")
    model = build_model({**ARCHS["xs"], "tie_word_embeddings": False, "initializer_range": 0.2}, tok, seed=seed)
    # a random model emits special tokens, which servers keep in replies and our decode skips: never sample them
    model.generation_config.suppress_tokens = [tok.convert_tokens_to_ids(t) for t in SPECIAL]
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def serve_command() -> list[str] | None:
    exe = shutil.which("transformers", path=str(Path(sys.executable).parent)) or shutil.which("transformers")
    return [exe, "serve"] if exe else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """`transformers serve MODEL` on 127.0.0.1 (CPU), for the duration of a with-block."""

    def __init__(self, model: Path, log: Path | None = None, timeout_s: float = 120.0) -> None:
        self.model, self.port = model, free_port()
        self.log = log or model.parent / f"serve-{self.port}.log"
        self.timeout_s = timeout_s
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def __enter__(self) -> "Server":
        cmd = serve_command()
        assert cmd, "transformers CLI not found"
        env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}
        with open(self.log, "wb") as f:
            self.proc = subprocess.Popen([*cmd, str(self.model), "--host", "127.0.0.1", "--port", str(self.port),
                                          "--device", "cpu"], stdout=f, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited: {self.log.read_text()[-2000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError(f"transformers serve did not start in {self.timeout_s}s")

    def requests(self) -> int:
        """Completion requests the server answered so far (from its access log)."""
        text = self.log.read_text(errors="replace")
        return text.count('"POST /v1/chat/completions HTTP/1.1" 200') + text.count('"POST /v1/completions HTTP/1.1" 200')

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
