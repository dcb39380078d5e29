"""LiveCodeBench code generation (`livecodebench/code_generation_lite`, release_v2: 511 problems, May 2023 -
May 2024), pass@1 with the generated program run against the public and hidden tests in the sandbox
(`repro.scoring.sandbox`: own process per test, CPU-time / memory / output limits, wall deadline, no
network, scratch directory deleted afterwards).

Rows keep the hub's columns: `question_title`, `question_content`, `platform`, `question_id`, `contest_id`,
`contest_date`, `starter_code`, `difficulty`, `public_test_cases` (a JSON list of {input, output, testtype}),
`private_test_cases` (the same list as JSON, or as the hub stores it: base64 of zlib of a pickled JSON
string; the pickle is read with an unpickler that builds no objects but plain strings) and `metadata` (JSON;
`func_name` for LeetCode-style functional tests). The shipped fixture holds made-up problems in that layout.

Tests: `stdin` tests feed the input and compare the output line by line (whitespace-trimmed; numbers that
differ only in float formatting within 1e-6 match); `functional` tests call `Solution().<func_name>(*args)`
with one JSON value per input line and compare the JSON result. A problem is solved when every test passes
(pass@1 over n samples = the eval stage's avg@n). The program is the last fenced code block of the answer
part (after `</think>`); none = unanswered.

    task = get_task("livecodebench")
    p = task.problems(task.Args(), "test", 0, 0)[0]
    task.score(p, "```python\\nprint(sum(map(int, input().split())))\\n```")
"""

from __future__ import annotations

import base64
import io
import json
import os
import pickle
import re
import zlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar, Sequence

from pydantic import Field

from repro.records import Problem, Score
from repro.scoring import Graded, answer_part, unanswered
from repro.scoring.sandbox import Limits, run_python
from repro.tasks import TASKS
from repro.tasks.real import BenchArgs, FileBenchmark

SYSTEM = ("You are an expert Python programmer. You will be given a question (problem specification) and will "
          "generate a correct Python program that matches the specification and passes all tests.")
FORMAT_STDIN = ("Read the inputs from stdin, solve the problem and write the answer to stdout (do not directly test "
                "on the sample inputs). Enclose your code within delimiters as follows.\n```python\n"
                "# YOUR CODE HERE\n```")
