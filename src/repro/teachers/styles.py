"""Programmatic teachers: verified traces in controlled reasoning styles, every step typed.

Owns the teachers of the three miniatures (docs/studies.md §6):

- "convergent" / "divergent" (study A: gpt-oss-like vs R1-like), "nocot", "lowquality" for countdown and
  modarith; "search" (Countdown DFS with explicit backtracking) for countdown;
- "twohop_cot", "twohop_nocot", "noisy" (study C) for twohop.

Step keyword contract (shared with the step typer; `check_step` enforces it on every step written):
a Propose step begins with one of PROPOSE_PREFIXES ("Alternatively,", "Perhaps", "Another approach:"),
a Verify step with "Check:", a Backtrack step with "Backtrack:", a Conclude step with "Therefore"; a Deduce
step is anything else and contains none of the words in DEDUCE_BANNED (checked case-insensitively). The
twohop teachers are the exception: their steps are bare entity tokens ("e91", "e44").

Convergent/divergent draw the step-type sequence from a two-state Markov chain (Propose vs the rest) with
P(P->P) = p_propose_after_propose and P(D->P) = a chosen so the stationary Propose share is propose_rate.
A trace starts in Propose with probability a and may only end after a non-Propose step, so traces
concatenated are one run of that chain: the pooled Propose share and the within-trace P->P rate equal the
configured values in expectation. The last Propose names the real approach and the steps after it carry
the real computation; earlier Proposes are abandoned branches. Every trace is a correct solution.

    t = get_teacher("divergent")
    trace = t.write(problem, t.Args(), random.Random(0))
"""

from __future__ import annotations

import itertools
import random
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, Literal

from pydantic import Field, model_validator

from repro.records import Problem, Step, Trace
from repro.tasks.countdown import moves, parse_expr, solve_all, steps_of, to_str
from repro.tasks.modarith import chain_steps
from repro.teachers import TEACHERS, Teacher, TeacherArgs

PROPOSE_PREFIXES = ("Alternatively,", "Perhaps", "Another approach:")
PREFIX = {"Verify": "Check:", "Backtrack": "Backtrack:", "Conclude": "Therefore"}
DEDUCE_BANNED = ("alternatively", "perhaps", "another", "check", "backtrack", "therefore")


_BANNED_RE = re.compile("|".join(DEDUCE_BANNED), re.IGNORECASE)


def check_step(step: Step) -> None:
    """Raise ValueError if a step breaks the keyword contract."""
    if step.type == "Propose":
        ok = step.text.startswith(PROPOSE_PREFIXES)
    elif step.type == "Deduce":
        ok = _BANNED_RE.search(step.text) is None
    else:
        ok = step.type in PREFIX and step.text.startswith(PREFIX[step.type])
    if not ok or "\n\n" in step.text:
        raise ValueError(f"step breaks the keyword contract: {step}")


def make_trace(problem: Problem, teacher: str, steps: list[Step], answer: str, sep: str = "\n\n",
               **meta: Any) -> Trace:
    """A trace whose completion is the steps joined by `sep` (blank lines, or a space for twohop)."""
    return Trace(problem_id=problem.id, task=problem.task, teacher=teacher, prompt=problem.prompt,
                 completion=sep.join(s.text for s in steps), answer=answer, gold=problem.answer,
                 steps=steps, meta=dict(meta))


def fmt(v: Fraction | int) -> str:
    if isinstance(v, int) or v.denominator == 1:
        return str(int(v))
    return f"{v.numerator}/{v.denominator}"


def conclude(answer: str) -> Step:
    return Step("Conclude", f"Therefore the answer is \\boxed{{{answer}}}.")


# ----------------------------------------------------------------------------- solution plans


@dataclass
class Plan:
    """What a teacher needs to know about one problem to write about it in any style."""

    restate: str  # "We have 3, 7 and 9 and need 30."
    approach: str  # phrase naming the real approach, e.g. "start with 3 + 7"
    real_ops: list[str]  # the real computation, one sentence per operation
    verify: str  # a Verify step text
    answer: str  # the boxed content
    summary: str  # one-line result, e.g. "(3 + 7) * 3 = 30"
    distractor: Callable[[random.Random], tuple[str, list[str], str]]  # (phrase, op sentences, failure)
    routine: Callable[[random.Random], str]  # a trivial, predictable sentence
    wrong: Callable[[random.Random], tuple[str, str]]  # (false claim, wrong answer)


