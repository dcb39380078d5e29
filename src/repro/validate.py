"""Checks of a spec's conditions against the registries: every component a condition names (task,
teacher, filter, analysis, generation backend) must be registered, and its arguments must fit the
component's strict `Args` model. A problem is reported as `file: field.path: what was wrong (allowed
keys / known names)`, one line each.

Kept apart from spec.py so that loading the YAML stays free of task code. Each distinct (kind, name,
args) is validated once, however many conditions use it, so a 10,000-condition grid stays fast.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from repro.errors import SpecError
from repro.identity import canonical_json


def allowed_keys(model: Any, loc: tuple[Any, ...]) -> list[str] | None:
    """The field names of the (nested) pydantic model at `loc` under `model`, or None if not a model."""
    from repro.spec import check_path_model

    return check_path_model(model, [str(x) for x in loc])


def _args_problems(kind: str, name: str, entry: Any, args: dict[str, Any]) -> list[tuple[str, str]]:
    """(key path inside the args, message) for each way `args` does not fit `entry.Args`."""
    try:
        entry.Args.model_validate(args)
    except ValidationError as e:
        out = []
        for err in e.errors():
            loc = ".".join(str(x) for x in err["loc"])
            if err["type"] == "extra_forbidden":
                keys = allowed_keys(entry.Args, tuple(err["loc"][:-1]))
                msg = f"unknown key of {kind} {name!r}; allowed keys: {', '.join(keys) if keys else '(none)'}"
            else:
                msg = f"{kind} {name!r}: {err['msg']}"
            out.append((loc, msg))
        return out
    return []


def check_registries(file: str, conds: list[Any]) -> None:
    """Raise SpecError listing every unknown name or bad argument, with the condition and path."""
    from repro.analysis import ANALYSES
    from repro.filters import FILTERS
    from repro.generation import BACKENDS
    from repro.tasks import get_task
    from repro.teachers import get_teacher

    memo: dict[str, list[tuple[str, str]]] = {}
    found: dict[tuple[str, str], list[str]] = {}  # (path, message) -> conditions

    def check(where: str, args_at: str, kind: str, name: str, args: dict[str, Any], lookup: Any, extra: Any = None) -> None:
        """`where`: the field naming the component; `args_at`: the field holding its arguments."""
        key = canonical_json([kind, name, args, extra])
        if key not in memo:
            try:
                entry = lookup(name)
            except KeyError as e:
                memo[key] = [("", str(e.args[0]))]
            else:
                memo[key] = [(f"{args_at}.{loc}", m) for loc, m in _args_problems(kind, name, entry, args)] if hasattr(entry, "Args") else []
                if not memo[key] and hasattr(entry, "check_data"):  # file-backed data: every row checked
                    problem = entry.check_data(entry.Args(**args))
                    memo[key] = [("", problem)] if problem else []
                if not memo[key] and extra is not None and hasattr(entry, "tasks") and extra not in entry.tasks:
                    memo[key] = [("", f"teacher {name!r} does not support task {extra!r} (supports: {', '.join(entry.tasks)})")]
        for path, msg in memo[key]:
            found.setdefault((path or where, msg), []).append(cond_name)

    for nc in conds:
        c = nc.condition
        cond_name = nc.name
        check("data.task", "data.task_args", "task", c.data.task, c.data.task_args, get_task)
        check("data.teacher.name", "data.teacher.args", "teacher", c.data.teacher.name, c.data.teacher.args, get_teacher, c.data.task)
        if c.data.reference_teacher:
            rt = c.data.reference_teacher
            check("data.reference_teacher.name", "data.reference_teacher.args", "teacher", rt.name, rt.args, get_teacher, c.data.task)
        for i, f in enumerate(c.filters):
            check(f"filters.{i}.name", f"filters.{i}.args", "filter", f.name, f.args, FILTERS.get)
        for i, a in enumerate(c.analyses):
            check(f"analyses.{i}.name", f"analyses.{i}.args", "analysis", a.name, a.args, ANALYSES.get)
        samp = c.eval.sampling
        check("eval.sampling.backend", "eval.sampling.backend_args", "backend", samp.backend,
              getattr(samp, "backend_args", {}), BACKENDS.get)
        names: set[str] = set()
        for i, b in enumerate(c.eval.benchmarks):
            if b.name in names:
                found.setdefault((f"eval.benchmarks.{i}.name", f"duplicate benchmark name {b.name!r}"), []).append(cond_name)
            names.add(b.name)
            args = b.task_args if b.task_args is not None else (c.data.task_args if b.task == c.data.task else {})
            check(f"eval.benchmarks.{i}.task", f"eval.benchmarks.{i}.task_args", "task", b.task, args, get_task)
        for i, mix in enumerate(c.model.pretrain.mixture if c.model.pretrain else []):
            check(f"model.pretrain.mixture.{i}.task", f"model.pretrain.mixture.{i}.task_args", "task", mix.task, mix.task_args, get_task)
    if found:
        problems = []
        for (where, msg), names in found.items():
            scope = f"condition {names[0]}" if len(names) == 1 else f"{len(names)} conditions, e.g. {names[0]}"
            problems.append((file, where, f"{msg} (in {scope})"))
        raise SpecError(problems)
