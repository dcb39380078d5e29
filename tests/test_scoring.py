"""Scoring as the studies score: the answer part after `</think>`, boxed-first math, IFEval by lm-eval's
reference, and `repro score` on files made elsewhere (layouts, matching, errors, --out)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from repro.cli import main
from repro.scoring import answer_part
from repro.scoring.score_cli import score_file
from repro.tasks import get_task


def test_answer_part() -> None:
    assert answer_part("plain answer") == "plain answer"
    assert answer_part("<think>a</think>b") == "b"
    assert answer_part("<think>a</think>b<think>c</think> d") == " d"
    assert answer_part("<think>never closed") is None
    assert answer_part("<think>a</think> b <think>reopened") is None
    assert answer_part("template opened it </think> ans") == " ans"
    assert answer_part("") == ""


def _real(answer: str, decoy: str) -> str:
    """A completion as a reasoning model writes it: a decoy final answer (boxed too) inside the reasoning,
    a decoy phrase in the answer part, then the final boxed answer."""
    return (f"<think>\nSuppose the final answer is {decoy}. Then $\\boxed{{{decoy}}}$? That fails a check.\n"
            f"</think>\n\nThe final answer is not {decoy}; working it out,\n\n"
            f"Therefore the final answer is $\\boxed{{{answer}}}$.")


def _write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_math_reads_only_the_answer_part_and_the_box_first() -> None:
    task = get_task("math500")
    p = task.problems(task.Args(n=3, seed=0), "test", 0, 0)[0]
    s = task.score(p, _real(p.answer, "12345"))
    assert s.correct and s.answered
    assert not task.score(p, _real("12345", p.answer)).correct  # the right answer only as a decoy: wrong
    s = task.score(p, f"<think>the answer is \\boxed{{{p.answer}}} ... still going")
    assert not s.correct and not s.answered and s.pred is None  # unclosed reasoning = unanswered
    assert not task.score(p, "<think>x</think>   ").answered


@pytest.mark.parametrize("gold,reply,ok", [
    ("5", r"\boxed{5\text{ cm}}", True),                # units in the box
    ("5", r"\boxed{5 \text{ cm}^2}", True),
    ("18", r"\boxed{18 \text{ dollars}}", True),
    ("90", r"\boxed{90^\circ}", True),
    (r"\frac{1}{2}", r"\boxed{\dfrac12}", True),
    (r"\text{(C)}", r"\boxed{C}", True),
    ("5", r"\boxed{x=5}", True),
    ("7", r"The final answer is 7. \boxed{8}", False),  # the box outranks the phrase
    ("8", r"The final answer is 7. \boxed{8}", True),
    ("2", r"\boxed{3}", False),
])
def test_math_formats_real_models_write(gold: str, reply: str, ok: bool) -> None:
    from repro.records import Problem

    task = get_task("aime24")
    p = Problem(id="aime24/x", task="aime24", split="test", prompt="q", answer=gold)
    assert task.score(p, "<think>r</think>" + reply).correct is ok


@pytest.mark.slow
def test_math500_gold_500_wrong_0_through_repro_score(tmp_path: Path, capsys) -> None:
    """Acceptance 2: every gold answer written as models write it scores 500/500; shuffled ones 0."""
    task = get_task("math500")
    probs = task.problems(task.Args(), "test", 0, 0)
    gold = _write(tmp_path / "gold.jsonl", [{"id": p.id, "completion": _real(p.answer, "0" if p.answer != "0" else "1")}
                                            for p in probs])
    assert main(["score", "math500", str(gold)]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["n_correct"] == 500 and m["accuracy"] == 1.0 and m["n_timed_out"] == 0
    answers = [p.answer for p in probs]
    perm = list(range(len(probs)))
    random.Random(0).shuffle(perm)
    rows = []
    for i, p in enumerate(probs):
        j = perm[i]
        while answers[j].replace(" ", "") == p.answer.replace(" ", ""):
            j = (j + 1) % len(probs)
        rows.append({"prompt": p.meta["source_prompt"], "response": _real(answers[j], p.answer)})  # by prompt
    m = score_file("math500", _write(tmp_path / "wrong.jsonl", rows))
    assert m["n_correct"] == 0 and m["n_items"] == 500


def test_repro_score_unclosed_reasoning_counted(tmp_path: Path, capsys) -> None:
    task = get_task("aime25")
    probs = task.problems(task.Args(), "test", 0, 0)[:4]
    rows = [{"id": probs[0].id, "completion": _real(probs[0].answer, "1")},
            {"id": probs[1].id, "completion": "<think>" + _real(probs[1].answer, "1").replace("</think>", "")},
            {"id": probs[2].id.removeprefix("aime25/"), "completion": "no answer at all"},  # dataset id
            {"prompt": probs[3].prompt, "response": f"\\boxed{{{probs[3].answer}}}"}]      # templated prompt
    out = tmp_path / "res.jsonl"
    assert main(["score", "aime25", str(_write(tmp_path / "c.jsonl", rows)), "--out", str(out)]) == 0
    m = json.loads(capsys.readouterr().out)
    assert (m["n_lines"], m["n_correct"], m["n_unanswered"]) == (4, 2, 2)
    res = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in res] == [p.id for p in probs]
    assert [r["correct"] for r in res] == [True, False, False, True]
    assert [r["answered"] for r in res] == [True, False, False, True]


@pytest.mark.parametrize("line,msg", [
    ('{"id": "nope", "completion": "x"}', "line 2: no aime25 item has id 'nope'"),
    ('{"prompt": "what?", "response": "x"}', "line 2: no aime25 item has this prompt"),
    ("{not json", "line 2: not JSON"),
    ('{"id": "0"}', "line 2: needs a string 'completion' or 'response'"),
    ('{"completion": "x"}', "line 2: needs an 'id' or a 'prompt'"),
])
def test_repro_score_bad_lines_exit_2(tmp_path: Path, capsys, line: str, msg: str) -> None:
    f = tmp_path / "c.jsonl"
    f.write_text('{"id": "0", "completion": "\\\\boxed{70}"}\n' + line + "\n")
    assert main(["score", "aime25", str(f)]) == 2
    err = capsys.readouterr().err
    assert msg in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


# ----------------------------------------------------------------------------------------------- IFEval


def test_ifeval_uses_all_540_prompts_and_25_types() -> None:
    from repro.scoring.ifeval import instruction_types

    task = get_task("ifeval")
    probs = task.problems(task.Args(), "test", 0, 0)
    assert len(probs) == 540
    assert {i for p in probs for i in p.meta["instruction_id_list"]} == set(instruction_types())
    assert len(instruction_types()) == 25


def test_ifeval_strict_loose_and_reasoning() -> None:
    task = get_task("ifeval")
    first = next(p for p in task.problems(task.Args(), "test", 0, 0) if p.meta["key"] == 1000)
    good = "*one* *two* *three* " + "word " * 300  # no comma, 3 highlights, >= 300 words
    assert task.score(first, good).correct
    s = task.score(first, good.replace("word", "word,", 1))
    assert not s.correct and s.pred == "2/3"
    s = task.score(first, "<think>lots, of, commas</think>" + good)
    assert s.correct  # the reasoning is not scored
    s = task.score(first, "<think>" + good)
    assert not s.correct and not s.answered
    # loose drops a first line and asterisks: a leading comma line fails strict, passes loose
    s = task.score(first, "Sure, here it is:\n" + good)
    assert not s.extra["strict"]["follow_all_instructions"] and s.extra["loose"]["follow_instruction_list"][0]


def _varied_responses(probs: list) -> list[dict]:
    """Several kinds of responses per prompt, so that every instruction type meets followed and unfollowed
    cases: the prompt echoed, lowercase prose, shouting, JSON, bullets, sections, quotes, a postscript."""
    kinds = [
        lambda p: p.prompt,
        lambda p: "here is my answer. it has no capitals and no commas at all\n\n* first\n* second\n* third",
        lambda p: '"' + "THIS IS LOUD. SECTION 1\nP.S. DONE" + '"',
        lambda p: '```json\n{"answer": "yes", "text": "My answer is yes."}\n```',
        lambda p: "<<A Title>>\n\n*highlighted* and *more* [name] [address]\n***\nSecond paragraph, with a comma.\n"
                  "Is there anything else I can help with?",
        lambda p: p.prompt + "\n" + "word " * 120 + "\n******\nanother response entirely " + "!" * 8,
        lambda p: "",
    ]
    return [{"prompt": p.prompt, "response": kinds[(i + j) % len(kinds)](p)}
            for i, p in enumerate(probs) for j in range(2)]


@pytest.mark.slow
def test_repro_score_ifeval_equals_lm_eval_reference(tmp_path: Path, capsys) -> None:
    """`repro score ifeval` per line == lm-eval's reference functions called directly, on 1,080 varied
    responses to the 540 shipped prompts; the four metric names are printed."""
    from lm_eval.tasks.ifeval import utils

    from repro.scoring.ifeval import reference

    reference()  # offline data in place before the direct calls below
    task = get_task("ifeval")
    probs = task.problems(task.Args(), "test", 0, 0)
    rows = _varied_responses(probs)
    out = tmp_path / "out.jsonl"
    assert main(["score", "ifeval", str(_write(tmp_path / "r.jsonl", rows)), "--out", str(out)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    for k in ("prompt_level_strict_acc", "inst_level_strict_acc", "prompt_level_loose_acc", "inst_level_loose_acc"):
        assert 0.0 < metrics[k] < 1.0
    results = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(results) == len(rows)
    by_prompt = {p.prompt: p for p in probs}
    followed = {"strict": 0, "loose": 0}
    for row, res in zip(rows, results):
        p = by_prompt[row["prompt"]]
        inp = utils.InputExample(key=p.meta["key"], instruction_id_list=p.meta["instruction_id_list"],
                                 prompt=p.prompt, kwargs=p.meta["kwargs"])
        assert res["prompt"] == p.prompt
        for kind, fn in (("strict", utils.test_instruction_following_strict),
                         ("loose", utils.test_instruction_following_loose)):
            random.seed(p.meta["key"])  # the reference draws a letter when the dataset's is not a-z
            ref = fn(inp, row["response"])
            assert res[kind] == {"follow_all_instructions": ref.follow_all_instructions,
                                 "follow_instruction_list": ref.follow_instruction_list}
            followed[kind] += ref.follow_all_instructions
    assert 0 < followed["strict"] <= followed["loose"] < len(rows)


def test_report_cell_shows_what_scoring_counted() -> None:
    import pandas as pd

    from repro.report.sections import _counted

    assert _counted(pd.Series({"n_timed_out": 2.0, "n_scorer_errors": 0.0, "n_unanswered": 3.0})) == \
        " (2 timed out, 3 unanswered)"
    assert _counted(pd.Series({"n_timed_out": float("nan")})) == ""
