"""filter: apply a chain of registered filters to a generate job's traces.

Writes `traces.jsonl` (kept, in input order), `stats.json` (input/kept/dropped counts, reasons, per-filter
counts, and the id and reason of every drop). kept + dropped == input always.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from repro.config import FilterJob
from repro.filters import FilterContext, apply_chain
from repro.records import Problem, Trace, read_jsonl, write_json, write_jsonl


def load_traces(folder: Path) -> list[Trace]:
    """The traces of a generate or filter job; a damaged or truncated file is a RowError naming the row."""
    from repro.rows import RowError, iter_jsonl

    out = []
    for i, d in iter_jsonl(folder / "traces.jsonl"):
        try:
            out.append(Trace.from_dict(d))
        except (TypeError, KeyError, AttributeError) as e:
            raise RowError(folder / "traces.jsonl", i, f"not a trace: {e}") from None
    return out


def run(cfg: FilterJob, inputs: dict[str, Path], out: Path, runtime: dict[str, Any]) -> dict[str, Any]:
    traces = load_traces(inputs["traces"])
    reference = {t.problem_id: t for t in load_traces(inputs["reference"])} if "reference" in inputs else None
    problems = {d["id"]: Problem(**d) for d in read_jsonl(inputs["traces"] / "problems.jsonl")}
    ctx = FilterContext(seed=cfg.seed, reference=reference, problems=problems)
    kept, stats = apply_chain(traces, [(f.name, f.args) for f in cfg.filters], ctx)
    write_jsonl(out / "traces.jsonl", kept)
    write_json(out / "stats.json", stats)
    return {k: stats[k] for k in ("input", "kept", "dropped")}


def plan(cp: Any) -> None:
    """Planner: the condition's filter chain over its generate job's traces (and the reference's)."""
    c, d = cp.cond, cp.cond.data
    inputs = {"traces": cp.ids["generate"]}
    if "reference" in cp.ids:
        inputs["reference"] = cp.ids["reference"]
    cp.ids["filter"] = cp.cached(("filter", id(c.filters), tuple(inputs.values())), lambda: (
        "filter", f"{d.teacher.name}-{'+'.join(f.name for f in c.filters) or 'none'}",
        FilterJob(filters=c.filters, seed=d.seed).model_dump(mode="json"), inputs, cp.res("filter")))
