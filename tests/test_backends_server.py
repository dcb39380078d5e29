"""LLMs behind a real OpenAI-compatible server (`transformers serve` on loopback, a tiny local model):
the openai backend equals the transformers backend; a generate job killed midway resumes asking only for
unanswered prompts; an LLM teacher and a Parquet trace set each run generate -> filter -> train -> eval
through Snakemake; the trained checkpoint reads the same under stock transformers loaders; and the API key
never lands in results/, logs/ or reports/.

Run: `pytest tests/test_backends_server.py` (slow: the server takes ~20 s to start on 2 cores)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import copy_workflow
from llm_server import Server, serve_command, tiny_model
from repro.config import SamplingConfig
from repro.generation import Runtime, generate

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(serve_command() is None, reason="transformers CLI (transformers[serving]) missing")]

PROMPTS = ["3 + 4 = ?", "11 + 2 = ?", "what is 5 + 5", "7 + 7 = ?", "0 + 1", "hello", "9 + 9 = ?", "1 + 1"]
SECRET = "sk-repro-test-3f9c1d2e7a"
ENV = {"REPRO_TEST_BASE_URL": "", "REPRO_TEST_API_KEY": SECRET}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    model = tiny_model(tmp_path_factory.mktemp("served") / "teacher")
    with Server(model) as srv:
        yield srv


def openai_sampling(srv: Server, **kw: object) -> SamplingConfig:
    return SamplingConfig(backend="openai", backend_args={"base_url": srv.base_url, "max_concurrency": 2},
                          **kw)  # type: ignore[arg-type]


def test_openai_backend_equals_transformers_backend_greedy(server: Server) -> None:
    s = SamplingConfig(max_new_tokens=24)
    local = generate(s, server.model, PROMPTS, Runtime(threads=1))
    before = server.requests()
    remote = generate(openai_sampling(server, max_new_tokens=24), server.model, PROMPTS)
    assert server.requests() - before == len(PROMPTS)
    assert [[(g.text, g.finished, g.n_new_tokens) for g in x] for x in remote] == \
        [[(g.text, g.finished, g.n_new_tokens) for g in x] for x in local]
    assert len({x[0].text for x in local}) == len(PROMPTS)  # the model does not just echo


def llm_spec(model: Path, n: int, max_new_tokens: int, train: bool = True) -> str:
    """A spec whose teacher is the served model behind the openai backend (URL and key from env vars)."""
    return f"""name: llm_teacher
title: LLM teacher behind an OpenAI-compatible server
hypothesis: The LLM data path runs end to end.
base:
  data:
    task: countdown
    task_args: {{n_numbers: 3, ood_n_numbers: 4}}
    n: {n}
    teacher:
      name: llm
      args:
        model: {model}
        sampling:
          backend: openai
          max_new_tokens: {max_new_tokens}
          backend_args: {{base_url_env: REPRO_TEST_BASE_URL, api_key_env: REPRO_TEST_API_KEY, max_concurrency: 1}}
  filters: [{{name: length, args: {{min: 1}}}}]
  model: {{source: scratch, arch: xs, tokenizer: {{kind: bpe, vocab_size: 300, pretokenizer: qwen2}}}}
  train: {{steps: 3, batch_size: 4, max_length: 96, lr: 1.0e-3, schedule: constant}}
  eval:
    benchmarks:
      - {{name: cd, task: countdown, split: id, n: 4, role: id}}
    sampling: {{max_new_tokens: 8}}
