"""Specs -> a plan: content-addressed jobs (generate, filter, pretrain, train, eval, analyze, report).

Each condition is cut into per-stage job configs; a job's id hashes its config, its stage version and its
inputs' ids, so conditions (and specs) that need the same work share one job. Training lengths of a
length-independent schedule become checkpoints of one run (see `TrainConfig.length_independent`).

    plan = build_plan(["experiments/smoke.yaml"])
    for job in plan.jobs.values(): print(job.stage, job.id, job.outdir)
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from repro import paths
from repro.config import (
    AnalyzeJob,
    BenchmarkConfig,
    Condition,
    FilterJob,
    GenerateJob,
    PretrainJob,
    ReportJob,
)
from repro.identity import job_id
from repro.resources import resources_for
from repro.spec import NamedCondition, Spec, load
from repro.stages import STAGE_VERSIONS

STAGE_ORDER = ("generate", "filter", "pretrain", "train", "eval", "analyze", "report")


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
        jid = job_id(stage, STAGE_VERSIONS[stage], config, inputs)
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


def _task_args(b: BenchmarkConfig, cond: Condition) -> tuple[dict[str, Any], int]:
    same = b.task == cond.data.task
    args = b.task_args if b.task_args is not None else (dict(cond.data.task_args) if same else {})
    seed = b.seed if b.seed is not None else (cond.data.seed if same else 0)
    return args, seed


def _eval_name(benches: list[BenchmarkConfig]) -> str:
    """An eval job's name: its benchmarks joined by '+', or the first and a count when that is long."""
    joined = "+".join(bn.name for bn in benches)
    return joined if len(joined) <= 40 else f"{benches[0].name}+{len(benches) - 1}more"


def checkpoints_of(cond: Condition) -> list[int]:
    t = cond.train
    return sorted({s for s in t.checkpoints if s <= t.steps} | {t.steps})


def _arch_name(c: Condition) -> str:
    if c.model.id:
        return Path(c.model.id).name
    return c.model.arch if isinstance(c.model.arch, str) else "custom"


def _plan_spec(b: _Builder, spec: Spec, file: str, conds: list[NamedCondition]) -> SpecPlan:
    notes: list[str] = []
    # Group conditions whose training differs only in length, when the schedule allows it.
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

    rows: list[dict[str, Any]] = []
    spec_jobs: dict[str, None] = {}
    for nc in conds:
        c, label = nc.condition, f"{spec.name}/{nc.name}"
        d = c.data
        res_key = (id(c.resources), id(c.model))
        res = lambda stage: b.resources(stage, c, res_key)  # noqa: E731
        gen = b.cached(("generate", id(d)) + res_key, label, lambda: (
            "generate", f"{d.task}-{d.teacher.name}",
            GenerateJob(task=d.task, task_args=d.task_args, n=d.n, seed=d.seed, teacher=d.teacher).model_dump(mode="json"),
            {}, res("generate")))
        inputs = {"traces": gen}
        if d.reference_teacher:
            rt = d.reference_teacher
            inputs["reference"] = b.cached(("reference", id(d)) + res_key, label, lambda: (
                "generate", f"{d.task}-{rt.name}",
                GenerateJob(task=d.task, task_args=d.task_args, n=d.n, seed=d.seed, teacher=rt).model_dump(mode="json"),
                {}, res("generate")))
        filt = b.cached(("filter", id(c.filters), tuple(inputs.values())) + res_key, label, lambda: (
            "filter", f"{d.teacher.name}-{'+'.join(f.name for f in c.filters) or 'none'}",
            FilterJob(filters=c.filters, seed=d.seed).model_dump(mode="json"), dict(inputs), res("filter")))
        train_inputs = {"data": filt}
        if c.model.source == "pretrain":
            m = c.model
            assert m.pretrain is not None
            train_inputs["base"] = b.cached(("pretrain", id(m)) + res_key, label, lambda: (
                "pretrain", f"base-{_arch_name(c)}",
                PretrainJob(arch=m.arch, tokenizer=m.tokenizer, pretrain=m.pretrain, init_seed=m.init_seed).model_dump(mode="json"),
                {}, res("pretrain")))
        total, ckpts = run_of[nc.name]
        train = b.cached(("train", id(c.model), train_key[id(c.train)], total, tuple(ckpts), tuple(train_inputs.values())) + res_key, label, lambda: (
            "train", f"sft-{_arch_name(c)}-{d.teacher.name}",
            {"model": b.dump(c.model), "train": {**b.dump(c.train), "steps": total, "checkpoints": ckpts}},
            dict(train_inputs), res("train")))
        steps = [s for s in (c.eval.steps if c.eval.steps is not None else checkpoints_of(c)) if s in ckpts and s <= c.train.steps]
        evals = []
        if c.eval.benchmarks:
            for s in steps:  # one job per checkpoint: the model is loaded once for every benchmark
                def make_eval(s: int = s) -> tuple[str, str, dict[str, Any], dict[str, str], dict[str, Any]]:
                    benches = []
                    for bench in c.eval.benchmarks:
                        key = ("bench", id(bench), id(d))
                        if key not in b.dumps:
                            args, seed = _task_args(bench, c)
                            b.dumps[key] = bench.model_copy(update={"task_args": args, "seed": seed}).model_dump(mode="json")
                        benches.append(b.dumps[key])
                    cfg = {"benchmarks": benches, "sampling": b.dump(c.eval.sampling), "step": s,
                           "batch_size": c.eval.batch_size}
                    return "eval", f"{_eval_name(c.eval.benchmarks)}-step{s}", cfg, {"model": train}, res("eval")
                eid = b.cached(("eval", train, id(c.eval), id(d), s) + res_key, label, make_eval)
                evals += [{"benchmark": bench.name, "role": bench.role, "step": s, "id": eid} for bench in c.eval.benchmarks]
        analyses = []
        final = c.train.steps
        for a in c.analyses:
            ainputs = {"model": train, "data": filt}
            benches: list[str] = []
            if a.name == "steps":
                final_evals = [e for e in evals if e["step"] == final]
                if final_evals:
                    ainputs["eval"] = final_evals[0]["id"]
                    benches = [e["benchmark"] for e in final_evals]
            if a.name == "token_loss" and "reference" in inputs:
                ainputs["reference"] = inputs["reference"]
            if a.name == "logit_lens":
                ainputs["generate"] = gen
            cfg = AnalyzeJob(analysis=a, step=final, benchmarks=benches).model_dump(mode="json")
            aid = b.add("analyze", f"{a.name}-step{final}", cfg, ainputs, res("analyze"), label)
            analyses.append({"name": a.name, "id": aid, "step": final})
        rows.append({"name": nc.name, "labels": nc.labels, "generate": gen, "filter": filt, "train": train,
                     "pretrain": train_inputs.get("base"), "reference": inputs.get("reference"),
                     "steps": c.train.steps, "evals": evals, "analyses": analyses})
        for jid in (gen, inputs.get("reference"), filt, train_inputs.get("base"), train, *[e["id"] for e in evals], *[a["id"] for a in analyses]):
            if jid:
                spec_jobs[jid] = None
    rep_cfg = ReportJob(spec=spec.name, spec_file=file, title=spec.title or spec.name, hypothesis=spec.hypothesis, conditions=rows,
                        claims=[c.model_dump(mode="json") for c in spec.claims])
    rep = b.add("report", spec.name, rep_cfg.model_dump(mode="json"), {j: j for j in spec_jobs}, resources_for("report", None), spec.name)
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
