"""Generation backends without a served model: sampling config and ids, the answer store and resume, chat
templates under stock transformers loaders, the openai client against a scripted loopback HTTP server
(retries, reasoning, the key header), dataset sources, the LLM/dataset teachers and the one_correct filter.
Run: `pytest tests/test_backends.py`."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch

from llm_server import SPECIAL, tiny_model
from repro.backends.hf import generate_with_model
from repro.backends.openai import split_reasoning
from repro.config import BenchmarkConfig, SamplingConfig, SamplingOverride, effective_sampling
from repro.errors import ReproError
from repro.filters import FilterContext, apply_chain
from repro.generation import BACKENDS, Runtime, backend_record, generate, make_backend
from repro.models import load_pretrained, render_prompt
from repro.records import Problem, Trace
from repro.tasks import get_task
from repro.teachers import get_teacher

PROMPTS = ["3 + 4 = ?", "11 + 2 = ?", "what is 5 + 5", "7 + 7 = ?", "0 + 1", "hello", "9 + 9 = ?"]


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_model(tmp_path_factory.mktemp("tiny") / "m")


# ---------------------------------------------------------------------------------------------- config


def test_sampling_dump_is_unchanged_while_new_fields_are_unset() -> None:
    """Job ids hash these dumps: the miniatures' ids must not move."""
    assert set(SamplingConfig().model_dump()) == {"backend", "temperature", "top_p", "top_k", "n_samples",
                                                 "max_new_tokens", "seed"}
    assert "sampling" not in BenchmarkConfig(name="a", task="countdown").model_dump()
    s = SamplingConfig(min_p=0.0, stop=["</s>"], reasoning_effort="high", system_prompt="x",
                       chat_template_kwargs={"enable_thinking": False}, backend_args={"dtype": "float32"})
    assert SamplingConfig.model_validate(s.model_dump()) == s and s.model_dump()["min_p"] == 0.0


def test_effective_sampling_overrides_only_given_fields() -> None:
    cond = SamplingConfig(max_new_tokens=64, temperature=0.0, seed=3)
    b = BenchmarkConfig(name="aime", task="aime24", split="test",
                        sampling=SamplingOverride(n_samples=16, temperature=0.6))
    s = effective_sampling(b, cond)
    assert (s.n_samples, s.temperature, s.max_new_tokens, s.seed) == (16, 0.6, 64, 3)
    assert effective_sampling(BenchmarkConfig(name="x", task="countdown"), cond) is cond
    assert BenchmarkConfig.model_validate(b.model_dump()).sampling == b.sampling


def test_backends_registered_with_strict_args() -> None:
    assert {"transformers", "vllm", "openai"} <= set(BACKENDS.names())
    with pytest.raises(ReproError, match="tensor_parallel"):
        make_backend(SamplingConfig(backend="vllm", backend_args={"tensor_parallel": 2}))
    with pytest.raises(ReproError, match="exactly one of base_url"):
        make_backend(SamplingConfig(backend="openai"))
    rec = backend_record(SamplingConfig(backend="openai", backend_args={"base_url": "http://x/v1",
                                                                          "api_key_env": "K"}), "m")
    assert rec["backend"] == "openai" and rec["args"]["api_key_env"] == "K" and rec["version"]


# ---------------------------------------------------------------------------------------------- resume


def test_transformers_resume_after_a_torn_store_equals_a_full_run(model: Path, tmp_path: Path) -> None:
    """Sampled (temperature 1) so that equality needs the per-batch seeds; batches of 2."""
    s = SamplingConfig(max_new_tokens=12, temperature=1.0, top_p=0.9, n_samples=2, seed=5)
    full = generate(s, model, PROMPTS, Runtime(threads=1, batch_size=2))
    rt = Runtime(threads=1, batch_size=2, partial=tmp_path / "partial")
    assert generate(s, model, PROMPTS, rt) == full
    store = next((tmp_path / "partial").glob("answers-*.jsonl"))
    lines = store.read_text().splitlines()
    assert len(lines) == len(PROMPTS)
    store.write_text("\n".join(lines[:4]) + "\n" + lines[4][:20])  # two batches kept, a torn line
    assert generate(s, model, PROMPTS, rt) == full
    after = store.read_text().splitlines()
    assert len(after) == len(PROMPTS) and after[:4] == lines[:4]  # the torn line cut off; 3 answers appended


# ---------------------------------------------------------------------------------------------- templates


