"""Real benchmarks read from hub-format files, and the math family: MATH-500, AIME24, AIME25, HMMT Feb 2025,
BeyondAIME (math-verify grading).

Data come from JSONL files with the hub field names (fixtures in `data/benchmarks/`, see its README; a
`path` argument points at another copy); the hub itself is not reachable here. Each task has one split,
"test". A row without a required field, or a line that is not JSON, is an input error naming the file and
the row (exit 2).

Math scoring (as study B's `math_eval_budget.py` does it, with two fixes the issue asks for):
- prompt = "{problem}\\nPlease reason step by step, and put your final answer within \\boxed{}.";
- only the answer part is read (text after the last `</think>`; unclosed reasoning = unanswered);
- the last `\\boxed{...}` of the answer part takes priority: when there is one, only its content is graded
  (so a "the final answer is 3" phrase elsewhere cannot outrank it); without a box the whole answer part
  goes to math-verify's usual extraction;
- gold = the dataset's `answer` field, parsed as LaTeX;
- grading runs in a `repro.grading.Grader` (worker processes, hard per-answer deadline `grade_deadline`,
  5 s by default; a timeout or crash is wrong and counted); answers that are hopeless for math-verify
  (a boxed answer over 2,000 characters, nesting deeper than 64) are rejected in the parent by one linear
  scan and counted as scorer errors; without a box only the last 4,000 characters are read.

Subsampling: `Args.n` (and the call's `n`, whichever is smaller) takes a subsample seeded by `Args.seed`, in
file order. The call's `seed` is ignored on purpose: every model of a study sees the same items.

    task = get_task("math500")
    probs = task.problems(task.Args(n=50), split="test", n=0, seed=0)
    task.score(probs[0], "<think>...</think> so \\boxed{3}")
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any, ClassVar, Literal, Sequence

from pydantic import Field

import repro
from repro.errors import ReproError
from repro.grading import MAX_TAIL_CHARS, Grader, extract_boxed, screen_answer, shared_grader
from repro.records import Problem, Score
from repro.rows import OnBad, RowError
from repro.rows import read_rows as checked_rows
from repro.scoring import Graded, answer_part, unanswered
from repro.tasks import TASKS, Task, TaskArgs

PROMPT = "{problem}\nPlease reason step by step, and put your final answer within \\boxed{{}}."
REPO_ROOT = Path(repro.__file__).resolve().parent.parent.parent


def resolve_path(path: str) -> Path:
    """An absolute path as is; a relative one against the working dir, else against the repo root."""
    p = Path(path)
    if p.is_absolute() or (Path.cwd() / p).exists():
        return Path.cwd() / p
    if (REPO_ROOT / p).exists():
        return REPO_ROOT / p
    raise ReproError(f"benchmark file {path!r} not found in {Path.cwd()} nor in {REPO_ROOT}", exit_code=2)


def read_rows(path: Path, required: Sequence[str], on_bad: OnBad = "error", what: str = "") -> list[dict[str, Any]]:
    """JSONL (or .parquet) rows, each checked by `repro.rows`: a bad line, a non-UTF-8 row, a file cut short, or
    a row whose required field is missing, empty, null or a boolean is an input error naming the file and
    row (`on_bad="error"`), or is skipped, logged and counted (`"skip"`). No usable row at all is an error."""
    rows = checked_rows(path, {k: (str, int, float, list, dict) for k in required}, nonempty=tuple(required),
                        on_bad=on_bad, what=what)
    if not rows:
        raise RowError(path, None, f"no usable rows{f' ({what}s)' if what else ''}")
    return rows


class BenchArgs(TaskArgs):
    """Arguments of a file-backed benchmark."""

    path: str | None = Field(None, description="JSONL file in the hub format; None = the task's fixture "
                             "under data/benchmarks/ (relative paths: working dir first, then repo root).")
    n: int | None = Field(None, ge=1, description="Use at most n items (a seeded subsample); None = all.")
    seed: int = Field(0, description="Seed of the subsample (fixed per study, not per run).")
    bad_rows: Literal["error", "skip"] = Field(
        "error", description="A row with a missing field, a wrong type or an empty value: `error` stops with the "
        "file and row (also at `repro validate`); `skip` drops it, logs it and counts it in the eval job's "
        "metrics (`n_bad_rows_skipped`).")


def _limit(a: int | None, b: int | None) -> int | None:
    vals = [v for v in (a, b) if v is not None and v > 0]
    return min(vals) if vals else None


def _subsample(rows: list[dict[str, Any]], limit: int | None, seed: int) -> list[dict[str, Any]]:
    if limit is None or limit >= len(rows):
        return rows
    keep = sorted(random.Random(seed).sample(range(len(rows)), limit))
    return [rows[i] for i in keep]


class FileBenchmark(Task):
    """A benchmark read from a JSONL file; subclasses set `name`, `default_file` and `required` fields."""

    Args: ClassVar[type[TaskArgs]] = BenchArgs
    splits: ClassVar[tuple[str, ...]] = ("test",)
    default_file: ClassVar[str]
    required: ClassVar[tuple[str, ...]] = ()

    def check_data(self, args: BenchArgs) -> str | None:
        """A one-line problem with the benchmark file (missing, damaged, a bad row), or None; run by
        `repro validate`, so a bad file is found before any job runs."""
        try:
            read_rows(resolve_path(args.path or f"data/benchmarks/{self.default_file}"), self.required,
                      on_bad=args.bad_rows, what=f"{self.name} row")
        except ReproError as e:
            return str(e)
        return None

    def rows(self, args: BenchArgs, split: str, n: int | None) -> list[dict[str, Any]]:
        if split not in self.splits:
            raise ReproError(f"{self.name} has only the splits {self.splits}, not {split!r}", exit_code=2)
        rows = read_rows(resolve_path(args.path or f"data/benchmarks/{self.default_file}"), self.required,
                         on_bad=args.bad_rows, what=f"{self.name} row")
        return _subsample(rows, _limit(args.n, n), args.seed)


class MathArgs(BenchArgs):
    """Arguments of a math benchmark."""

    grade_deadline: float = Field(5.0, gt=0, description="Hard deadline per answer (seconds) for math-verify; "
                                  "an answer over it is wrong and counted in n_timed_out.")
    grade_workers: int = Field(1, ge=1, description="Grading worker processes.")


_GRADERS: dict[tuple[int, float], Grader] = {}


def grader_for(workers: int, deadline: float) -> Grader:
    """The process-wide Grader for these settings (the shared one for the defaults)."""
    if (workers, deadline) == (1, 5.0):
        return shared_grader()
    key = (workers, deadline)
    if key not in _GRADERS:
        _GRADERS[key] = Grader(workers=workers, deadline=deadline)
        import atexit

        atexit.register(_GRADERS[key].close)
    return _GRADERS[key]


class MathBenchmark(FileBenchmark):
    """Competition math with a string answer, graded by math-verify (boxed answer of the answer part first)."""

    Args: ClassVar[type[TaskArgs]] = MathArgs
    required: ClassVar[tuple[str, ...]] = ("problem", "answer")
    id_fields: ClassVar[tuple[str, ...]] = ("unique_id", "id", "problem_idx")

    def problems(self, args: TaskArgs, split: str, n: int, seed: int) -> list[Problem]:
        assert isinstance(args, BenchArgs)
        out = []
        for i, r in enumerate(self.rows(args, split, n)):
            rid = next((r[k] for k in self.id_fields if r.get(k) not in (None, "")), i)
            meta = {k: r[k] for k in ("unique_id", "id", "problem_idx", "subject", "level", "url") if k in r}
            meta["source_prompt"] = r["problem"]
            meta["grading"] = [args.grade_workers, args.grade_deadline] if isinstance(args, MathArgs) else [1, 5.0]
            out.append(Problem(id=f"{self.name}/{rid}", task=self.name, split=split,
                               prompt=PROMPT.format(problem=r["problem"]), answer=str(r["answer"]), meta=meta))
        return out

    def score(self, problem: Problem, completion: str) -> Score:
        return self.score_many([problem], [completion])[0]

    def score_many(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Score]:
        """Grade many completions in one batched call to the shared Grader."""
        out: list[Score] = [unanswered() for _ in completions]
        todo: list[tuple[int, str, str | None]] = []  # (index, graded text, boxed content)
        prep = [0.0] * len(completions)  # seconds spent in this process on each item
        for i, c in enumerate(completions):
            t0 = time.monotonic()
            ans = answer_part(c)
            if ans is None:
                continue
            if not ans.strip():
                out[i] = unanswered("empty answer")
                continue
            boxed = extract_boxed(ans)
            text = ans[-MAX_TAIL_CHARS:] if boxed is None else "\\boxed{" + boxed + "}"
            why = screen_answer(text)
            if why is not None:  # hopeless for math-verify: wrong at once, counted as a scorer error
                out[i] = Graded(correct=False, pred=None if boxed is None else boxed[:200], finished=boxed is not None,
                                answered=boxed is not None, error=why, seconds=time.monotonic() - t0)
                continue
            todo.append((i, text, boxed))
            prep[i] = time.monotonic() - t0
        workers, deadline = problems[0].meta.get("grading", [1, 5.0]) if problems else (1, 5.0)
        res = grader_for(int(workers), float(deadline)).grade_many([(problems[i].answer, t) for i, t, _ in todo])
        for (i, _, boxed), r in zip(todo, res, strict=True):
            pred = r.extracted if r.extracted is not None else boxed
            out[i] = Graded(correct=r.correct, pred=pred, finished=boxed is not None, answered=pred is not None,
                            timed_out=r.timed_out, error=r.error, seconds=prep[i] + r.seconds)
        return out


class Math500(MathBenchmark):
    name = "math500"
    default_file = "math500.jsonl"


class AIME24(MathBenchmark):
    name = "aime24"
    default_file = "aime24.jsonl"


class AIME25(MathBenchmark):
    name = "aime25"
    default_file = "aime25.jsonl"


class HMMTFeb2025(MathBenchmark):
    """MathArena/hmmt_feb_2025 (fields problem_idx, problem, answer)."""

    name = "hmmt_feb2025"
    default_file = "hmmt_feb2025.jsonl"


class BeyondAIME(MathBenchmark):
    """ByteDance-Seed/BeyondAIME (fields problem, answer; integer answers)."""

    name = "beyond_aime"
    default_file = "beyond_aime.jsonl"


for _task in (Math500(), AIME24(), AIME25(), HMMTFeb2025(), BeyondAIME()):
    TASKS.register(_task.name)(_task)