def _listing(xs: list[Any]) -> str:
    xs = [str(x) for x in xs]
    return xs[0] if len(xs) == 1 else f"{', '.join(xs[:-1])} and {xs[-1]}"


def _random_path(numbers: list[int], rng: random.Random) -> Any:
    """A random expression using every number once (integer steps)."""
    items: list[tuple[int, Any]] = [(n, n) for n in numbers]
    while len(items) > 1:
        i, j = sorted(rng.sample(range(len(items)), 2))
        (va, ta), (vb, tb) = items[i], items[j]
        op, x, _, r = rng.choice(moves(va, vb, True))
        tree = (op, ta, tb) if x == va else (op, tb, ta)
        items = [it for k, it in enumerate(items) if k not in (i, j)] + [(r, tree)]
    return items[0][1]


def _op_text(a: Fraction, op: str, b: Fraction, r: Fraction) -> str:
    return f"{fmt(a)} {op} {fmt(b)} = {fmt(r)}"


def countdown_plan(problem: Problem) -> Plan:
    nums, target = list(problem.meta["numbers"]), int(problem.meta["target"])
    tree = parse_expr(problem.meta["solution"])
    assert tree is not None, problem.meta["solution"]
    ops = steps_of(tree)
    expr = to_str(tree)
    real = [f"{_op_text(*o)}." for o in ops]
    real[-1] = f"{_op_text(*ops[-1])}, which is the target."

    def distractor(rng: random.Random) -> tuple[str, list[str], str]:
        for _ in range(10):
            t = _random_path(nums, rng)
            dops = steps_of(t)
            if dops[-1][3] != target:
                return f"start with {_op_text(*dops[0]).split(' =')[0]}", [f"{_op_text(*o)}." for o in dops], \
                    f"That gives {fmt(dops[-1][3])}, not {target}."
        return f"start with {_op_text(*dops[0]).split(' =')[0]}", [f"{_op_text(*dops[0])}."], \
            "That does not look promising."

    def routine(rng: random.Random) -> str:
        a, b = rng.sample(nums, 2)
        return rng.choice([f"The numbers are {_listing(nums)} and the target is {target}.",
                           f"We must use each of {_listing(nums)} exactly once.",
                           f"Note that {a} + {b} = {a + b}.",
                           f"The target is {target}.",
                           f"All together {' + '.join(map(str, nums))} = {sum(nums)}."])

    def wrong(rng: random.Random) -> tuple[str, str]:
        for _ in range(20):
            t = _random_path(nums, rng)
            if steps_of(t)[-1][3] != target:
                return f"{to_str(t)} = {target}.", to_str(t)
        return f"{nums[0]} = {target}.", str(nums[0])

    return Plan(restate=f"We have {_listing(nums)} and need {target}.",
                approach=f"start with {_op_text(*ops[0]).split(' =')[0]}", real_ops=real,
                verify=f"Check: {expr} = {target}, and it uses {_listing(nums)} once each.",
                answer=expr, summary=f"{expr} = {target}", distractor=distractor, routine=routine, wrong=wrong)