def test_stock_transformers_loaders_match_ours(model: Path) -> None:
    """AutoTokenizer + AutoModelForCausalLM + the saved chat template give our ids and greedy outputs."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model)
    stock = AutoModelForCausalLM.from_pretrained(model)
    ours, our_tok = load_pretrained(model)
    for p in PROMPTS + ["héllo wörld 12345 don't", "<|eos|> x"]:
        chat = tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
        assert chat == render_prompt(p)
        assert tok(chat)["input_ids"] == our_tok(text=render_prompt(p))["input_ids"]
        assert tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True,
                                       return_dict=True)["input_ids"] == our_tok(text=render_prompt(p))["input_ids"]
    s = SamplingConfig(max_new_tokens=16)
    texts = [render_prompt(p) for p in PROMPTS]
    a = generate_with_model(stock, tok, texts, s, Runtime(threads=1))
    b = generate_with_model(ours, our_tok, texts, s, Runtime(threads=1))
    assert a == b and len({g[0].text for g in a}) > 3
    x = torch.tensor([our_tok(text=texts[0])["input_ids"]])
    with torch.no_grad():
        assert torch.equal(stock(x).logits, ours(x).logits)


# ---------------------------------------------------------------------------------------------- openai client


class Script(BaseHTTPRequestHandler):
    """A scripted OpenAI-compatible endpoint: answers per `self.server.plan`, records requests."""

    def do_POST(self) -> None:  # noqa: N802 - http.server API
        srv: Any = self.server
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        with srv.lock:
            srv.seen.append({"auth": self.headers.get("authorization"), "body": body, "path": self.path})
            status = srv.plan.pop(0) if srv.plan else 200
        if status != 200:
            self.send_response(status)
            self.send_header("content-length", "2")
            if status == 429:
                self.send_header("retry-after", "0")
            self.end_headers()
            self.wfile.write(b"no")
            return
        user = body["messages"][-1]["content"]
        msg = {"role": "assistant", "content": f"<think>about {user}</think>\n\nanswer {user}"}
        if user.startswith("R"):
            msg = {"role": "assistant", "content": f"answer {user}", "reasoning_content": f"why {user}"}
        out = json.dumps({"choices": [{"message": msg, "finish_reason": "stop"}],
                          "usage": {"completion_tokens": 5}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def scripted() -> Iterator[Any]:
    srv: Any = ThreadingHTTPServer(("127.0.0.1", 0), Script)
    srv.plan, srv.seen, srv.lock = [], [], threading.Lock()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()


def test_openai_client_retries_splits_reasoning_and_sends_the_key(scripted: Any, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPRO_TEST_KEY", "sk-test-123")
    scripted.plan = [429, 503, 200]
    s = SamplingConfig(backend="openai", n_samples=2, temperature=0.7, top_k=20, min_p=0.0, max_new_tokens=9,
                       backend_args={"base_url": f"http://127.0.0.1:{scripted.server_port}/v1",
                                     "api_key_env": "REPRO_TEST_KEY", "max_concurrency": 3, "backoff_s": 0.01,
                                     "model": "teacher"})
    out = generate(s, "unused", ["a", "Rb", "c"], Runtime(partial=tmp_path))
    assert [[g.text for g in x] for x in out] == [["answer a"] * 2, ["answer Rb"] * 2, ["answer c"] * 2]
    assert out[0][0].reasoning == "about a" and out[1][0].reasoning == "why Rb"
    assert len(scripted.seen) == 3 * 2 + 2  # two retried
    assert all(r["auth"] == "Bearer sk-test-123" and r["path"] == "/v1/chat/completions" for r in scripted.seen)
    b = scripted.seen[-1]["body"]
    assert (b["model"], b["top_k"], b["max_tokens"], b["n"]) == ("teacher", 20, 9, 1) and "min_p" not in b
    seeds = {(r["body"]["messages"][-1]["content"], r["body"]["seed"]) for r in scripted.seen}
    assert len(seeds) == 6  # one seed per (prompt, sample)
    assert "sk-test-123" not in "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    n = len(scripted.seen)
    assert generate(s, "unused", ["a", "Rb", "c"], Runtime(partial=tmp_path)) == out
    assert len(scripted.seen) == n  # all answered: nothing sent


def test_openai_client_gives_up_on_4xx_and_missing_key(scripted: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    args = {"base_url": f"http://127.0.0.1:{scripted.server_port}/v1", "backoff_s": 0.01, "max_retries": 1}
    scripted.plan = [400]
    with pytest.raises(ReproError, match="HTTP 400"):
        generate(SamplingConfig(backend="openai", backend_args=args), "m", ["a"])
    scripted.plan = [500, 500]
    with pytest.raises(ReproError, match="after 2 tries"):
        generate(SamplingConfig(backend="openai", backend_args=args), "m", ["a"])
    monkeypatch.delenv("NO_SUCH_KEY_VAR", raising=False)
    with pytest.raises(ReproError, match="NO_SUCH_KEY_VAR"):
        generate(SamplingConfig(backend="openai", backend_args={**args, "api_key_env": "NO_SUCH_KEY_VAR"}), "m", ["a"])


def test_split_reasoning() -> None:
    assert split_reasoning("<think>\nhm\n</think>\n\nok", None) == ("ok", "hm")
    assert split_reasoning("hm</think>\nok", None) == ("ok", "hm")
    assert split_reasoning("ok", "r") == ("ok", "r") and split_reasoning("ok", None) == ("ok", None)


# ---------------------------------------------------------------------------------------------- datasets


def hub_rows(n: int) -> list[dict[str, Any]]:
    """Rows in open-r1/OpenR1-Math-220k's column layout."""
    return [{"problem": f"What is {i} + 3?", "solution": f"{i} + 3 = {i + 3}. \\boxed{{{i + 3}}}",
             "answer": str(i + 3), "uuid": f"u{i}", "generations": [f"add. \\boxed{{{i + 3}}}", "guess \\boxed{0}"],
             "correctness_math_verify": [True, False],
             "messages": [{"role": "user", "content": f"What is {i} + 3?"},
                          {"role": "assistant", "content": f"<think>add</think>\\boxed{{{i + 3}}}"}]}
            for i in range(n)]


