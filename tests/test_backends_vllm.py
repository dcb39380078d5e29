"""The vLLM backend on a real engine: greedy outputs equal the transformers backend's (float32), n samples per
prompt, seeded samples, and resume in chunks. Runs only where vLLM imports and a GPU is visible (vLLM
lives in its own environment on GPU machines: docs/backends.md); skipped elsewhere.
Run: `pytest tests/test_backends_vllm.py`."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("vllm", reason="vLLM is not installed here: it needs its own environment on a GPU machine "
                    "(pip install 'repro[vllm]', see docs/backends.md)")

import torch  # noqa: E402

from llm_server import tiny_model  # noqa: E402
from repro.config import SamplingConfig  # noqa: E402
from repro.generation import Runtime, generate  # noqa: E402

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="vLLM needs a GPU and none is visible")]

PROMPTS = ["3 + 4 = ?", "11 + 2 = ?", "what is 5 + 5", "7 + 7 = ?", "0 + 1", "hello"]
ARGS = {"dtype": "float32", "gpu_memory_utilization": 0.3, "max_model_len": 256, "enforce_eager": True}


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("vllm") / "m")


def test_vllm_greedy_equals_transformers(model: Path) -> None:
    hf = generate(SamplingConfig(max_new_tokens=24, backend_args={"dtype": "float32"}), model, PROMPTS,
                  Runtime(device="cuda"))
    vl = generate(SamplingConfig(backend="vllm", max_new_tokens=24, backend_args=ARGS), model, PROMPTS)
    assert [[(g.text, g.finished) for g in x] for x in vl] == [[(g.text, g.finished) for g in x] for x in hf]


def test_vllm_samples_are_seeded_and_resume_in_chunks(model: Path, tmp_path: Path) -> None:
    s = SamplingConfig(backend="vllm", max_new_tokens=12, temperature=1.0, top_k=20, min_p=0.05, n_samples=3,
                       seed=1, backend_args={**ARGS, "chunk_size": 2})
    whole = generate(s, model, PROMPTS)
    assert all(len(x) == 3 for x in whole) and len({g.text for x in whole for g in x}) > 3
    rt = Runtime(partial=tmp_path)
    assert generate(s, model, PROMPTS, rt) == whole
    store = next(tmp_path.glob("answers-*.jsonl"))
    store.write_text("".join(store.read_text().splitlines(keepends=True)[:2]))
    assert generate(s, model, PROMPTS, rt) == whole  # per-request seeds: a resumed run samples the same
