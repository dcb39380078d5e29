"""Countdown task ("countdown"): reach a target with + - * / using each given number exactly once.

Owns the Countdown world of studies A and B's miniatures: the exact solver (`solve_all`), the safe
expression parser (`parse_expr`, `evaluate`), the scorer, and the seeded split helpers that the other
synthetic tasks reuse (`split_rng`, `split_bucket`; seeds from `repro.identity.stable_seed`).

    from repro.tasks import get_task
    task = get_task("countdown")
    probs = task.problems(task.Args(), split="train", n=100, seed=0)
    task.score(probs[0], "Therefore the answer is \\boxed{(3 + 7) * 3}.")

Splits: "train" and "id" use `n_numbers`, "ood" uses `ood_n_numbers`. Splits never share a problem: each
(numbers, target) key belongs to exactly one split by a stable hash of the key and the seed.
"""

from __future__ import annotations

import ast
import random
from collections import Counter
from fractions import Fraction
from typing import Union

from pydantic import Field, model_validator

from repro.identity import stable_seed
from repro.records import Problem, Score
from repro.tasks import TASKS, Task, TaskArgs

# An expression tree: a leaf number, or (op, left, right) with op in "+-*/".
Expr = Union[int, Fraction, tuple]
_PREC = {"+": 1, "-": 1, "*": 2, "/": 2}
_MAX_EXPR_CHARS = 200

# Share of the key space owned by each split (train / id / ood), used by `split_bucket`.
SPLIT_SHARES = {"train": (0.0, 0.8), "id": (0.8, 0.9), "ood": (0.9, 1.0)}


# ----------------------------------------------------------------------------- seeded helpers


def split_rng(task: str, seed: int, split: str) -> random.Random:
    """The per-split random stream of a task, derived deterministically from seed and split name."""
    return random.Random(stable_seed(task, seed, split))


def split_bucket(task: str, seed: int, key: str) -> str:
    """The split ("train", "id" or "ood") that owns an item key; makes splits disjoint by construction."""
    u = stable_seed(task, seed, "bucket", key) % 1_000_000 / 1_000_000
    return next(s for s, (lo, hi) in SPLIT_SHARES.items() if lo <= u < hi)


# ----------------------------------------------------------------------------- arithmetic


def apply_op(op: str, a: Fraction, b: Fraction) -> Fraction:
    """Exact rational a op b (ZeroDivisionError on division by zero)."""
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    return a / b