@pytest.mark.parametrize("layout", ["parquet", "jsonl", "hub-folder"])
def test_dataset_task_and_teacher_read_every_layout(tmp_path: Path, layout: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    rows = hub_rows(12)
    if layout == "parquet":
        pq.write_table(pa.Table.from_pylist(rows), "d.parquet")
        path = "d.parquet"
    elif layout == "jsonl":
        Path("d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        path = "d.jsonl"
    else:  # a folder laid out as a hub dataset repo, read through datasets.load_dataset
        (tmp_path / "repo/data").mkdir(parents=True)
        pq.write_table(pa.Table.from_pylist(rows), "repo/data/train-00000-of-00001.parquet")
        path = "repo"
    task = get_task("dataset")
    targs = task.Args(path=path, columns={"prompt": "problem", "answer": "answer", "id": "uuid"})
    probs = task.problems(targs, "train", 5, 0)
    assert len(probs) == 5 and probs == task.problems(targs, "train", 5, 0)
    assert all(p.prompt.startswith(f"What is {p.id.split('/u')[1]} + 3?") for p in probs)
    teacher = get_teacher("dataset")
    for col, want in (("generations.0", "add."), ("messages", "<think>add</think>"), ("solution", "")):
        out = teacher.write_all(probs, teacher.Args(columns={"completion": col}), {}, task_args=targs.model_dump())
        assert [t.problem_id for t in out.traces] == [p.id for p in probs]
        assert all(t.completion.startswith(want) for t in out.traces)
        assert all(s.correct for s in task.score_many(probs, [t.completion for t in out.traces]))
    with pytest.raises(ReproError, match=r"row 1: no column 'nope'"):
        teacher.write_all(probs, teacher.Args(columns={"completion": "nope"}), {}, task_args=targs.model_dump())


def test_dataset_row_errors_name_file_and_row(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(hub_rows(1)[0]) + "\n{not json\n")
    task = get_task("dataset")
    with pytest.raises(ReproError, match=r"bad.jsonl: row 2: invalid JSON"):
        task.problems(task.Args(path=str(bad)), "train", 5, 0)
    empty = tmp_path / "empty.jsonl"
    empty.write_text(json.dumps({**hub_rows(1)[0], "answer": ""}) + "\n")
    with pytest.raises(ReproError, match=r"empty.jsonl: row 1: column 'answer' \(for answer\) is empty"):
        task.problems(task.Args(path=str(empty)), "train", 5, 0)


# ---------------------------------------------------------------------------------------------- teachers


def test_llm_teacher_with_transformers_backend(model: Path, tmp_path: Path) -> None:
    teacher = get_teacher("llm")
    args = teacher.Args(model=str(model), sampling=SamplingConfig(max_new_tokens=8, n_samples=2, temperature=1.0))
    probs = [Problem(id=f"p{i}", task="countdown", split="train", prompt=f"{i} + 1 = ?", answer="x",
                     meta={"numbers": [i, 1], "target": i + 1, "solution": f"{i} + 1"}) for i in range(3)]
    out = teacher.write_all(probs, args, {"threads": 1, "partial": tmp_path})
    assert [(t.problem_id, t.meta["sample"]) for t in out.traces] == [(f"p{i}", j) for i in range(3) for j in range(2)]
    assert all(t.meta["correct"] is False and t.teacher == "llm" for t in out.traces)
    assert out.record["backend"] == "transformers" and out.record["requests"] == 6
    assert out.record["model"]["fingerprint"]


def test_one_correct_keeps_one_random_correct_sample_per_problem() -> None:
    def tr(pid: str, k: int, ok: bool) -> Trace:
        return Trace(problem_id=pid, task="countdown", teacher="llm", prompt="q", completion=f"{pid}-{k}",
                     answer="", gold="", meta={"correct": ok, "sample": k})

    traces = [tr("a", k, k in (1, 3)) for k in range(4)] + [tr("b", k, False) for k in range(2)] + [tr("c", 0, True)]
    picks = set()
    for seed in range(12):
        kept, stats = apply_chain(traces, [("one_correct", {})], FilterContext(seed=seed))
        assert [t.problem_id for t in kept] == ["a", "c"] and kept[0].meta["correct"]
        assert stats["kept"] + stats["dropped"] == len(traces)
        picks.add(kept[0].completion)
    assert picks == {"a-1", "a-3"}  # random among the correct ones
    again, _ = apply_chain(traces, [("one_correct", {})], FilterContext(seed=3))
    assert again == apply_chain(traces, [("one_correct", {})], FilterContext(seed=3))[0]


def test_special_tokens_list_matches_tokenizer(model: Path) -> None:
    """The tokens the served-model tests strip are exactly our special tokens other than eos."""
    _, tok = load_pretrained(model)
    assert set(SPECIAL) == set(tok.all_special_tokens) - {tok.eos_token}


STUDY_B = """name: study_b_like
title: Study B's data path at real scale (planned only)
hypothesis: none
base:
  data:
    task: dataset
    task_args: {path: open-r1/OpenR1-Math-220k, config: default, revision: main,
                columns: {prompt: problem, answer: answer, id: uuid}}
    n: 1000
    teacher:
      name: llm
      args:
        model: Qwen/Qwen3-32B
        sampling: {backend: vllm, temperature: 0.6, top_p: 0.95, top_k: 20, min_p: 0.0, max_new_tokens: 16384,
                   n_samples: 4, chat_template_kwargs: {enable_thinking: true},
                   backend_args: {tensor_parallel_size: 8, max_model_len: 20480}}
  filters: [{name: one_correct}]
  model: {source: hub, id: Qwen/Qwen2.5-7B}
  train: {steps: 10}
  eval:
    benchmarks:
      - {name: aime, task: aime24, split: test, n: 30, sampling: {n_samples: 16, temperature: 0.6}}
      - {name: math, task: math500, split: test, n: 500}
    sampling: {backend: vllm, max_new_tokens: 32768, backend_args: {tensor_parallel_size: 8}}
"""


def test_plan_estimates_teacher_requests_tokens_and_per_benchmark_samples(tmp_path: Path) -> None:
    from repro.plan import build_plan
    from repro.plansummary import render_summary, spec_estimate

    f = tmp_path / "b.yaml"
    f.write_text(STUDY_B)
    plan = build_plan([str(f)])
    est = spec_estimate(plan, plan.specs[0].job_ids, {})
    assert est["teacher_requests"] == 4000 and est["teacher_tokens"] == 4000 * 16384
    assert est["eval_samples"] == 30 * 16 + 500 and est["eval_tokens"] == (30 * 16 + 500) * 32768
    assert "teacher_requests 4.0k" in render_summary(plan, show_jobs=False)
    f.write_text(STUDY_B.replace("tensor_parallel_size: 8, max_model_len", "tensor_parallel: 8, max_model_len"))
    with pytest.raises(Exception, match="tensor_parallel"):
        build_plan([str(f)])
