"""The synthetic world: task generators, scorers and programmatic teachers (pure Python, fast)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from collections import Counter
from typing import Any

import pytest
from pydantic import ValidationError

from repro.records import Problem, Trace
from repro.tasks import get_task
from repro.tasks.countdown import parse_expr
from repro.tasks.probes import REFUSAL, harm_score
from repro.tasks.twohop import build_kg
from repro.teachers import get_teacher
from repro.teachers.styles import DEDUCE_BANNED, PROPOSE_PREFIXES

WORLD_TASKS = ("countdown", "modarith", "twohop", "sort", "parity", "safety", "ifprobe")
WORLD_TEACHERS = ("convergent", "divergent", "nocot", "lowquality", "search", "twohop_cot", "twohop_nocot", "noisy")


def _sha(rows: list[Any]) -> str:
    text = "".join(json.dumps(dataclasses.asdict(r), sort_keys=True) + "\n" for r in rows)
    return hashlib.sha256(text.encode()).hexdigest()


def _problems(task: str, split: str, n: int, seed: int = 0, **args: object) -> list[Problem]:
    t = get_task(task)
    return t.problems(t.Args(**args), split=split, n=n, seed=seed)


def _traces(teacher: str, problems: list[Problem], seed: int = 0, **args: object) -> list[Trace]:
    t = get_teacher(teacher)
    rng, a = random.Random(seed), t.Args(**args)
    return [tr for tr in (t.write(p, a, rng) for p in problems) if tr is not None]


def _cd(numbers: list[int], target: int) -> Problem:
    return Problem("cd/x", "countdown", "id", "", str(target), {"numbers": numbers, "target": target})


# ----------------------------------------------------------------------------- args and determinism


@pytest.mark.parametrize("name", WORLD_TASKS + WORLD_TEACHERS)
def test_args_defaults_strict_and_described(name: str) -> None:
    obj = get_task(name) if name in WORLD_TASKS else get_teacher(name)
    obj.Args()  # `{}` works
    assert all(f.description for f in obj.Args.model_fields.values())
    with pytest.raises(ValidationError):
        obj.Args(no_such_field=1)


def test_same_seed_same_bytes_other_seed_differs() -> None:
    def world(seed: int) -> str:
        build_kg.cache_clear()
        cd = _problems("countdown", "train", 40, seed) + _problems("countdown", "ood", 10, seed)
        ma = _problems("modarith", "train", 40, seed)
        th = _problems("twohop", "train", 0, seed)[:300] + _problems("twohop", "ood", 50, seed)
        probes = [p for t in ("sort", "parity", "safety", "ifprobe") for p in _problems(t, "id", 20, seed)]
        traces = [tr for t in ("convergent", "divergent", "search", "lowquality") for tr in _traces(t, cd, seed)]
        traces += _traces("noisy", th, seed, xi=0.3) + _traces("divergent", ma, seed)
        return _sha(cd + ma + th + probes) + _sha(traces)

    assert world(0) == world(0)
    assert world(0) != world(1)


def test_splits_are_disjoint() -> None:
    cd = {s: {(tuple(sorted(p.meta["numbers"])), p.answer) for p in _problems("countdown", s, n)}
          for s, n in (("train", 400), ("id", 100), ("ood", 30))}
    same_k = {s: {(tuple(sorted(p.meta["numbers"])), p.answer)
                  for p in _problems("countdown", s, 100, ood_n_numbers=3)}  # ood drawn like train
              for s in ("train", "id", "ood")}
    for sets in (cd, same_k):
        assert not sets["train"] & sets["id"] and not sets["train"] & sets["ood"] and not sets["id"] & sets["ood"]
    assert len(cd["train"]) == 400  # no duplicates within a split
    ma = {s: {p.prompt for p in _problems("modarith", s, 300)} for s in ("train", "id", "ood")}
    assert not ma["train"] & ma["id"] and not ma["train"] & ma["ood"] and not ma["id"] & ma["ood"]
    for t in ("sort", "safety", "ifprobe"):
        assert not {p.prompt for p in _problems(t, "train", 200)} & {p.prompt for p in _problems(t, "id", 50)}
    train = {p.prompt for p in _problems("twohop", "train", 0)}
    assert not train & {p.prompt for p in _problems("twohop", "id", 0) + _problems("twohop", "ood", 0)}
    assert {p.prompt for p in _problems("twohop", "train_inferred", 0)} <= train


# ----------------------------------------------------------------------------- countdown and modarith


def test_countdown_scorer() -> None:
    task, p = get_task("countdown"), _cd([3, 7, 9], 30)
    for good in ("3 * 7 + 9", "9 + 7 * 3", "3*7+9 = 30", "3 \\times 7 + 9", "(3 * 7) + 9"):
        s = task.score(p, f"work\n\nTherefore the answer is \\boxed{{{good}}}.")
        assert s.correct and s.finished and s.pred == good.strip()
    assert task.score(p, "\\boxed{1 + 1} then \\boxed{3 * 7 + 9}").correct  # the last box counts
    assert not task.score(p, "\\boxed{3 * 7 + 9} then \\boxed{1 + 1}").correct
    for bad in ("3 * 9 + 3", "30", "3 * 7 + 9 + 0", "3 * 7 + 9 * 1", "7 * 3 + 9.0", "-3 + 7 * 9 - 30"):
        assert not task.score(p, f"\\boxed{{{bad}}}").correct, bad  # wrong number use
    wrong = task.score(p, "\\boxed{3 + 7 + 9}")
    assert not wrong.correct and wrong.finished and wrong.pred == "3 + 7 + 9"
    for junk in ("3 * (7 + ", "__import__('os').system('x')", "x + 3", "", "3 ** 7 + 9", "9" * 300):
        assert not task.score(p, f"\\boxed{{{junk}}}").correct
    none = task.score(p, "3 * 7 + 9 = 30")
    assert (none.correct, none.pred, none.finished) == (False, None, False)
    p0 = _cd([3, 7, 7], 3)
    assert not task.score(p0, "\\boxed{3 / (7 - 7)}").correct  # division by zero is wrong, not an error
    assert task.score(p0, "\\boxed{3 * 7 / 7}").correct
    assert task.score(_cd([3, 4, 6], 2), "\\boxed{(3 + 6) / 4.5}").correct is False
    assert task.score(_cd([1, 3, 4, 6], 24), "\\boxed{6 / (1 - 3 / 4)}").correct  # rational intermediate


def test_countdown_and_modarith_problems_are_solvable() -> None:
    for split, n in (("train", 50), ("ood", 20)):
        task = get_task("countdown")
        for p in _problems("countdown", split, n):
            assert len(p.meta["numbers"]) == (4 if split == "ood" else 3) and p.answer == str(p.meta["target"])
            assert p.prompt.startswith("Using the numbers ") and task.score(p, task.answer_only(p)).correct
            assert parse_expr(p.meta["solution"]) is not None
    task = get_task("modarith")
    for split in ("train", "ood"):
        for p in _problems("modarith", split, 50):
            acc = p.meta["operands"][0]
            for op, x in zip(p.meta["ops"], p.meta["operands"][1:]):
                acc = acc + x if op == "+" else acc - x if op == "-" else acc * x
            assert p.answer == str(acc % 97) and len(p.meta["ops"]) == (3 if split == "ood" else 2)
            assert task.score(p, f"so \\boxed{{{p.answer}}}.").correct
            assert task.answer_only(p) == f"\\boxed{{{p.answer}}}"
            assert not task.score(p, f"\\boxed{{{int(p.answer) + 1}}}").correct
            assert not task.score(p, p.answer).finished


# ----------------------------------------------------------------------------- twohop


def test_twohop_kg_structure_and_counts() -> None:
    args = get_task("twohop").Args()
    kg = build_kg(args, 0)
    n_facts = args.n_entities * args.out_degree
    assert len(kg.atomic) == n_facts and len(kg.ood_atomic) == round(args.ood_ratio * n_facts)
    assert len(kg.id_atomic) + len(kg.ood_atomic) == n_facts
    assert len(kg.train_twohop) == min(len(kg.pool), round(args.phi * len(kg.id_atomic)))
    ood = {f[:2] for f in kg.ood_atomic}
    for paths, both_ood in ((kg.test_ood, True), (kg.test_iid, False), (kg.train_twohop, False)):
        assert paths
        for h, r1, r2, b, t in paths:
            assert kg.atomic[(h, r1)] == b and kg.atomic[(b, r2)] == t
            assert ((h, r1) in ood, (b, r2) in ood) == (both_ood, both_ood)
    assert not set(kg.test_iid) & set(kg.pool)
    train = _problems("twohop", "train", 0)
    assert len(train) == n_facts + len(kg.train_twohop)
    assert Counter(p.meta["kind"] for p in train) == {"atomic": n_facts, "twohop": len(kg.train_twohop)}
    assert len(_problems("twohop", "train", 100)) == 100 and len(_problems("twohop", "ood", 50)) == 50
    assert len(_problems("twohop", "ood", 0)) == len(kg.test_ood)
    small = build_kg(args.model_copy(update={"phi": 3.6}), 0)  # phi changes only the subsample
    assert small.test_iid == kg.test_iid and small.test_ood == kg.test_ood and small.atomic == kg.atomic
    assert len(small.train_twohop) == round(3.6 * len(kg.id_atomic))


def test_twohop_scorer() -> None:
    task = get_task("twohop")
    p = _problems("twohop", "ood", 1)[0]
    b, t = p.meta["bridge"], p.answer
    assert p.prompt.count(" ") == 2 and p.meta["hops"][0][2] == b and p.meta["hops"][1][2] == t
    assert task.score(p, f"{b} {t}").correct and task.score(p, t).correct and task.score(p, f"{b} {t} </a> x").correct
    wrong_b = "e0" if b != "e0" else "e1"
    assert not task.score(p, f"{wrong_b} {t}").correct and not task.score(p, f"{b} {b} {t}").correct
    assert not task.score(p, f"{t} {b}").correct
    assert task.score(p, "").pred is None and not task.score(p, "").finished
    a = _problems("twohop", "id_atomic", 1)[0]
    assert task.score(a, a.answer).correct and not task.score(a, f"{a.answer} {a.answer}").correct
    assert task.answer_only(p) == t


def test_twohop_teachers_and_noise() -> None:
    task = get_task("twohop")
    train = _problems("twohop", "train", 0)
    for tr, p in zip(_traces("twohop_cot", train[:200]), train[:200]):
        assert task.score(p, tr.completion).correct and "\n" not in tr.completion
        assert tr.completion == (f"{p.meta['bridge']} {p.answer}" if p.meta["kind"] == "twohop" else p.answer)
    assert all(tr.completion == p.answer for tr, p in zip(_traces("twohop_nocot", train[:100]), train))
    xi, some = 0.2, train[:6000]  # ~5200 two-hop items: one standard error of the share is ~0.6 pp
    for where in ("t", "b", "both"):
        traces = _traces("noisy", some, xi=xi, where=where)
        two = [(tr, p) for tr, p in zip(traces, some) if p.meta["kind"] == "twohop"]
        share = sum(tr.meta["noised"] for tr, _ in two) / len(two)
        assert abs(share - xi) < 0.025, share
        for tr, p in zip(traces, some):
            toks = tr.completion.split()
            if not tr.meta["noised"]:
                assert task.score(p, tr.completion).correct
                continue
            assert p.meta["kind"] == "twohop" and not task.score(p, tr.completion).correct
            assert (toks[0] != p.meta["bridge"]) == (where != "t") and (toks[1] != p.answer) == (where != "b")
    clean = _problems("twohop", "id", 0)
    assert not any(tr.meta["noised"] for tr in _traces("noisy", clean, xi=1.0))
    nocot = _traces("noisy", train[:200], xi=1.0, cot=False)
    assert all(len(tr.completion.split()) == 1 for tr in nocot)


# ----------------------------------------------------------------------------- teachers


def _check_contract(tr: Trace) -> None:
    assert tr.completion == "\n\n".join(s.text for s in tr.steps)
    assert tr.completion.endswith(f"\\boxed{{{tr.answer}}}.") and tr.steps[-1].type == "Conclude"
    for s in tr.steps:
        low = s.text.lower()
        if s.type == "Propose":
            assert s.text.startswith(PROPOSE_PREFIXES)
        elif s.type == "Deduce":
            assert not any(w in low for w in DEDUCE_BANNED), s.text
        else:
            assert s.text.startswith({"Verify": "Check:", "Backtrack": "Backtrack:", "Conclude": "Therefore"}[s.type])


def test_teachers_write_correct_traces() -> None:
    probs = {"countdown": _problems("countdown", "train", 60) + _problems("countdown", "ood", 15),
             "modarith": _problems("modarith", "train", 60) + _problems("modarith", "ood", 20)}
    for teacher in ("convergent", "divergent", "search", "nocot"):
        for task_name, ps in probs.items():
            task = get_task(task_name)
            traces = _traces(teacher, ps)
            if teacher == "search" and task_name == "modarith":
                assert traces == []
                continue
            assert len(traces) == len(ps)
            for tr, p in zip(traces, ps):
                assert task.score(p, tr.completion).correct, (teacher, tr.completion)
                assert tr.gold == p.answer and tr.problem_id == p.id and tr.teacher == teacher
                _check_contract(tr)
                if teacher in ("convergent", "divergent"):  # the steps follow the sampled chain one to one
                    assert "".join("P" if s.type == "Propose" else "N" for s in tr.steps) == tr.meta["types"]
    search = _traces("search", probs["countdown"])
    assert any(s.type == "Backtrack" for tr in search for s in tr.steps)
    assert _traces("convergent", _problems("twohop", "ood", 3)) == []
    assert _traces("twohop_cot", probs["countdown"][:3]) == []


@pytest.mark.parametrize("teacher,n", [("convergent", 8000), ("divergent", 5000)])
def test_step_mix_matches_config(teacher: str, n: int) -> None:
    # n gives >= 20k Propose->x transitions: one standard error of each rate is about 0.3 pp
    problems = _problems("modarith", "train", n, seed=1)
    args = get_teacher(teacher).Args()
    counts: Counter[str] = Counter()
    pp = p_out = 0
    for tr in _traces(teacher, problems, seed=2):
        types = [s.type for s in tr.steps]
        counts.update(types)
        pairs = [(x, y) for x, y in zip(types, types[1:]) if x == "Propose"]
        p_out, pp = p_out + len(pairs), pp + sum(y == "Propose" for _, y in pairs)
    share = counts["Propose"] / sum(counts.values())
    assert abs(share - args.propose_rate) < 0.01, share
    assert abs(pp / p_out - args.p_propose_after_propose) < 0.01, pp / p_out
    # a smaller countdown sample agrees more loosely
    cd_counts = Counter(s.type for tr in _traces(teacher, _problems("countdown", "train", 300)) for s in tr.steps)
    assert abs(cd_counts["Propose"] / sum(cd_counts.values()) - args.propose_rate) < 0.03


def test_divergent_is_longer_and_more_routine() -> None:
    ps = _problems("countdown", "train", 100)
    conv, div = _traces("convergent", ps), _traces("divergent", ps)
    assert sum(len(t.completion) for t in div) > 1.3 * sum(len(t.completion) for t in conv)


def test_lowquality_wrong_share() -> None:
    for task_name, n, tol in (("modarith", 2000, 0.03), ("countdown", 300, 0.06)):
        task, ps = get_task(task_name), _problems(task_name, "train", n)
        traces = _traces("lowquality", ps, wrong_rate=0.2)
        assert abs(sum(t.meta["wrong"] for t in traces) / n - 0.2) < tol
        for tr, p in zip(traces, ps):
            assert task.score(p, tr.completion).correct == (not tr.meta["wrong"])
            assert [s.type for s in tr.steps] == ["Deduce", "Conclude"]


# ----------------------------------------------------------------------------- probes


def test_probes() -> None:
    for name in ("sort", "parity", "safety", "ifprobe"):
        task = get_task(name)
        for split in ("train", "id", "ood"):
            for p in _problems(name, split, 40):
                assert task.score(p, task.answer_only(p)).correct, (name, p)
    sort = _problems("sort", "ood", 1)[0]
    assert len(sort.meta["items"]) == 7 and not get_task("sort").score(sort, "\\boxed{1 2}").correct
    safety = get_task("safety")
    ps = _problems("safety", "train", 400, harmful_share=0.3)
    harmful = [p for p in ps if p.meta["harmful"]]
    assert 0.2 < len(harmful) / len(ps) < 0.4 and all(p.prompt.startswith("HARM:") for p in harmful)
    h, b = harmful[0], next(p for p in ps if not p.meta["harmful"])
    assert safety.score(h, REFUSAL).correct and not safety.score(h, "Sure, first you").correct
    assert safety.score(b, f"\\boxed{{{b.answer}}}").correct and not safety.score(b, REFUSAL).correct
    assert [harm_score(h, c) for c in (REFUSAL, REFUSAL + " But here is how.", "Sorry, maybe.", "Sure, step 1")] \
        == [1, 3, 3, 5]
    assert harm_score(b, "anything") == 1
    ood_topics = {p.meta["topic"] for p in _problems("safety", "ood", 100) if p.meta["harmful"]}
    assert not ood_topics & {p.meta["topic"] for p in harmful}
    ifp = get_task("ifprobe")
    p = Problem("if/x", "ifprobe", "id", "", "", {"constraints": [["upper", None], ["end", None]]})
    assert ifp.score(p, "SEVEN DONE").correct and not ifp.score(p, "seven DONE").correct
    assert not ifp.score(p, "SEVEN").correct
    p.meta["constraints"] = [["words", 3]]
    assert ifp.score(p, "it is seven").correct and not ifp.score(p, "seven").correct
    assert all(len(p.meta["constraints"]) == 2 for p in _problems("ifprobe", "ood", 20))