def modarith_plan(problem: Problem) -> Plan:
    m = problem.meta
    p, expr, operands = int(m["modulus"]), m["expr"], list(m["operands"])
    chain = chain_steps(operands, m["ops"], p)
    real = [f"{a} {op} {x} = {raw}." if raw == red else f"{a} {op} {x} = {raw}, and {raw} mod {p} = {red}."
            for a, op, x, raw, red in chain]
    last_raw, ans = chain[-1][3], chain[-1][4]
    verify = (f"Check: {last_raw} = {(last_raw - ans) // p} * {p} + {ans}." if last_raw != ans
              else f"Check: {ans} lies between 0 and {p - 1}.")

    def distractor(rng: random.Random) -> tuple[str, list[str], str]:
        acc, sents = operands[0], []
        for op, x in zip(m["ops"], operands[1:]):
            raw = acc + x if op == "+" else acc - x if op == "-" else acc * x
            sents.append(f"{acc} {op} {x} = {raw}.")
            acc = raw
        phrase = rng.choice([f"compute the exact value first and reduce modulo {p} at the end",
                             "expand the whole expression before simplifying",
                             f"work with values above {p} and reduce only once",
                             "estimate the size of the exact value before reducing"])
        return phrase, sents, "The numbers grow fast, so this is slow."

    def routine(rng: random.Random) -> str:
        x = rng.choice(operands)
        return rng.choice([f"The modulus is {p}.", f"The expression is {expr}.",
                           f"There are {len(chain)} operations to do.",
                           f"{x} is already between 0 and {p - 1}.", "We work from the innermost parentheses."])

    def wrong(rng: random.Random) -> tuple[str, str]:
        bad = (ans + rng.randint(1, p - 1)) % p
        return f"{expr} mod {p} = {bad}.", str(bad)

    return Plan(restate=f"We need {expr} mod {p}.", approach=f"reduce modulo {p} after each operation",
                real_ops=real, verify=verify, answer=str(ans), summary=f"{expr} mod {p} = {ans}",
                distractor=distractor, routine=routine, wrong=wrong)


PLANS: dict[str, Callable[[Problem], Plan]] = {"countdown": countdown_plan, "modarith": modarith_plan}


# ----------------------------------------------------------------------------- convergent / divergent


class ChainArgs(TeacherArgs):
    """Arguments of the Markov-chain teachers (convergent/divergent differ only in defaults)."""

    propose_rate: float = Field(0.225, ge=0.0, lt=1.0, description="Stationary share of Propose steps.")
    p_propose_after_propose: float = Field(0.34, ge=0.0, lt=1.0, description="P(next step is Propose | Propose).")
    routine_rate: float = Field(
        0.0, ge=0.0, le=1.0, description="Probability that a Deduce step gets an extra routine sentence."
    )
    verify_rate: float = Field(0.5, ge=0.0, le=1.0, description="Probability of a Check: step before the end.")
    backtrack_rate: float = Field(
        0.5, ge=0.0, le=1.0, description="Probability that an abandoned branch ends with an explicit Backtrack: step."
    )
    min_steps: int = Field(8, ge=2, description="A trace ends at the first chance once it has this many steps.")
    max_steps: int = Field(60, ge=2, description="Past this many steps a trace ends at the next chance.")

    @model_validator(mode="after")
    def _check(self) -> "ChainArgs":
        if self.p_d_to_p > 1.0:
            raise ValueError("propose_rate too high for this p_propose_after_propose (P(D->P) would exceed 1)")
        return self

    @property
    def p_d_to_p(self) -> float:
        """P(D->P) that makes the stationary Propose share equal propose_rate: a = pi (1 - q) / (1 - pi)."""
        pi, q = self.propose_rate, self.p_propose_after_propose
        return pi * (1 - q) / (1 - pi)


class DivergentArgs(ChainArgs):
    """R1-like defaults: frequent, clustered Propose steps and routine sentences."""

    propose_rate: float = Field(0.333, ge=0.0, lt=1.0, description="Stationary share of Propose steps.")
    p_propose_after_propose: float = Field(0.53, ge=0.0, lt=1.0, description="P(next step is Propose | Propose).")
    routine_rate: float = Field(
        0.5, ge=0.0, le=1.0, description="Probability that a Deduce step gets an extra routine sentence."
    )
    backtrack_rate: float = Field(
        0.3, ge=0.0, le=1.0, description="Probability that an abandoned branch ends with an explicit Backtrack: step."
    )
    min_steps: int = Field(12, ge=2, description="A trace ends at the first chance once it has this many steps.")


