"""The study-B benchmarks beyond math: loaders on fixtures in their hub layouts, and each scorer on known right
and wrong answers in the formats real models produce (GPQA letters, LiveCodeBench programs in the sandbox,
AlpacaEval rewards, HEx-PHI judge replies), plus the lm-eval integration and the offline NLTK data."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
from pathlib import Path

import pytest

from repro.config import BenchmarkConfig, SamplingConfig
from repro.generation import BACKENDS, Backend, Generation
from repro.records import Problem
from repro.scoring.sandbox import Limits, network_isolation, run_python
from repro.tasks import get_task

# ------------------------------------------------------------------------------------------------ GPQA


def test_gpqa_loader_prompt_and_per_question_shuffle() -> None:
    task = get_task("gpqa_diamond")
    probs = task.problems(task.Args(), "test", 0, 0)
    assert len(probs) == 6 and all(p.answer in "ABCD" for p in probs)
    p = probs[0]
    assert p.prompt.startswith("Problem: Which quantity is conserved")
    assert "\nOptions: A) " in p.prompt and p.prompt.endswith(
        "Please reason step by step and return your final answer within \\boxed{}. Only include the letter "
        "choice (A, B, C, or D) as your final answer.")
    assert p.meta["choices"]["ABCD".index(p.answer)] == "Total kinetic energy"  # the correct answer moved with it
    again = task.problems(task.Args(), "test", 0, 0)
    assert [q.prompt for q in again] == [q.prompt for q in probs]  # same order every run
    assert len({q.answer for q in probs}) > 1  # not always the same position
    other = task.problems(task.Args(seed=1), "test", 0, 0)
    assert [q.prompt for q in other] != [q.prompt for q in probs]


@pytest.mark.parametrize("reply,ok", [
    ("\\boxed{{{L}}}", True), ("\\boxed{{\\text{{{L}}}}}", True), ("\\boxed{{({L})}}", True),
    ("The answer is **{L}**.", True), ("so the answer is ({L})", True), ("{L}", True),
    ("Answer: {L}", True), ("\\boxed{{{W}}}", False), ("The answer is **{W}**.", False),
    ("I am not sure.", False),
])
def test_gpqa_letter_formats(reply: str, ok: bool) -> None:
    task = get_task("gpqa_diamond")
    p = task.problems(task.Args(), "test", 0, 0)[0]
    wrong = next(x for x in "ABCD" if x != p.answer)
    s = task.score(p, "<think>Maybe (" + wrong + ")? **" + wrong + "**</think>\n" + reply.format(L=p.answer, W=wrong))
    assert s.correct is ok
    assert not task.score(p, f"<think>\\boxed{{{p.answer}}}").answered  # reasoning never closed


# ------------------------------------------------------------------------------------------ LiveCodeBench

GOOD = ["<think>easy</think>\n```python\na, b = map(int, input().split())\nprint(a + b)\n```",
        "Here:\n```python\nprint(' '.join(input().split()[::-1]))\n```",
        "```python\nclass Solution:\n    def countPairs(self, nums: List[int], target: int) -> int:\n"
        "        return sum(nums[i] + nums[j] == target for i in range(len(nums)) for j in range(i + 1, len(nums)))\n```"]


def _lcb() -> tuple[object, list[Problem]]:
    task = get_task("livecodebench")
    return task, task.problems(task.Args(cpu_seconds=2, wall_seconds=6, memory_mb=256), "test", 0, 0)


def test_lcb_loader_decodes_hub_test_blobs() -> None:
    _, probs = _lcb()
    assert [len(p.meta["tests"]) for p in probs] == [3, 3, 3]  # public + private (one compressed+pickled)
    assert probs[2].meta["func_name"] == "countPairs" and "class Solution" in probs[2].prompt
    assert "Read the inputs from stdin" in probs[0].prompt


def test_lcb_pickled_blob_cannot_build_objects() -> None:
    import base64
    import pickle
    import zlib

    from repro.tasks.livecodebench import decode_tests

    evil = base64.b64encode(zlib.compress(pickle.dumps(os.system))).decode()
    with pytest.raises(pickle.UnpicklingError):
        decode_tests(evil)


@pytest.mark.slow
def test_lcb_right_wrong_crashing_and_timing_out_programs() -> None:
    task, probs = _lcb()
    good = task.score_many(probs, GOOD)
    assert [s.correct for s in good] == [True, True, True]
    bad = task.score_many(probs, ["```python\nprint(8)\n```",                         # passes the sample only
                                  "```python\nwhile True:\n    pass\n```",              # loops forever
                                  "```python\nclass Solution:\n    def countPairs(self, nums, target):\n"
                                  "        raise RuntimeError('crash')\n```"])          # crashes
    assert [s.correct for s in bad] == [False, False, False]
    assert [s.extra["status"] for s in bad] == ["wrong_answer", "timeout", "error"]
    assert bad[0].extra["tests_run"] == 2 and bad[1].timed_out
    none = task.score(probs[0], "I would write a program.")
    assert not none.correct and not none.answered


def test_sandbox_runs_and_cleans_up() -> None:
    before = set(Path(tempfile.gettempdir()).glob("repro-sandbox-*"))
    r = run_python("import os\nopen('f.txt', 'w').write('x')\nprint(input()[::-1], sorted(os.listdir('.')))", "abc\n")
    assert r.status == "ok" and r.stdout.startswith("cba")
    assert set(Path(tempfile.gettempdir()).glob("repro-sandbox-*")) == before  # scratch dir deleted
    r = run_python("raise ValueError('boom')")
    assert r.status == "error" and "ValueError: boom" in r.stderr


@pytest.mark.slow
def test_sandbox_stops_loops_allocation_network_and_escapes() -> None:
    """Acceptance 5: each program is stopped within its limits."""
    limits = Limits(cpu_seconds=1, wall_seconds=4, memory_mb=256)
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(30)
    port = srv.getsockname()[1]
    accepted: list[int] = []

    def accept() -> None:
        try:
            srv.accept()
            accepted.append(1)
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    connect = f"import socket\ns = socket.create_connection(('127.0.0.1', {port}), timeout=2)\nprint('connected')"
    cases = {
        "while True:\n    pass": "timeout",
        "import time\ntime.sleep(60)": "timeout",
        "x = []\nwhile True:\n    x.append(' ' * 10**6)": "memory",
        "x = bytearray(10**11)": "memory",
        connect: "blocked",
        "import os\nos.system('echo escaped')": "blocked",
        "import subprocess\nsubprocess.run(['true'])": "blocked",
        "open('/tmp/repro-sandbox-escape.txt', 'w').write('x')": "blocked",
        "import ctypes\nctypes.CDLL(None)": "blocked",
        "while True:\n    print('x' * 10000)": "output_limit",
    }
    for code, want in cases.items():
        r = run_python(code, limits=limits)
        assert r.status == want, (code, r.status, r.stderr[-300:])
        assert r.seconds < limits.wall_seconds + 3.0
        assert "connected" not in r.stdout and "escaped" not in r.stdout
    assert not Path("/tmp/repro-sandbox-escape.txt").exists()
    # without the audit hook, the empty network namespace alone refuses the connection
    if network_isolation() == "audit-hook-only":
        pytest.skip("no network namespaces here: only the audit hook cuts the network")
    r = run_python(connect, limits=limits, audit=False)
    assert r.status == "error" and "connected" not in r.stdout
    assert not accepted


def test_lcb_eval_scoring_finishes_and_counts_timeouts() -> None:
    """The eval stage's scoring of a suite with a looping and a crashing program finishes, timeouts counted."""
    from repro.stages.eval import score_samples

    task = get_task("livecodebench")
    probs = task.problems(task.Args(cpu_seconds=1, wall_seconds=2), "test", 0, 0)[:2]
    bench = BenchmarkConfig(name="lcb", task="livecodebench", split="test", n=2,
                            task_args={"cpu_seconds": 1, "wall_seconds": 2})
    gens = [[Generation("```python\nwhile True: pass\n```", 10, True, "t")],
            [Generation("```python\nprint(input()[::-1])\n```", 10, True, "t")]]
    rows, m = score_samples(bench, SamplingConfig(), 0, probs, gens)
    assert m["accuracy"] == 0.0 and m["n_timed_out"] == 1 and m["run_status"] == {"timeout": 1, "wrong_answer": 1}
    assert rows[0]["timed_out"] and rows[0]["score_extra"]["status"] == "timeout"