def moves(a: Fraction, b: Fraction, integer_only: bool) -> list[tuple[str, Fraction, Fraction, Fraction]]:
    """Every (op, left, right, result) combining a and b once; with `integer_only`, only steps whose
    result is a non-negative integer (Countdown's classic rule), so traces never show fractions."""
    out = [("+", a, b, a + b), ("*", a, b, a * b)]
    for x, y in ((a, b), (b, a)) if a != b else ((a, b),):
        if not integer_only:
            out.append(("-", x, y, x - y))
            if y != 0:
                out.append(("/", x, y, x / y))
        else:
            if x >= y:
                out.append(("-", x, y, x - y))
            if y != 0 and x % y == 0:
                out.append(("/", x, y, x // y))
    return out


def solve_all(numbers: list[int], integer_only: bool = True) -> dict[Fraction, Expr]:
    """Every value reachable using all `numbers` exactly once, each with one expression tree (the first
    found, deterministic). With `integer_only` the values are ints (faster). Memoised within the call."""
    memo: dict[tuple, dict[Fraction, Expr]] = {}

    def rec(items: tuple) -> dict[Fraction, Expr]:
        # an item is (value, tree, sorted leaf numbers); the key ignores only how a value was reached
        key = tuple(sorted((v, lv) for v, _, lv in items))
        if key in memo:
            return memo[key]
        if len(items) == 1:
            res = {items[0][0]: items[0][1]}
        else:
            res = {}
            for i in range(len(items)):
                for j in range(i + 1, len(items)):
                    rest = items[:i] + items[i + 1 : j] + items[j + 1 :]
                    (va, ta, la), (vb, tb, lb) = items[i], items[j]
                    lv = tuple(sorted(la + lb))
                    for op, x, _, r in moves(va, vb, integer_only):
                        tree = (op, ta, tb) if x == va else (op, tb, ta)
                        for v, t in rec(rest + ((r, tree, lv),)).items():
                            res.setdefault(v, t)
        memo[key] = res
        return res

    return rec(tuple((int(n) if integer_only else Fraction(n), int(n), (int(n),)) for n in numbers))


def to_str(tree: Expr) -> str:
    """Infix text with the minimal parentheses, e.g. `(3 + 7) * 3`."""
    if not isinstance(tree, tuple):
        return str(tree)
    op, left, right = tree
    ls, rs = to_str(left), to_str(right)
    if isinstance(left, tuple) and _PREC[left[0]] < _PREC[op]:
        ls = f"({ls})"
    if isinstance(right, tuple) and (
        _PREC[right[0]] < _PREC[op] or (_PREC[right[0]] == _PREC[op] and op in "-/")
    ):
        rs = f"({rs})"
    return f"{ls} {op} {rs}"


def steps_of(tree: Expr) -> list[tuple[Fraction, str, Fraction, Fraction]]:
    """The binary operations of a tree in evaluation order, as (left value, op, right value, result)."""
    out: list[tuple[Fraction, str, Fraction, Fraction]] = []

    def rec(t: Expr) -> Fraction:
        if not isinstance(t, tuple):
            return Fraction(t)
        a, b = rec(t[1]), rec(t[2])
        r = apply_op(t[0], a, b)
        out.append((a, t[0], b, r))
        return r

    rec(tree)
    return out


_AST_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def parse_expr(text: str) -> Expr | None:
    """Parse an arithmetic expression of non-negative integer literals and + - * / into a tree, without
    eval(); None if it is anything else (names, calls, unary minus, floats, too long)."""
    text = text.replace("\\times", "*").replace("\\cdot", "*").replace("\\div", "/").replace("×", "*")
    text = text.replace("÷", "/").strip()
    if not text or len(text) > _MAX_EXPR_CHARS:
        return None
    try:
        node = ast.parse(text, mode="eval").body
    except (SyntaxError, ValueError):
        return None

    def rec(n: ast.AST) -> Expr | None:
        if isinstance(n, ast.Constant) and type(n.value) is int and n.value >= 0:
            return n.value
        if isinstance(n, ast.BinOp) and type(n.op) in _AST_OPS:
            a, b = rec(n.left), rec(n.right)
            return None if a is None or b is None else (_AST_OPS[type(n.op)], a, b)
        return None

    return rec(node)


def leaves(tree: Expr) -> list[int]:
    """The number literals of a tree, left to right."""
    return leaves(tree[1]) + leaves(tree[2]) if isinstance(tree, tuple) else [int(tree)]


def evaluate(tree: Expr) -> Fraction | None:
    """Exact value of a tree; None on division by zero."""
    try:
        return steps_of(tree)[-1][3] if isinstance(tree, tuple) else Fraction(tree)
    except ZeroDivisionError:
        return None


def last_boxed(text: str) -> str | None:
    """Content of the last `\\boxed{...}` in text (nested braces allowed); None if there is none."""
    start = text.rfind("\\boxed{")
    while start != -1:
        i, depth = start + len("\\boxed{"), 1
        for j in range(i, len(text)):
            depth += {"{": 1, "}": -1}.get(text[j], 0)
            if depth == 0:
                return text[i:j].strip()
        start = text.rfind("\\boxed{", 0, start)  # unclosed box: fall back to an earlier one
    return None


# ----------------------------------------------------------------------------- task


class CountdownArgs(TaskArgs):
    """Arguments of the Countdown generator."""

    n_numbers: int = Field(3, ge=2, le=5, description="How many numbers a train/id problem gives.")
    ood_n_numbers: int = Field(4, ge=2, le=5, description="How many numbers an OOD problem gives.")
    max_number: int = Field(20, ge=1, le=1000, description="Numbers are drawn uniformly from 1..max_number.")
    min_target: int = Field(1, ge=0, description="Smallest allowed target.")
    max_target: int = Field(100, ge=1, description="Largest allowed target.")
    integer_steps: bool = Field(
        True, description="Require a solution whose intermediate results are non-negative integers."
    )

    @model_validator(mode="after")
    def _check(self) -> "CountdownArgs":
        if self.min_target > self.max_target:
            raise ValueError("min_target must be <= max_target")
        return self


def problem_key(numbers: list[int], target: int) -> str:
    return f"{','.join(map(str, sorted(numbers)))}->{target}"


class Countdown(Task):
    """Numbers + target -> an expression using each number once; graded by exact rational evaluation."""

    name = "countdown"
    Args = CountdownArgs
    splits = ("train", "id", "ood")

    def problems(self, args: TaskArgs, split: str, n: int, seed: int) -> list[Problem]:
        assert isinstance(args, CountdownArgs)
        if split not in self.splits:
            raise ValueError(f"countdown has no split {split!r}; splits: {self.splits}")
        rng = split_rng(self.name, seed, split)
        k = args.ood_n_numbers if split == "ood" else args.n_numbers
        out: list[Problem] = []
        seen: set[str] = set()
        tries = 0
        while len(out) < n:
            tries += 1
            if tries > 200 * n + 1000:
                raise ValueError(f"countdown: cannot find {n} distinct {split} problems with {args}")
            numbers = [rng.randint(1, args.max_number) for _ in range(k)]
            sols = solve_all(numbers, args.integer_steps)
            targets = [int(v) for v in sorted(sols) if v.denominator == 1 and args.min_target <= v <= args.max_target]
            rng.shuffle(targets)
            target = next((t for t in targets if problem_key(numbers, t) not in seen
                           and split_bucket(self.name, seed, problem_key(numbers, t)) == split), None)
            if target is None:
                continue
            seen.add(problem_key(numbers, target))
            solution = to_str(sols[Fraction(target)])
            out.append(
                Problem(
                    id=f"countdown/{split}/{len(out):06d}",
                    task=self.name,
                    split=split,
                    prompt=f"Using the numbers {', '.join(map(str, numbers))}, make {target}. "
                    "Use each number once with + - * /.",
                    answer=str(target),
                    meta={"numbers": numbers, "target": target, "solution": solution},
                )
            )
        return out

    def score(self, problem: Problem, completion: str) -> Score:
        boxed = last_boxed(completion)
        if boxed is None:
            return Score(correct=False, pred=None, finished=False)
        tree = parse_expr(boxed.split("=")[0])
        ok = (
            tree is not None
            and Counter(leaves(tree)) == Counter(problem.meta["numbers"])
            and evaluate(tree) == Fraction(problem.meta["target"])
        )
        return Score(correct=bool(ok), pred=boxed, finished=True)

    def answer_only(self, problem: Problem) -> str:
        """The short answer completion used for answer-only pretraining: the boxed solution expression."""
        return f"\\boxed{{{problem.meta['solution']}}}"


TASKS.register("countdown")(Countdown())

