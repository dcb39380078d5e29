"""`repro score TASK FILE [--out RESULTS.jsonl]`: score completions produced anywhere with the same scorers
as the eval stage.

Input: JSONL, one completion per line, either `{"prompt", "response"}` (the layout of Google's IFEval
response files) or `{"id", "completion"}` (either text key goes with either match key). A line is matched to
a task item by `id` when it has one (the item id such as `math500/test/...`, or the dataset's own id without
the task prefix), else by its prompt text (the dataset's prompt, or the templated one the eval stage sends).
A line that is not JSON, has no text, or matches no item is an error naming its line number (exit 2). Several
lines may answer the same item (n samples): accuracy is the mean over items of the per-item mean (avg@n).

Prints the metrics as JSON (for IFEval the four lm-eval names at the top level). `--out` writes one result per
input line in input order; for IFEval each result holds `prompt`, `strict` and `loose`, each with
`follow_all_instructions` and `follow_instruction_list` as the reference writes them.

    repro score ifeval responses.jsonl --out results.jsonl
    repro score math500 completions.jsonl --task-args '{"path": "my_math500.jsonl"}'
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from repro.errors import ReproError
from repro.records import Problem
from repro.scoring import Graded
from repro.scoring.apply import grade, row_fields, summary
from repro.tasks import get_task

log = logging.getLogger(__name__)


def _index(problems: list[Problem], task: str) -> tuple[dict[str, Problem], dict[str, Problem]]:
    """Lookup tables: by id (full and without the task prefix, and the dataset key) and by prompt text."""
    by_id: dict[str, Problem] = {}
    by_prompt: dict[str, Problem] = {}
    for p in problems:
        by_id.setdefault(p.id, p)
        by_id.setdefault(p.id.removeprefix(f"{task}/"), p)
        for k in ("key", "id", "unique_id", "question_id", "problem_idx"):
            if k in p.meta:
                by_id.setdefault(str(p.meta[k]), p)
        for text in (p.prompt, p.meta.get("source_prompt")):
            if isinstance(text, str):
                by_prompt.setdefault(text, p)
                by_prompt.setdefault(text.strip(), p)
    return by_id, by_prompt


def read_completions(path: Path, problems: list[Problem], task: str) -> list[tuple[Problem, str]]:
    """(item, completion) per input line, in order; any bad line is an error naming its number."""
    by_id, by_prompt = _index(problems, task)
    out: list[tuple[Problem, str]] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise ReproError(f"{path}: no such file", exit_code=2) from None
    except UnicodeDecodeError as e:
        raise ReproError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})", exit_code=2) from None
    for no, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise ReproError(f"{path}: line {no}: not JSON ({e.msg})", exit_code=2) from None
        if not isinstance(row, dict):
            raise ReproError(f"{path}: line {no}: expected a JSON object", exit_code=2)
        text = row.get("completion", row.get("response"))
        if not isinstance(text, str):
            raise ReproError(f"{path}: line {no}: needs a string 'completion' or 'response'", exit_code=2)
        if row.get("id") is not None:
            p = by_id.get(str(row["id"]))
            if p is None:
                raise ReproError(f"{path}: line {no}: no {task} item has id {row['id']!r}", exit_code=2)
        elif isinstance(row.get("prompt"), str):
            p = by_prompt.get(row["prompt"]) or by_prompt.get(row["prompt"].strip())
            if p is None:
                raise ReproError(f"{path}: line {no}: no {task} item has this prompt "
                                 f"({row['prompt'][:60]!r}...)", exit_code=2)
        else:
            raise ReproError(f"{path}: line {no}: needs an 'id' or a 'prompt' to match a {task} item", exit_code=2)
        out.append((p, text))
    if not out:
        raise ReproError(f"{path}: no completions", exit_code=2)
    return out


def result_row(task: str, p: Problem, g: Graded) -> dict[str, Any]:
    """The per-line result written by --out."""
    if task == "ifeval" and "strict" in g.extra:
        return {"prompt": p.prompt, "strict": g.extra["strict"], "loose": g.extra["loose"]}
    return {"id": p.id, **row_fields(g)}


def score_file(task_name: str, path: Path, task_args: dict[str, Any] | None = None, split: str | None = None,
               out: Path | None = None) -> dict[str, Any]:
    """Score a completions file; return the metrics (and write per-line results to `out`)."""
    try:
        task = get_task(task_name)
    except KeyError as e:
        raise ReproError(f"unknown task {task_name!r}: {e.args[0] if e.args else ''}", exit_code=2) from None
    try:
        args = task.Args(**(task_args or {}))
    except ValidationError as e:
        first = e.errors()[0]
        raise ReproError(f"--task-args: {'.'.join(map(str, first['loc']))}: {first['msg']}", exit_code=2) from None
    problems = task.problems(args, split or task.splits[-1], 0, 0)
    pairs = read_completions(path, problems, task_name)
    grades = grade(task, [p for p, _ in pairs], [c for _, c in pairs])
    per_item: dict[str, list[bool]] = defaultdict(list)
    for (p, _), g in zip(pairs, grades):
        per_item[p.id].append(bool(g.correct))
    acc = sum(sum(v) / len(v) for v in per_item.values()) / len(per_item)
    metrics: dict[str, Any] = {"task": task_name, "n_lines": len(pairs), "n_items": len(per_item),
                               "accuracy": round(acc, 6)}
    metrics.update(summary(task, [p for p, _ in pairs], grades))
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        with open(out, "w", encoding="utf-8") as f:
            for (p, _), g in zip(pairs, grades):
                f.write(json.dumps(result_row(task_name, p, g), ensure_ascii=False) + "\n")
    return metrics