FORMAT_STARTER = ("You will use the following starter code to write the solution to the problem and enclose your "
                  "code within delimiters.\n```python\n{starter}\n```")
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[ \t]*\n(.*?)```", re.S)

# Imports LeetCode-style solutions assume (as LiveCodeBench's runner provides them).
HEADER = ("from typing import *\nfrom collections import *\nfrom functools import *\nfrom itertools import *\n"
          "from heapq import *\nfrom bisect import *\nimport math, string, re, sys, heapq, bisect, itertools, functools\n\n")

_DRIVER = '''

import json as _json, sys as _sys
_args = [_json.loads(_l) for _l in _sys.stdin.read().split("\\n") if _l.strip()]
_out = getattr(Solution(), {func!r})(*_args)
print(_json.dumps(_out))
'''


class _StringsOnly(pickle.Unpickler):
    """An unpickler that refuses every global: only plain data (the hub pickles one JSON string) loads."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing {module}.{name} in a test-case blob")


def decode_tests(blob: Any) -> list[dict[str, Any]]:
    """Test cases from a row field: a list, a JSON string, or base64(zlib(pickle(JSON string)))."""
    if isinstance(blob, list):
        return blob
    if not blob:
        return []
    try:
        return json.loads(blob)
    except (json.JSONDecodeError, TypeError):
        pass
    raw = _StringsOnly(io.BytesIO(zlib.decompress(base64.b64decode(blob)))).load()
    return json.loads(raw) if isinstance(raw, (str, bytes)) else raw


def extract_code(answer: str) -> str | None:
    """The last fenced code block (python preferred) of an answer part."""
    blocks = _FENCE.findall(answer)
    if not blocks:
        return None
    py = [code for lang, code in blocks if lang.lower() in ("python", "python3", "py")]
    return (py or [code for _, code in blocks])[-1]


def _numbers_match(a: str, b: str) -> bool:
    try:
        return abs(float(a) - float(b)) <= 1e-6 * max(1.0, abs(float(b)))
    except ValueError:
        return False


def outputs_match(got: str, want: str) -> bool:
    """Line-by-line comparison of trimmed outputs; numeric tokens within 1e-6 count as equal."""
    g = [ln.strip() for ln in got.strip().splitlines()]
    w = [ln.strip() for ln in want.strip().splitlines()]
    if g == w:
        return True
    if len(g) != len(w):
        return False
    for a, b in zip(g, w):
        ta, tb = a.split(), b.split()
        if len(ta) != len(tb) or not all(x == y or _numbers_match(x, y) for x, y in zip(ta, tb)):
            return False
    return True


class LCBArgs(BenchArgs):
    """Arguments of LiveCodeBench."""

    cpu_seconds: float = Field(6.0, gt=0, description="CPU-time limit per test run (seconds).")
    wall_seconds: float = Field(12.0, gt=0, description="Wall-clock limit per test run (seconds).")
    memory_mb: int = Field(1024, ge=64, description="Address-space limit per test run (MB).")
    workers: int = Field(2, ge=1, description="Programs run at once (each in its own sandboxed process).")


class LiveCodeBench(FileBenchmark):
    """LiveCodeBench v2 code generation, pass@1 in the sandbox."""

    name = "livecodebench"
    default_file = "livecodebench_v2.jsonl"
    Args: ClassVar[type[BenchArgs]] = LCBArgs
    required: ClassVar[tuple[str, ...]] = ("question_id", "question_content", "public_test_cases")

    def problems(self, args: Any, split: str, n: int, seed: int) -> list[Problem]:
        assert isinstance(args, LCBArgs)
        out = []
        for r in self.rows(args, split, n):
            starter = (r.get("starter_code") or "").strip()
            fmt = FORMAT_STARTER.format(starter=starter) if starter else FORMAT_STDIN
            prompt = f"{SYSTEM}\n\n### Question:\n{r['question_content']}\n\n### Format: {fmt}\n\n### Answer: (use the provided format with backticks)\n\n"
            tests = decode_tests(r["public_test_cases"]) + decode_tests(r.get("private_test_cases"))
            meta_raw = r.get("metadata") or {}
            meta = json.loads(meta_raw) if isinstance(meta_raw, str) else dict(meta_raw)
            out.append(Problem(id=f"{self.name}/{r['question_id']}", task=self.name, split=split, prompt=prompt,
                               answer="", meta={"question_id": r["question_id"], "tests": tests,
                                                "func_name": meta.get("func_name"), "platform": r.get("platform"),
                                                "difficulty": r.get("difficulty"), "source_prompt": r["question_content"],
                                                "limits": [args.cpu_seconds, args.wall_seconds, args.memory_mb],
                                                "workers": args.workers}))
        return out

    def run_tests(self, problem: Problem, code: str) -> tuple[bool, str, int]:
        """(all passed, status of the first failing test or "ok", tests run)."""
        cpu, wall, mem = problem.meta.get("limits", [6.0, 12.0, 1024])
        limits = Limits(cpu_seconds=cpu, wall_seconds=wall, memory_mb=int(mem))
        func = problem.meta.get("func_name")
        for k, t in enumerate(problem.meta["tests"], 1):
            functional = t.get("testtype") == "functional"
            program = HEADER + code + (_DRIVER.format(func=func) if functional and func else "")
            r = run_python(program, stdin=t["input"], limits=limits)
            if r.status != "ok":
                return False, r.status, k
            if functional:
                try:
                    ok = json.loads(r.stdout) == json.loads(t["output"])
                except json.JSONDecodeError:
                    ok = False
            else:
                ok = outputs_match(r.stdout, t["output"])
            if not ok:
                return False, "wrong_answer", k
        return True, "ok", len(problem.meta["tests"])

    def score(self, problem: Problem, completion: str) -> Score:
        ans = answer_part(completion)
        if ans is None:
            return unanswered()
        code = extract_code(ans)
        if code is None:
            return Graded(correct=False, pred=None, finished=False, answered=False, extra={"status": "no_code"})
        ok, status, ran = self.run_tests(problem, code)
        return Graded(correct=ok, pred=status, finished=True, answered=True, timed_out=status == "timeout",
                      extra={"status": status, "tests_run": ran})

    def score_many(self, problems: Sequence[Problem], completions: Sequence[str]) -> list[Score]:
        workers = max([p.meta.get("workers", 1) for p in problems] or [1])
        with ThreadPoolExecutor(max_workers=min(workers, os.cpu_count() or 1)) as ex:
            return list(ex.map(self.score, problems, completions))

    def aggregate(self, graded: Sequence[tuple[Problem, Graded]]) -> dict[str, Any]:
        """How the runs ended: counts per status (ok, wrong_answer, error, timeout, memory, blocked, ...)."""
        counts: dict[str, int] = {}
        for _, g in graded:
            st = g.extra.get("status", "unanswered")
            counts[st] = counts.get(st, 0) + 1
        return {"run_status": dict(sorted(counts.items()))}


TASKS.register(LiveCodeBench.name)(LiveCodeBench())