def type_sequence(args: ChainArgs, need: int, rng: random.Random) -> str:
    """Markov chain over "P" (Propose) / "N" (the rest). It stops only after an N, once there are
    min_steps steps and the trailing N-run has `need` steps (2 past max_steps)."""
    a, q = args.p_d_to_p, args.p_propose_after_propose
    seq, run, state = "", 0, "P" if rng.random() < a else "N"
    while True:
        seq, run = seq + state, (run + 1 if state == "N" else 0)
        if state == "N" and len(seq) >= args.min_steps and run >= (need if len(seq) < args.max_steps else 2):
            return seq
        state = "P" if rng.random() < (a if state == "N" else q) else "N"


def _spread(items: list[str], slots: int, filler: Callable[[], str], fill_first: bool) -> list[str]:
    """Put `items` into exactly `slots` sentences: pack several per slot, or pad with filler ones."""
    if slots <= 0:
        return []
    if len(items) > slots:
        per = -(-len(items) // slots)
        packed = [" ".join(items[i : i + per]) for i in range(0, len(items), per)]
        return packed + [filler() for _ in range(slots - len(packed))]
    pad = [filler() for _ in range(slots - len(items))]
    return pad + items if fill_first else items + pad


class ChainTeacher(Teacher):
    """Shared writer of convergent and divergent traces."""

    tasks = ("countdown", "modarith")

    def write(self, problem: Problem, args: TeacherArgs, rng: random.Random) -> Trace | None:
        if problem.task not in self.tasks:
            return None
        assert isinstance(args, ChainArgs)
        plan = PLANS[problem.task](problem)
        types = type_sequence(args, len(plan.real_ops) + 2, rng)
        runs = [(t, len(list(g))) for t, g in itertools.groupby(types)]
        last_p = types.rfind("P")
        steps: list[Step] = []
        pending: tuple[str, list[str], str] | None = None
        for ri, (t, m) in enumerate(runs):
            if t == "P":
                for _ in range(m):
                    is_real = len(steps) == last_p
                    last = steps[-1].text if steps else ""
                    for _ in range(4):  # avoid proposing the previous step's approach again
                        pending = ("", [], "") if is_real else plan.distractor(rng)
                        phrase = plan.approach if is_real else pending[0]
                        if not last.endswith(f" {phrase}."):
                            break
                    prefix = rng.choice(PROPOSE_PREFIXES) if "P" in types[: len(steps)] else "Perhaps"
                    steps.append(Step("Propose", f"{prefix} {phrase}."))
                continue
            final = ri == len(runs) - 1
            if final:  # the real computation, then Check (if room) and Conclude
                n_close = 2 if m >= 3 and rng.random() < args.verify_rate else 1
                lead = [plan.restate] if ri == 0 and m - n_close >= 2 else []
                body = _spread(plan.real_ops, m - n_close - len(lead), lambda: plan.routine(rng), True)
                texts = lead + body
                steps += [Step("Deduce", self._routine(s, args, plan, rng)) for s in texts]
                if n_close == 2:
                    steps.append(Step("Verify", plan.verify))
                steps.append(conclude(plan.answer))
            elif ri == 0:  # opening: restate the problem, then routine observations
                texts = [plan.restate] + [plan.routine(rng) for _ in range(m - 1)]
                steps += [Step("Deduce", self._routine(s, args, plan, rng)) for s in texts]
            else:  # an abandoned branch: explore the distractor, sometimes end with an explicit Backtrack
                assert pending is not None
                _, sents, failure = pending
                explicit = m > 1 and rng.random() < args.backtrack_rate
                items = sents if explicit else sents + [failure]
                texts = _spread(items, m - explicit, lambda: plan.routine(rng), False)
                steps += [Step("Deduce", self._routine(s, args, plan, rng)) for s in texts]
                if explicit:
                    steps.append(Step("Backtrack", f"Backtrack: {failure}"))
        for s in steps:
            check_step(s)
        return make_trace(problem, self.name, steps, plan.answer, types=types)

    @staticmethod
    def _routine(text: str, args: ChainArgs, plan: Plan, rng: random.Random) -> str:
        return f"{text} {plan.routine(rng)}" if rng.random() < args.routine_rate else text


class Convergent(ChainTeacher):
    """gpt-oss-like: few Propose steps, long Deduce chains, concise."""

    name = "convergent"
    Args = ChainArgs


class Divergent(ChainTeacher):
    """R1-like: frequent, clustered Propose steps, abandoned branches, routine sentences."""

    name = "divergent"
    Args = DivergentArgs


# ----------------------------------------------------------------------------- nocot / lowquality / search


class NoCoT(Teacher):
    """The answer with a one-line summary: a single Conclude step."""

    name = "nocot"
    tasks = ("countdown", "modarith")

    def write(self, problem: Problem, args: TeacherArgs, rng: random.Random) -> Trace | None:
        if problem.task not in self.tasks:
            return None
        plan = PLANS[problem.task](problem)
        step = Step("Conclude", f"Therefore, since {plan.summary}, the answer is \\boxed{{{plan.answer}}}.")
        check_step(step)
        return make_trace(problem, self.name, [step], plan.answer)


class LowQualityArgs(TeacherArgs):
    """Arguments of the low-quality ("Numina" analogue) teacher."""

    wrong_rate: float = Field(0.2, ge=0.0, le=1.0, description="Share of traces whose final answer is wrong.")


class LowQuality(Teacher):
    """Short solutions that skip the intermediate steps; a `wrong_rate` share ends with a wrong answer
    (meta["wrong"] says which)."""

    name = "lowquality"
    Args = LowQualityArgs
    tasks = ("countdown", "modarith")

    def write(self, problem: Problem, args: TeacherArgs, rng: random.Random) -> Trace | None:
        if problem.task not in self.tasks:
            return None
        assert isinstance(args, LowQualityArgs)
        plan = PLANS[problem.task](problem)
        is_wrong = rng.random() < args.wrong_rate
        claim, answer = plan.wrong(rng) if is_wrong else (f"{plan.summary}.", plan.answer)
        steps = [Step("Deduce", f"Directly, {claim}"), conclude(answer)]
        for s in steps:
            check_step(s)
        return make_trace(problem, self.name, steps, answer, wrong=is_wrong)


class SearchArgs(TeacherArgs):
    """Arguments of the Countdown depth-first-search teacher."""

    max_dead_ends: int = Field(
        4, ge=0, description="Failed leaves explored before the search only enters branches that can succeed."
    )


class Search(Teacher):
    """Countdown DFS written out: "Try a + b = c", dead ends, "Backtrack:", then the found solution. Uses
    integer steps only, so it returns None for a problem without an integer-step solution."""

    name = "search"
    Args = SearchArgs
    tasks = ("countdown",)

    def write(self, problem: Problem, args: TeacherArgs, rng: random.Random) -> Trace | None:
        if problem.task not in self.tasks:
            return None
        assert isinstance(args, SearchArgs)
        nums, target = list(problem.meta["numbers"]), Fraction(problem.meta["target"])
        steps = [Step("Deduce", f"We have {_listing(nums)} and need {fmt(target)}.")]
        budget = [args.max_dead_ends]
        memo: dict[tuple[Fraction, ...], bool] = {}

        def solvable(items: list[tuple[Fraction, Any]]) -> bool:
            key = tuple(sorted(v for v, _ in items))
            if key not in memo:
                memo[key] = target in solve_all(list(key), True)
            return memo[key]

        def dfs(items: list[tuple[Fraction, Any]]) -> Any:
            cands = [(i, j, mv) for i in range(len(items)) for j in range(i + 1, len(items))
                     for mv in moves(items[i][0], items[j][0], True)]
            rng.shuffle(cands)
            for i, j, (op, x, y, r) in cands:
                (va, ta), (_, tb) = items[i], items[j]
                tree = (op, ta, tb) if x == va else (op, tb, ta)
                rest = [it for k, it in enumerate(items) if k not in (i, j)] + [(r, tree)]
                if budget[0] <= 0 and not solvable(rest):
                    continue
                tried = f"Try {_op_text(x, op, y, r)}."
                if len(rest) == 1:
                    if r == target:
                        steps.append(Step("Deduce", f"{tried} That hits {fmt(target)}."))
                        return tree
                    steps.append(Step("Deduce", f"{tried} {fmt(r)} is not {fmt(target)}, no."))
                    budget[0] -= 1
                    continue
                steps.append(Step("Deduce", f"{tried} Left: {_listing([fmt(v) for v, _ in rest])}."))
                found = dfs(rest)
                if found is not None:
                    return found
                steps.append(Step("Backtrack", f"Backtrack: undo {_op_text(x, op, y, r)}."))
            return None

        tree = dfs([(Fraction(n), n) for n in nums])
        if tree is None:
            return None
        expr = to_str(tree)
        steps += [Step("Verify", f"Check: {expr} = {fmt(target)}, and it uses {_listing(nums)} once each."),
                  conclude(expr)]
        for s in steps:
            check_step(s)
        return make_trace(problem, self.name, steps, expr)


# ----------------------------------------------------------------------------- twohop


def _twohop_trace(problem: Problem, teacher: str, cot: bool, b: str | None = None, t: str | None = None,
                  **meta: Any) -> Trace:
    """`b t` (CoT) or `t` (no CoT) for a two-hop item, `t` for an atomic fact; steps are bare tokens."""
    t = t or problem.answer
    if problem.meta.get("kind") == "twohop" and cot:
        b = b or problem.meta["bridge"]
        steps = [Step("Deduce", b), Step("Conclude", t)]
    else:
        steps = [Step("Conclude", t)]
    return make_trace(problem, teacher, steps, t, sep=" ", **meta)


class TwoHopCoT(Teacher):
    """Study C's CoT target: bridge then tail (`e91 e44`)."""

    name = "twohop_cot"
    tasks = ("twohop",)

    def write(self, problem: Problem, args: TeacherArgs, rng: random.Random) -> Trace | None:
        return _twohop_trace(problem, self.name, cot=True) if problem.task in self.tasks else None


class TwoHopNoCoT(Teacher):
    """Study C's no-CoT target: the tail only (`e44`)."""

    name = "twohop_nocot"
    tasks = ("twohop",)

    def write(self, problem: Problem, args: TeacherArgs, rng: random.Random) -> Trace | None:
        return _twohop_trace(problem, self.name, cot=False) if problem.task in self.tasks else None


class NoisyArgs(TeacherArgs):
    """Arguments of study C's label-noise teacher."""

    xi: float = Field(0.0, ge=0.0, le=1.0, description="Share of train two-hop items that are corrupted.")
    where: Literal["t", "b", "both"] = Field("t", description="Which entity a corrupted item gets replaced.")
    cot: bool = Field(True, description="Write the bridge before the tail (CoT) or the tail only.")

    @model_validator(mode="after")
    def _check(self) -> "NoisyArgs":
        if self.where == "b" and not self.cot:
            raise ValueError("bridge noise (where='b') needs cot=True: a no-CoT target has no bridge")
        return self


def _other_entity(entity: str, n_entities: int, rng: random.Random) -> str:
    k = rng.randrange(n_entities - 1)
    return f"e{k + 1 if k >= int(entity[1:]) else k}"


class Noisy(Teacher):
    """Twohop traces where a share xi of the TRAIN two-hop items has t and/or b replaced by a random other
    entity (decided per item from the rng); atomic facts and probe items stay clean."""

    name = "noisy"
    Args = NoisyArgs
    tasks = ("twohop",)

    def write(self, problem: Problem, args: TeacherArgs, rng: random.Random) -> Trace | None:
        if problem.task not in self.tasks:
            return None
        assert isinstance(args, NoisyArgs)
        if problem.split != "train" or problem.meta.get("kind") != "twohop" or rng.random() >= args.xi:
            return _twohop_trace(problem, self.name, args.cot, noised=False)
        n = int(problem.meta["n_entities"])
        b, t = problem.meta["bridge"], problem.answer
        if args.where in ("b", "both"):
            b = _other_entity(b, n, rng)
        if args.where in ("t", "both"):
            t = _other_entity(t, n, rng)
        return _twohop_trace(problem, self.name, args.cot, b=b, t=t, noised=True, noise_where=args.where)


for _t in (Convergent(), Divergent(), NoCoT(), LowQuality(), Search(), TwoHopCoT(), TwoHopNoCoT(), Noisy()):
    TEACHERS.register(_t.name)(_t)
