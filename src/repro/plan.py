"""Specs -> a plan: content-addressed jobs of every stage in the stage registry (repro.stages).

Each condition is cut into per-stage job configs by the stages' planners (`plan(cp)` in each stage
module, called in registry order with a `CondPlan`; the report stage plans once per spec); a job's id
hashes its config, its stage version and its inputs' ids, so conditions (and specs) that need the same
work share one job. Training lengths of a length-independent schedule become checkpoints of one run
(see `TrainConfig.length_independent`).

    plan = build_plan(["experiments/smoke.yaml"])
    for job in plan.jobs.values(): print(job.stage, job.id, job.outdir)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from repro import paths
from repro.config import Condition
from repro.identity import job_id
from repro.resources import resources_for
from repro.spec import NamedCondition, Spec, load
from repro.stages import STAGE_NAMES, STAGES, get_stage

STAGE_ORDER = STAGE_NAMES  # plan, engines and reports list stages in the registry's order


@dataclass
class Job:
    """One unit of work: a stage applied to one config and the outputs of its input jobs."""

    id: str
    stage: str
    name: str
    config: dict[str, Any]
    inputs: dict[str, str]
    resources: dict[str, Any]
    conditions: list[str] = field(default_factory=list)

    @property
    def deps(self) -> list[str]:
        return list(dict.fromkeys(self.inputs.values()))

    @property
    def dirname(self) -> str:
        return f"{self.name}-{self.id}"

    @property
    def outdir(self) -> Path:
        return paths.job_dir(self.stage, self.dirname)

    def done(self) -> bool:
        return paths.is_done(self.outdir)

    def to_json(self, with_state: bool = True) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "stage": self.stage,
            "name": self.name,
            "deps": self.deps,
            "inputs": self.inputs,
            "outdir": str(self.outdir),
            "config": self.config,
            "resources": self.resources,
            "conditions": self.conditions,
        }
        if with_state:
            d["state"] = "done" if self.done() else "todo"
        return d


@dataclass
class SpecPlan:
    """What one spec contributes: its conditions, notes on training length, its report job."""

    spec: Spec
    file: str
    conditions: list[NamedCondition]
    report_id: str
    notes: list[str]
    job_ids: list[str]


@dataclass
class Plan:
    jobs: dict[str, Job]
    specs: list[SpecPlan]

    def by_stage(self, stage: str) -> list[Job]:
        return [j for j in self.jobs.values() if j.stage == stage]

    def job_by_dirname(self, dirname: str) -> Job:
        return self.jobs[dirname.rsplit("-", 1)[1]]


def _slug(s: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.+-]+", "_", s).strip("_")[:60] or "x"


class _Builder:
    """Adds jobs, deduplicating by id. Configs are dumped and hashed once per distinct (stage, section
    objects, inputs): conditions share interned section objects (see spec._resolve)."""

    def __init__(self) -> None:
        self.jobs: dict[str, Job] = {}
        self.memo: dict[tuple[Any, ...], str] = {}
        self.dumps: dict[Any, Any] = {}

    def dump(self, model: Any) -> dict[str, Any]:
        """model_dump(mode="json") of a (shared, interned) section object, once per object."""
        key = ("dump", id(model))
        if key not in self.dumps:
            self.dumps[key] = (model, model.model_dump(mode="json"))
        return self.dumps[key][1]

    def resources(self, stage: str, cond: Condition, key: tuple[Any, ...]) -> dict[str, Any]:
        k = ("res", stage) + key
        if k not in self.dumps:
            self.dumps[k] = resources_for(stage, cond)
        return self.dumps[k]

    def add(self, stage: str, name: str, config: dict[str, Any], inputs: dict[str, str], resources: dict[str, Any], label: str) -> str:
        jid = job_id(stage, get_stage(stage).version, config, inputs)
        job = self.jobs.get(jid)
        if job is None:
            job = self.jobs[jid] = Job(jid, stage, _slug(name), config, inputs, resources)
        if not job.conditions or job.conditions[-1] != label:
            job.conditions.append(label)
        return jid

    def cached(self, key: tuple[Any, ...], label: str, make: Callable[[], tuple[str, str, dict[str, Any], dict[str, str], dict[str, Any]]]) -> str:
        """The job for `key` (made once by `make` -> (stage, name, config, inputs, resources))."""
        jid = self.memo.get(key)
        if jid is None:
            jid = self.memo[key] = self.add(*make(), label)
        else:
            job = self.jobs[jid]
            if job.conditions[-1] != label:
                job.conditions.append(label)
        return jid


def checkpoints_of(cond: Condition) -> list[int]:
    t = cond.train
    return sorted({s for s in t.checkpoints if s <= t.steps} | {t.steps})


def arch_name(c: Condition) -> str:
    if c.model.id:
        return Path(c.model.id).name
    return c.model.arch if isinstance(c.model.arch, str) else "custom"


@dataclass
class CondPlan:
    """One condition being planned: the planners of the stages (in registry order) each add their jobs
    and record them here, so later stages find their inputs (`ids` by role: generate, reference, filter,
    pretrain, train; `evals` and `analyses` rows)."""

    b: _Builder
    spec: Spec
    nc: NamedCondition
    run: tuple[int, list[int]]  # the condition's training run: total steps, saved checkpoints
    train_key: str  # the train section without steps/checkpoints (conditions sharing a run share it)
    ids: dict[str, str] = field(default_factory=dict)
    evals: list[dict[str, Any]] = field(default_factory=list)
    analyses: list[dict[str, Any]] = field(default_factory=list)

    @property
    def cond(self) -> Condition:
        return self.nc.condition

    @property
    def label(self) -> str:
        return f"{self.spec.name}/{self.nc.name}"

    @property
    def res_key(self) -> tuple[Any, ...]:
        return (id(self.cond.resources), id(self.cond.model))

    def res(self, stage: str) -> dict[str, Any]:
        return self.b.resources(stage, self.cond, self.res_key)

    def cached(self, key: tuple[Any, ...], make: Callable[[], tuple[str, str, dict[str, Any], dict[str, str], dict[str, Any]]]) -> str:
        return self.b.cached(key + self.res_key, self.label, make)

    def add(self, stage: str, name: str, config: dict[str, Any], inputs: dict[str, str]) -> str:
        return self.b.add(stage, name, config, inputs, self.res(stage), self.label)


def _training_runs(conds: list[NamedCondition]) -> tuple[dict[str, tuple[int, list[int]]], dict[int, str], list[str]]:
    """Group conditions whose training differs only in length, when the schedule allows it: each group is
    one run with the union of checkpoints. Returns the run of each condition, the train section key of
    each train section object, and notes for `repro plan`."""
    notes: list[str] = []
    groups: dict[Any, list[NamedCondition]] = {}
    train_key: dict[int, str] = {}
    for nc in conds:
        c = nc.condition
        t = c.train
        if id(t) not in train_key:
            train_key[id(t)] = t.model_dump_json(exclude={"steps", "checkpoints"})
        indep, why = t.length_independent()
        key = (id(c.data), id(c.filters), id(c.model), train_key[id(t)]) if indep else ("solo", nc.name)
        groups.setdefault(key, []).append(nc)
        if why not in notes:
            notes.append(why)
    run_of: dict[str, tuple[int, list[int]]] = {}
    merged = []
    for members in groups.values():
        total = max(m.condition.train.steps for m in members)
        ckpts = sorted({s for m in members for s in checkpoints_of(m.condition)})
        for m in members:
            run_of[m.name] = (total, ckpts)
        if len(members) > 1:
            merged.append(f"{len(members)} conditions ({', '.join(m.name for m in members[:4])}{', ...' if len(members) > 4 else ''}) share one training run of {total} steps, checkpoints {ckpts}")
    if merged:
        notes.append(f"{len(conds)} conditions need {len(groups)} training runs; e.g. {merged[0]}")
    return run_of, train_key, notes


ROLES = ("generate", "filter", "train", "pretrain", "reference")  # the job ids a report row names by role


def _plan_spec(b: _Builder, spec: Spec, file: str, conds: list[NamedCondition]) -> SpecPlan:
    run_of, train_key, notes = _training_runs(conds)
    rows: list[dict[str, Any]] = []
    spec_jobs: dict[str, None] = {}
    planners = [st.module.plan for st in STAGES if st.name != "report"]
    for nc in conds:
        cp = CondPlan(b, spec, nc, run_of[nc.name], train_key[id(nc.condition.train)])
        for plan_stage in planners:
            plan_stage(cp)
        rows.append({"name": nc.name, "labels": nc.labels, **{r: cp.ids.get(r) for r in ROLES},
                     "steps": nc.condition.train.steps, "evals": cp.evals, "analyses": cp.analyses})
        for jid in (*[cp.ids.get(r) for r in ("generate", "reference", "filter", "pretrain", "train")],
                    *[e["id"] for e in cp.evals], *[a["id"] for a in cp.analyses]):  # in pipeline order
            if jid:
                spec_jobs[jid] = None
    rep = get_stage("report").module.plan_spec(b, spec, file, rows, list(spec_jobs))
    return SpecPlan(spec, file, conds, rep, notes, [*spec_jobs, rep])


def build_plan(spec_files: list[str], sets: list[str] | None = None) -> Plan:
    """Load every spec (raising SpecError on any problem) and plan all their jobs together."""
    b = _Builder()
    specs: list[SpecPlan] = []
    seen_names: dict[str, str] = {}
    for f in spec_files:
        spec, conds = load(f, sets)
        if spec.name in seen_names:
            from repro.errors import spec_error

            raise spec_error(f, "name", f"spec name {spec.name!r} is also used by {seen_names[spec.name]}")
        seen_names[spec.name] = f
        specs.append(_plan_spec(b, spec, f, conds))
    return Plan(b.jobs, specs)