"""


def repro(wd: Path, *args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "repro", *args], cwd=wd, capture_output=True, text=True,
                          env={**os.environ, **env}, check=check, timeout=600)


def job_of(wd: Path, spec: str, stage: str, env: dict[str, str]) -> dict:
    jobs = json.loads(repro(wd, "plan", spec, "--json", env=env).stdout)["jobs"]
    return next(j for j in jobs if j["stage"] == stage)


def test_killed_generate_job_resumes_with_only_unanswered_prompts(server: Server, tmp_path: Path) -> None:
    env = {**ENV, "REPRO_TEST_BASE_URL": server.base_url}
    spec = "experiments/llm_teacher.yaml"
    runs = {}
    for name in ("killed", "whole"):
        (tmp_path / name).mkdir()
        wd = copy_workflow(tmp_path / name)
        (wd / spec).write_text(llm_spec(server.model, n=10, max_new_tokens=120))
        runs[name] = (wd, job_of(wd, spec, "generate", env))
    wd, job = runs["killed"]
    assert job["id"] == runs["whole"][1]["id"]
    partial = Path(wd / job["outdir"]).parent / f".partial-{Path(job['outdir']).name}"
    proc = subprocess.Popen([sys.executable, "-m", "repro", "run", job["id"], "--specs", spec], cwd=wd,
                            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 300
    answered = 0
    while time.monotonic() < deadline and proc.poll() is None:
        stores = list(partial.glob("answers-*.jsonl"))
        answered = len(stores[0].read_text().splitlines()) if stores else 0
        if answered >= 3:
            os.killpg(proc.pid, signal.SIGKILL)
            break
        time.sleep(0.05)
    proc.wait(30)
    assert 3 <= answered < 10, f"the job was not killed midway ({answered} answered, rc {proc.returncode})"
    assert not (wd / job["outdir"] / "manifest.json").exists()
    # let a request that was in flight at the kill finish on the server, then count from there
    last, stable_since = server.requests(), time.monotonic()
    while time.monotonic() - stable_since < 3:
        time.sleep(0.2)
        if server.requests() != last:
            last, stable_since = server.requests(), time.monotonic()
    stored = len(next(partial.glob("answers-*.jsonl")).read_text().splitlines())
    repro(wd, "run", job["id"], "--specs", spec, env=env)
    print(f"killed after {stored} of 10 answers; the rerun sent {server.requests() - last} requests")
    assert server.requests() - last == 10 - stored
    assert not partial.exists()
    wd2, _ = runs["whole"]
    before = server.requests()
    repro(wd2, "run", job["id"], "--specs", spec, env=env)
    assert server.requests() - before == 10
    for f in ("traces.jsonl", "problems.jsonl", "stats.json", "generation.json", "manifest.json"):
        assert (wd / job["outdir"] / f).read_bytes() == (wd2 / job["outdir"] / f).read_bytes(), f
    gen = json.loads((wd / job["outdir"] / "generation.json").read_text())
    assert gen["backend"] == "openai" and gen["requests"] == 10 and "api_key_env" in gen["args"]


def snakemake(wd: Path, spec: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--config", f"specs={spec}"], cwd=wd,
                          capture_output=True, text=True, env={**os.environ, **env}, timeout=900)


def test_llm_teacher_spec_runs_through_snakemake_without_leaking_the_key(server: Server, tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from repro.backends.hf import generate_with_model
    from repro.models import load_pretrained, render_prompt

    env = {**ENV, "REPRO_TEST_BASE_URL": server.base_url}
    wd = copy_workflow(tmp_path)
    spec = "experiments/llm_teacher.yaml"
    (wd / spec).write_text(llm_spec(server.model, n=6, max_new_tokens=32))
    before = server.requests()
    r = snakemake(wd, spec, env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert server.requests() - before == 6
    gen = job_of(wd, spec, "generate", env)
    assert json.loads((wd / gen["outdir"] / "stats.json").read_text())["traces"] == 6
    ev = job_of(wd, spec, "eval", env)
    assert json.loads((wd / ev["outdir"] / "cd" / "metrics.json").read_text())["n_items"] == 4
    assert (wd / "reports" / "llm_teacher.html").is_file()
    leaks = [str(p) for d in ("results", "logs", "reports") for p in (wd / d).rglob("*")
             if p.is_file() and SECRET.encode() in p.read_bytes()]
    assert not leaks
    # acceptance 4: the checkpoint trained from scratch reads the same under stock transformers loaders
    ckpt = next((wd / job_of(wd, spec, "train", env)["outdir"] / "checkpoints").glob("step-3"))
    tok, stock = AutoTokenizer.from_pretrained(ckpt), AutoModelForCausalLM.from_pretrained(ckpt)
    ours, our_tok = load_pretrained(ckpt)
    msgs = [[{"role": "user", "content": p}] for p in PROMPTS]
    stock_ids = [tok.apply_chat_template(m, add_generation_prompt=True, return_dict=True)["input_ids"] for m in msgs]
    assert stock_ids == [our_tok(text=render_prompt(p))["input_ids"] for p in PROMPTS]
    s = SamplingConfig(max_new_tokens=16)
    texts = [tok.apply_chat_template(m, add_generation_prompt=True, tokenize=False) for m in msgs]
    assert generate_with_model(stock, tok, texts, s, Runtime(threads=1)) == \
        generate_with_model(ours, our_tok, [render_prompt(p) for p in PROMPTS], s, Runtime(threads=1))


PARQUET_SPEC = """name: parquet_traces
title: Ready-made traces from a Parquet file in the hub's layout
hypothesis: The dataset data path runs end to end.
base:
  data:
    task: dataset
    task_args: {path: data/openr1/data/train-00000-of-00001.parquet,
                columns: {prompt: problem, answer: answer, id: uuid}}
    n: 16
    teacher: {name: dataset, args: {columns: {completion: generations.0}}}
  filters: [{name: verified}]
  model: {source: scratch, arch: xs, tokenizer: {kind: bpe, vocab_size: 300}}
  train: {steps: 3, batch_size: 4, max_length: 96, lr: 1.0e-3, schedule: constant}
  eval:
    benchmarks:
      - {name: pq, task: dataset, split: test, n: 4, role: id}
    sampling: {max_new_tokens: 8}
"""


def test_parquet_traces_spec_runs_through_snakemake(tmp_path: Path) -> None:
    wd = copy_workflow(tmp_path)
    rows = [{"problem": f"What is {i} + 3?", "solution": f"{i} + 3 = {i + 3}", "answer": str(i + 3), "uuid": f"u{i}",
             "generations": [f"{i} plus 3 is {i + 3}. \\boxed{{{i + 3}}}" if i % 4 else "no idea \\boxed{0}"],
             "correctness_math_verify": [bool(i % 4)]} for i in range(20)]
    (wd / "data/openr1/data").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), wd / "data/openr1/data/train-00000-of-00001.parquet")
    spec = "experiments/parquet_traces.yaml"
    (wd / spec).write_text(PARQUET_SPEC)
    r = snakemake(wd, spec, {})
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    gen = job_of(wd, spec, "generate", {})
    stats = json.loads((wd / gen["outdir"] / "stats.json").read_text())
    assert stats["problems"] == 16 and stats["traces"] == 16
    filt = job_of(wd, spec, "filter", {})
    fstats = json.loads((wd / filt["outdir"] / "stats.json").read_text())
    wrong = sum(1 for line in (wd / gen["outdir"] / "traces.jsonl").read_text().splitlines()
                if "no idea" in json.loads(line)["completion"])
    assert wrong > 0 and fstats["dropped"] == wrong and fstats["kept"] == 16 - wrong
    ev = job_of(wd, spec, "eval", {})
    assert json.loads((wd / ev["outdir"] / "pq" / "metrics.json").read_text())["n_items"] == 4
