"""Read the job folders a report job names into pandas DataFrames.

`collect(cfg, inputs)` reads only `inputs[job_id]` folders (the report job's inputs map each job id to its
output folder); it never globs results/. Every file is optional: a missing or unreadable file is logged and
the part of the report that needs it is skipped.

Tables of `ReportData` (conditions are always in the spec's order, benchmarks by role then name):
- `conditions`: one row per condition: `condition` (name), one column per axis (`axes`, without the
  `condition` label of extra named conditions), n_generated / n_kept traces, train_steps, job_<role> ids.
- `evals`: one row per (condition, benchmark, step) from eval/metrics.json; `final` marks the condition's
  last step (its `steps`, or the largest evaluated step if that one is missing).
- `train_log`: (condition, step, loss, ...) from train/train_log.jsonl, cut at the condition's own steps
  (several conditions can share one training run).
- `train`: per condition: final_loss (metrics.json when the run ends at the condition's steps, else the
  mean of the last 10% of logged losses up to them, as the train stage computes it), n_examples.
- `filters`: per filter job: its stats.json plus the generate job it read and the conditions using it.
- `analyses`: condition -> analysis name -> summary.json.
- `manifests`: job id -> manifest.json, for provenance.
- `folders`: job id -> its output folder (the claim checks read per-item files from them).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from repro.config import ReportJob
from repro.plan import ROLES

log = logging.getLogger(__name__)

ROLE_ORDER = ("id", "ood", "safety", "probe")
EVAL_FIELDS = ("n_items", "n_samples", "accuracy", "ci_low", "ci_high", "mean_response_tokens",
               "finished_rate", "trapped_rate", "refusal_rate", "harm_score", "n_timed_out", "n_scorer_errors",
               "n_unanswered")


@dataclass
class ReportData:
    """Everything the report shows, as tables keyed by condition name."""

    cfg: ReportJob
    order: list[str]
    axes: list[str]
    conditions: pd.DataFrame
    evals: pd.DataFrame
    train_log: pd.DataFrame
    train: pd.DataFrame
    generate: dict[str, dict[str, Any]]
    filters: list[dict[str, Any]]
    analyses: dict[str, dict[str, dict[str, Any]]]
    manifests: dict[str, dict[str, Any]]
    missing: list[str] = field(default_factory=list)
    folders: dict[str, Path] = field(default_factory=dict)

    def labels(self, name: str) -> dict[str, str]:
        """Axis labels of a condition (plus `condition`: its name)."""
        row = next(r for r in self.cfg.conditions if r["name"] == name)
        return {**{k: str(v) for k, v in (row.get("labels") or {}).items()}, "condition": name}

    def benchmarks(self) -> list[str]:
        """Benchmarks in display order: by role (id, ood, safety, probe), then by name."""
        if self.evals.empty:
            return []
        b = self.evals[["benchmark", "role"]].drop_duplicates()
        b = b.assign(r=b["role"].map(role_rank)).sort_values(["r", "benchmark"])
        return list(dict.fromkeys(b["benchmark"]))


def role_rank(role: str) -> int:
    return ROLE_ORDER.index(role) if role in ROLE_ORDER else len(ROLE_ORDER)


def number(label: Any) -> float | None:
    """The number in an axis label ('0.2', 'xi0.2', 'lr3e-4' -> 0.2, 0.2, 3e-4), or None."""
    if isinstance(label, (int, float)):
        return float(label)
    m = re.search(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?", str(label))
    return float(m.group()) if m else None


def read_json(path: Path) -> Any:
    """Parsed JSON, or None (logged) when the file is missing or broken."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        log.info("report: no %s", path)
    except (OSError, ValueError) as e:
        log.warning("report: cannot read %s: %s", path, e)
    return None


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON-lines file; [] when missing, broken lines skipped."""
    rows: list[dict[str, Any]] = []
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    d = json.loads(line) if line.strip() else None
                except ValueError:
                    continue
                if isinstance(d, dict):
                    rows.append(d)
    except FileNotFoundError:
        log.info("report: no %s", path)
    return rows


class _Reader:
    """Reads job folders by id, caching, and remembering ids whose folder or manifest is missing."""

    def __init__(self, inputs: dict[str, Path]) -> None:
        self.inputs = {k: Path(v) for k, v in inputs.items()}
        self.missing: list[str] = []
        self._cache: dict[tuple[str, str], Any] = {}

    def folder(self, jid: str | None) -> Path | None:
        if not jid:
            return None
        d = self.inputs.get(jid)
        if d is None or not d.is_dir():
            if jid not in self.missing:
                self.missing.append(jid)
            return None
        return d

    def json(self, jid: str | None, rel: str) -> Any:
        key = (jid or "", rel)
        if key not in self._cache:
            d = self.folder(jid)
            self._cache[key] = read_json(d / rel) if d else None
        return self._cache[key]


def _eval_rows(rd: _Reader, row: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for e in row.get("evals") or []:
        m = rd.json(e.get("id"), f"{e.get('benchmark')}/metrics.json")
        if not isinstance(m, dict):
            continue
        r = {"condition": row["name"], "benchmark": e.get("benchmark") or m.get("benchmark"),
             "role": e.get("role") or m.get("role") or "probe", "step": int(e.get("step", m.get("step", 0))),
             "id": e.get("id")}
        r.update({k: (float(m[k]) if isinstance(m.get(k), (int, float)) else float("nan")) for k in EVAL_FIELDS})
        out.append(r)
    if out:
        final = int(row.get("steps") or 0)
        steps = {r["step"] for r in out}
        last = final if final in steps else max(steps)
        for r in out:
            r["final"] = r["step"] == last
    return out


def _train(rd: _Reader, row: dict[str, Any]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    jid, steps = row.get("train"), int(row.get("steps") or 0)
    d = rd.folder(jid)
    log_rows = []
    if d is not None:
        for r in read_jsonl(d / "train_log.jsonl"):
            if isinstance(r.get("loss"), (int, float)) and isinstance(r.get("step"), (int, float)):
                if not steps or r["step"] <= steps:
                    log_rows.append({"condition": row["name"], **{k: v for k, v in r.items() if isinstance(v, (int, float))}})
    m = rd.json(jid, "metrics.json") or {}
    final = m.get("final_loss") if int(m.get("steps") or -1) == steps else None
    if final is None and log_rows:  # a shorter condition of a shared run: as the train stage does it
        tail = [r["loss"] for r in log_rows[-max(1, len(log_rows) // 10):]]
        final = sum(tail) / len(tail)
    info = {"condition": row["name"], "final_loss": float(final) if isinstance(final, (int, float)) else float("nan"),
            "n_examples": m.get("n_examples"), "run_steps": m.get("steps")}
    return log_rows, info


def _analysis(rd: _Reader, a: dict[str, Any]) -> Any:
    s = rd.json(a.get("id"), "summary.json")
    if s is None:
        s = rd.json(a.get("id"), f"{a.get('name')}/summary.json")
    return s


def _filters(rd: _Reader, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_id: dict[str, dict[str, Any]] = {}
    for row in rows:
        fid = row.get("filter")
        if not fid:
            continue
        if fid not in by_id:
            stats = rd.json(fid, "stats.json")
            man = rd.json(fid, "manifest.json") or {}
            chain = [f.get("name", "?") for f in (man.get("config") or {}).get("filters", [])]
            by_id[fid] = {"id": fid, "generate": row.get("generate"), "reference": row.get("reference"),
                          "name": man.get("name") or fid, "chain": "+".join(chain) or "none",
                          "stats": stats if isinstance(stats, dict) else None, "conditions": []}
        by_id[fid]["conditions"].append(row["name"])
    return list(by_id.values())


def collect(cfg: ReportJob, inputs: dict[str, Path]) -> ReportData:
    """Read every job folder the report config names; see the module docstring for the tables."""
    rd = _Reader(inputs)
    rows = cfg.conditions
    order = [r["name"] for r in rows]
    axes = list(dict.fromkeys(a for r in rows for a in (r.get("labels") or {}) if a != "condition"))
    cond_rows, evals, logs, train, generate = [], [], [], [], {}
    analyses: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        gid = row.get("generate")
        if gid and gid not in generate:
            generate[gid] = rd.json(gid, "stats.json") or {}
        gstats = generate.get(gid, {}) if gid else {}
        fstats = rd.json(row.get("filter"), "stats.json") or {}
        labels = row.get("labels") or {}
        cond_rows.append({"condition": row["name"], **{a: str(labels.get(a, "")) for a in axes},
                          "n_generated": gstats.get("traces"), "n_kept": fstats.get("kept"),
                          "train_steps": row.get("steps"),
                          **{f"job_{r}": row.get(r) for r in ROLES}})
        evals.extend(_eval_rows(rd, row))
        lr, info = _train(rd, row)
        logs.extend(lr)
        train.append(info)
        for a in row.get("analyses") or []:
            s = _analysis(rd, a)
            if isinstance(s, dict):
                analyses.setdefault(row["name"], {})[a["name"]] = s
    manifests = {}
    for jid in inputs:
        m = rd.json(jid, "manifest.json")
        if isinstance(m, dict):
            manifests[jid] = {**(rd.json(jid, "run.json") or {}), **m}  # run.json: absent if restored by DVC
        elif jid not in rd.missing:
            rd.missing.append(jid)
    ev = pd.DataFrame(evals, columns=["condition", "benchmark", "role", "step", "id", *EVAL_FIELDS, "final"])
    if not ev.empty:
        ev["final"] = ev["final"].astype(bool)
        ev = ev.assign(_c=ev["condition"].map(order.index), _r=ev["role"].map(role_rank))
        ev = ev.sort_values(["_c", "_r", "benchmark", "step"]).drop(columns=["_c", "_r"]).reset_index(drop=True)
    tl = pd.DataFrame(logs)
    if tl.empty:
        tl = pd.DataFrame(columns=["condition", "step", "loss"])
    conds = pd.DataFrame(cond_rows, columns=["condition", *axes, "n_generated", "n_kept", "train_steps",
                                             *[f"job_{r}" for r in ROLES]])
    for col in ("n_generated", "n_kept", "train_steps"):
        conds[col] = pd.array([v if isinstance(v, int) else None for v in conds[col]], dtype="Int64")
    data = ReportData(cfg=cfg, order=order, axes=axes, conditions=conds, evals=ev,
                      train_log=tl, train=pd.DataFrame(train), generate=generate, filters=_filters(rd, rows),
                      analyses=analyses, manifests=manifests, missing=sorted(rd.missing),
                      folders=dict(rd.inputs))
    log.info("report %s: %d conditions, %d eval rows, %d train-log rows, %d analyses, %d missing jobs",
             cfg.spec, len(order), len(ev), len(tl), sum(len(v) for v in analyses.values()), len(data.missing))
    return data


def jaccard(a: set[str], b: set[str]) -> float | None:
    """|a ∩ b| / |a ∪ b|, or None when both are empty."""
    u = a | b
    return len(a & b) / len(u) if u else None


def filter_overlaps(filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pairs of filter jobs that read the same generate job: Jaccard of their dropped problem ids."""
    out = []
    for i, f in enumerate(filters):
        for g in filters[i + 1:]:
            if f["generate"] != g["generate"] or not f["stats"] or not g["stats"]:
                continue
            a = set((f["stats"].get("dropped_ids") or {}))
            b = set((g["stats"].get("dropped_ids") or {}))
            if not a or not b:
                continue
            out.append({"a": f["name"], "b": g["name"], "dropped_a": len(a), "dropped_b": len(b),
                        "both": len(a & b), "jaccard": jaccard(a, b)})
    return out