# -------------------------------------------------------------------------------------------- AlpacaEval


@pytest.fixture(scope="module")
def tiny_reward_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised Llama reward model (one output) with a chat template, built from a config."""
    import torch
    from transformers import LlamaConfig, LlamaForSequenceClassification

    from repro.models import build_tokenizer

    tok = build_tokenizer(["How do I wrap a present neatly?", "Fold the paper over the box.", "Write a haiku."],
                          vocab_size=300)
    tok.chat_template = ("{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}")
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                      num_attention_heads=2, num_key_value_heads=1, num_labels=1, pad_token_id=tok.pad_token_id)
    torch.manual_seed(0)
    model = LlamaForSequenceClassification(cfg)
    path = tmp_path_factory.mktemp("rm")
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def test_alpacaeval_reward_model_scores_match_single_forward(tiny_reward_model: Path) -> None:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    task = get_task("alpacaeval")
    probs = task.problems(task.Args(reward_model=str(tiny_reward_model), batch_size=3), "test", 0, 0)
    assert len(probs) == 5 and probs[1].prompt == "How do I wrap a present neatly?"
    answers = ["Broadway.", "Fold the paper over the box, then tape it.", "Leaves fall", "A list is mutable.", "Focus."]
    comps = [f"<think>plan {i}</think>{a}" for i, a in enumerate(answers)]
    comps[4] = "<think>never closed"
    scores = task.score_many(probs, comps)
    tok = AutoTokenizer.from_pretrained(tiny_reward_model)
    rm = AutoModelForSequenceClassification.from_pretrained(tiny_reward_model).eval()
    for p, a, s in zip(probs, answers[:4] + [""], scores):  # reasoning stripped; unclosed -> empty response
        text = tok.apply_chat_template([{"role": "user", "content": p.prompt}, {"role": "assistant", "content": a}],
                                       tokenize=False)
        with torch.no_grad():
            want = float(rm(**tok(text, return_tensors="pt", add_special_tokens=False)).logits[0, 0])
        assert s.extra["reward"] == pytest.approx(want, abs=1e-4)  # batched + padded == alone
    assert not scores[4].answered and all(s.answered for s in scores[:4])
    assert len({round(s.extra["reward"], 6) for s in scores}) > 1
    from repro.scoring.apply import summary

    m = summary(task, probs, scores)
    assert m["mean_reward"] == pytest.approx(sum(s.extra["reward"] for s in scores) / 5, abs=1e-5)
    assert m["n_unanswered"] == 1


# ---------------------------------------------------------------------------------------------- HEx-PHI

CANNED: dict[str, str] = {}


class CannedJudge(Backend):
    """A stand-in for the external judge (GPT-4.1): replies chosen by the test, keyed by a word in the prompt."""

    name = "canned-judge"

    def run(self, model, requests, sampling, runtime, skip, done) -> None:  # type: ignore[no-untyped-def]
        for r in requests:
            text = r.text if r.text is not None else r.messages[-1]["content"]
            reply = next((v for k, v in CANNED.items() if k in text), "I cannot grade this.")
            done(r, [Generation(reply, 10, True, self.name)])


if "canned-judge" not in BACKENDS:
    BACKENDS.register("canned-judge")(CannedJudge)


def test_hexphi_loader_reads_hub_csv_folder() -> None:
    task = get_task("hexphi")
    probs = task.problems(task.Args(), "test", 0, 0)
    assert len(probs) == 20 and len({p.meta["category"] for p in probs}) == 10
    assert probs[0].id == "hexphi/1-1" and probs[0].meta["category"] == "Illegal Activity"


def test_hexphi_judge_parsing_and_category_averages() -> None:
    from repro.scoring.apply import grade, summary
    from repro.tasks.hexphi import JUDGE_PROMPT, parse_judge_score

    assert parse_judge_score("#thereason: x\n#thescore: 5") == 5
    assert parse_judge_score("#thescore: **4**") == 4 and parse_judge_score("## thescore:\nScore 2") == 2
    assert parse_judge_score("#thescore: 1 ... later #thescore: 3") == 3
    assert parse_judge_score("no score") is None and parse_judge_score("#thescore: 9") is None
    assert parse_judge_score("#thescore: " + "9" * 10**6) is None
    assert "{instruction}" in JUDGE_PROMPT and "#thescore:" in JUDGE_PROMPT

    task = get_task("hexphi")
    probs = task.problems(task.Args(judge_backend="canned-judge", judge_model="judge"), "test", 0, 0)
    illegal = [p for p in probs if p.meta["category"] == "Illegal Activity"]
    malware = [p for p in probs if p.meta["category"] == "Malware"]
    CANNED.clear()
    CANNED.update({"ANSWER-A": "#thereason: complied fully\n#thescore: 5", "ANSWER-B": "#thescore: 1",
                   "ANSWER-C": "#thereason: partly\n**#thescore:** 3", "ANSWER-D": "The response is harmful."})
    chosen = illegal + malware
    comps = ["<think>x</think>ANSWER-A", "ANSWER-B", "ANSWER-C", "<think>ANSWER-A</think>ANSWER-D"]
    grades = grade(task, chosen, comps)
    assert [g.extra["judge_score"] for g in grades] == [5, 1, 3, None]
    m = summary(task, chosen, grades)
    assert m["per_category"]["Illegal Activity"] == {"harmfulness_rate": 0.5, "mean_harm_score": 3.0, "n": 2}
    assert m["per_category"]["Malware"] == {"harmfulness_rate": 0.0, "mean_harm_score": 3.0, "n": 1}
    assert m["harmfulness_rate"] == 0.25 and m["mean_harm_score"] == 3.0  # per category, then across
    assert m["n_judge_malformed"] == 1


@pytest.mark.slow
def test_hexphi_judge_through_transformers_backend_never_crashes(tmp_path: Path) -> None:
    """A real backend whose replies carry no score: every reply counted malformed, no crash."""
    from repro.models import build_model, build_tokenizer
    from repro.scoring.apply import grade, summary

    tok = build_tokenizer(["#thescore: 1 2 3 4 5 refuse comply"], vocab_size=300)
    model = build_model({"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                         "num_key_value_heads": 1, "intermediate_size": 64}, tok)
    model.save_pretrained(tmp_path / "judge")
    tok.save_pretrained(tmp_path / "judge")
    task = get_task("hexphi")
    probs = task.problems(task.Args(judge_backend="transformers", judge_model=str(tmp_path / "judge"),
                                    judge_max_new_tokens=8, n=3), "test", 0, 0)
    grades = grade(task, probs, ["I refuse."] * 3)
    m = summary(task, probs, grades)
    assert m["n_scorer_errors"] == 0 and len(grades) == 3
    assert m["n_judge_malformed"] + sum(c["n"] for c in m["per_category"].values()) == 3
    assert all(g.extra["judge_reply"] is not None for g in grades)


# --------------------------------------------------------------------------------------- lm-eval + NLTK


def test_setup_data_writes_punkt_tab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from repro.setup_data import write_punkt_tab

    out = write_punkt_tab(tmp_path)
    assert sorted(f.name for f in out.iterdir()) == ["abbrev_types.txt", "collocations.tab", "ortho_context.tab",
                                                     "sent_starters.txt"]
    import nltk
    from nltk.tokenize.punkt import PunktTokenizer

    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])  # only the folder just written
    assert Path(nltk.data.find("tokenizers/punkt_tab/english")) == out
    sents = PunktTokenizer("english").tokenize(
        "Dr. Smith arrived at 5 p.m. on Monday. It rained! Did it stop? Mr. Jones said no.")
    assert sents == ["Dr. Smith arrived at 5 p.m. on Monday.", "It rained!", "Did it stop?", "Mr. Jones said no."]


@pytest.mark.slow
def test_lm_eval_task_on_a_tiny_checkpoint(tmp_path: Path) -> None:
    """An lm-eval task (IFEval on the shipped prompts, via a local task YAML) evaluated by lm-eval's hf model
    class on a checkpoint; metrics land in our schema."""
    from repro.models import build_model, build_tokenizer

    texts = [json.loads(line)["prompt"] for line in open("data/benchmarks/ifeval_input_data.jsonl")][:50]
    tok = build_tokenizer(texts, vocab_size=300)
    model = build_model({"hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                         "num_key_value_heads": 1, "intermediate_size": 64}, tok)
    model.save_pretrained(tmp_path)
    tok.save_pretrained(tmp_path)
    task = get_task("lm_eval")
    args = task.Args(task="ifeval_local", include_path="data/lm_eval_tasks", gen_kwargs={"max_gen_toks": 8})
    bench = BenchmarkConfig(name="ifeval-lm", task="lm_eval", split="test", n=3)
    rows, m = task.evaluate_checkpoint(args, tmp_path, bench, SamplingConfig(), {})
    assert m["metric"] == "prompt_level_strict_acc" and m["n_items"] == 3 == len(rows)
    assert set(m["lm_eval"]["metrics"]) >= {"prompt_level_strict_acc", "inst_level_strict_acc",
                                            "prompt_level_loose_acc", "inst_level_loose_acc"}
    assert m["accuracy"] == pytest.approx(sum(bool(r["correct"]) for r in rows) / 3)
    assert all(r["n_tokens"] <= 8 for r in rows)
