"""Trace filters and transforms between the teacher and SFT: a registry of named, seeded, pure functions.

Each filter has a strict pydantic `Args` and `apply(traces, args, ctx) -> FilterOutcome` (kept traces in
input order, a reason for every dropped one, optional per-trace scores). Filters never mutate their input:
transforms (strip_cot, delete_steps, label_noise) return modified copies. Randomness comes from
`random.Random(sha256(seed, filter name))`, so the same inputs, args and seed give identical output.

Filters: verified, strip_cot, branching (study A proxy 2), step_ratio (proxy 1), length, length_matched
(the length baseline with the branching filter's keep rate), quantile, dedupe, subsample, delete_steps
(study A ablation), label_noise (study C second-hop noise), one_correct (study B: one random correct
sample per problem).

Traces are keyed by `problem_id`; a repeated id gets `#2`, `#3`, ... in input order (`trace_keys`).

    ctx = FilterContext(seed=0, reference={t.problem_id: t for t in convergent_traces})
    kept, stats = apply_chain(traces, [("verified", {}), ("branching", {"keep": 0.9})], ctx)
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Literal, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

from repro.analysis.steps import KeywordTyper, branching_score, segment
from repro.grading import Grader, shared_grader
from repro.records import Problem, Step, Trace
from repro.registry import Registry


class FilterArgs(BaseModel):
    """Base of every filter's arguments: strict, frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass
class FilterOutcome:
    """What a filter did: `kept` (input order), `dropped` {trace key: reason}, optional `scores`."""

    kept: list[Trace]
    dropped: dict[str, str] = field(default_factory=dict)
    scores: dict[str, float] = field(default_factory=dict)


@dataclass
class FilterContext:
    """What filters may use besides the traces: the seed, the reference teacher's traces by problem id
    (proxy 1), the problems by id (for task scorers; else rebuilt from the trace), and a Grader created
    on first use (the process-wide shared one unless `grader_factory` says otherwise)."""

    seed: int = 0
    reference: Mapping[str, Trace] | None = None
    problems: Mapping[str, Problem] | None = None
    grader_factory: Callable[[], Grader] = shared_grader
    _grader: Grader | None = field(default=None, init=False, repr=False)

    @property
    def grader(self) -> Grader:
        if self._grader is None:
            self._grader = self.grader_factory()
        return self._grader

    def rng(self, name: str) -> random.Random:
        digest = hashlib.sha256(f"{self.seed}|{name}".encode()).digest()
        return random.Random(int.from_bytes(digest[:8], "big"))

    def problem(self, t: Trace) -> Problem:
        if self.problems and t.problem_id in self.problems:
            return self.problems[t.problem_id]
        return Problem(id=t.problem_id, task=t.task, split="train", prompt=t.prompt, answer=t.gold, meta=t.meta)


@dataclass(frozen=True)
class Filter:
    """A registered filter: its name, its Args model and the function that applies it."""

    name: str
    Args: type[FilterArgs]
    fn: Callable[[list[Trace], Any, FilterContext], FilterOutcome]

    def apply(self, traces: list[Trace], args: FilterArgs | Mapping[str, Any] | None,
              ctx: FilterContext) -> FilterOutcome:
        a = args if isinstance(args, self.Args) else self.Args.model_validate(dict(args or {}))
        out = self.fn(list(traces), a, ctx)
        if len(out.kept) + len(out.dropped) != len(traces):
            raise AssertionError(f"filter {self.name}: kept {len(out.kept)} + dropped {len(out.dropped)} "
                                 f"!= input {len(traces)}")
        return out


FILTERS: Registry[Filter] = Registry("filter", group="repro.filters")


def register_filter(name: str, args: type[FilterArgs]) -> Callable[[Callable], Callable]:
    """Decorator: register `fn(traces, args, ctx) -> FilterOutcome` as filter `name` with `args` as its
    Args model (also what plugins use: `@register_filter("mine", MyArgs)` in a module of the
    `repro.filters` entry-point group)."""
    def deco(fn: Callable) -> Callable:
        FILTERS.register(name)(Filter(name, args, fn))
        return fn
    return deco


def get_filter(name: str) -> Filter:
    return FILTERS.get(name)


def trace_keys(traces: Sequence[Trace]) -> list[str]:
    """One unique key per trace: its problem_id, with `#2`, `#3`, ... for repeats, in input order."""
    seen: Counter[str] = Counter()
    keys = []
    for t in traces:
        seen[t.problem_id] += 1
        keys.append(t.problem_id if seen[t.problem_id] == 1 else f"{t.problem_id}#{seen[t.problem_id]}")
    return keys


def _split(traces: list[Trace], reasons: list[str | None], scores: Sequence[float] | None = None) -> FilterOutcome:
    """Outcome from one reason per trace (None = keep)."""
    keys = trace_keys(traces)
    return FilterOutcome(
        kept=[t for t, r in zip(traces, reasons) if r is None],
        dropped={k: r for k, r in zip(keys, reasons) if r is not None},
        scores=dict(zip(keys, scores)) if scores is not None else {},
    )


def _lowest(scores: Sequence[float], keep: float, side: str, rng: random.Random) -> set[int]:
    """Indices of the `keep` share with the lowest (side="bottom") or highest scores; random tie-break."""
    ties = [rng.random() for _ in scores]
    sign = 1.0 if side == "bottom" else -1.0
    order = sorted(range(len(scores)), key=lambda i: (sign * scores[i], ties[i]))
    return set(order[: int(keep * len(scores) + 0.5)])


def _cut_reason(what: str, keep: float, side: str) -> str:
    return f"{what} in the {'top' if side == 'bottom' else 'bottom'} {1 - keep:.0%}"


def _keep_share(traces: list[Trace], scores: list[float], keep: float, side: str, rng: random.Random,
                what: str) -> FilterOutcome:
    """Keep the `keep` share of traces with the lowest (or highest) scores."""
    kept = _lowest(scores, keep, side, rng)
    reason = _cut_reason(what, keep, side)
    return _split(traces, [None if i in kept else reason for i in range(len(traces))], scores)


def _steps_of(t: Trace) -> list[Step]:
    """The trace's typed steps, or its paragraphs typed by keyword when it has none."""
    if t.steps:
        return t.steps
    typer = KeywordTyper()
    return [Step(typer.type(s), s) for s in segment(t.completion)]


def _length(t: Trace, unit: str) -> int:
    return len(t.completion) if unit == "chars" else len(t.completion.split())


def _metric(t: Trace, metric: str, typer: KeywordTyper) -> float:
    if metric in ("chars", "tokens"):
        return float(_length(t, metric))
    if metric == "steps":
        return float(len(_steps_of(t)))
    return branching_score(t.completion, typer)


KeepShare = Field(0.9, gt=0.0, le=1.0, description="Share of traces kept.")
Unit = Literal["chars", "tokens"]


# -------------------------------------------------------------------------------------------- filters


class VerifiedArgs(FilterArgs):
    math_tasks: list[str] = Field(["countdown", "modarith"], description="Tasks whose boxed answer is also "
                                  "checked against gold with math-verify.")
    exact_tasks: list[str] = Field(["twohop"], description="Tasks whose trace answer must equal gold exactly.")


@register_filter("verified", VerifiedArgs)
def verified(traces: list[Trace], args: VerifiedArgs, ctx: FilterContext) -> FilterOutcome:
    """Keep a trace iff its task's scorer accepts its completion (plus math-verify / exact checks)."""
    from repro.tasks import get_task

    reasons: list[str | None] = [None] * len(traces)
    by_task: dict[str, list[int]] = {}
    for i, t in enumerate(traces):
        by_task.setdefault(t.task, []).append(i)
    for name, idx in by_task.items():
        task = get_task(name)
        probs, comps = [ctx.problem(traces[i]) for i in idx], [traces[i].completion for i in idx]
        many = getattr(task, "score_many", None)
        scores = many(probs, comps) if many else [task.score(p, c) for p, c in zip(probs, comps)]
        for i, sc in zip(idx, scores):
            reasons[i] = None if sc.correct else "wrong (task scorer)"
    math = [i for i, t in enumerate(traces) if t.task in args.math_tasks and reasons[i] is None]
    for i, r in zip(math, ctx.grader.grade_many([(traces[i].gold, traces[i].completion) for i in math])):
        if not r.correct:
            reasons[i] = "grading timed out" if r.timed_out else "wrong (math-verify)"
    for i, t in enumerate(traces):
        if reasons[i] is None and t.task in args.exact_tasks and t.answer.strip() != t.gold.strip():
            reasons[i] = "answer != gold"
    return _split(traces, reasons)


class NoArgs(FilterArgs):
    """No arguments."""


@register_filter("strip_cot", NoArgs)
def strip_cot(traces: list[Trace], args: NoArgs, ctx: FilterContext) -> FilterOutcome:
    """No-CoT variant: the completion becomes the last Conclude step alone."""
    kept, reasons = [], []
    for t in traces:
        steps = _steps_of(t)
        final = next((s for s in reversed(steps) if s.type == "Conclude"), None)
        reasons.append(None if final else ("no steps" if not steps else "no Conclude step"))
        if final:
            kept.append(dataclasses.replace(t, completion=final.text, steps=[Step(final.type, final.text)],
                                            meta={**t.meta, "variant": "no_cot"}))
    out = _split(traces, reasons)
    out.kept = kept
    return out


class BranchingArgs(FilterArgs):
    keep: float = KeepShare
    typer: KeywordTyper = Field(default_factory=KeywordTyper, description="Keyword typer of the text's steps.")
    source: Literal["text", "labels"] = Field("text", description="Score the text with the typer, or the "
                                              "traces' own step labels (Propose share).")


@register_filter("branching", BranchingArgs)
def branching(traces: list[Trace], args: BranchingArgs, ctx: FilterContext) -> FilterOutcome:
    """Study A proxy 2: keep the `keep` share of traces with the lowest share of Propose steps."""
    if args.source == "labels":
        scores = [sum(s.type == "Propose" for s in t.steps) / len(t.steps) if t.steps else 0.0 for t in traces]
    else:
        scores = [branching_score(t.completion, args.typer) for t in traces]
    return _keep_share(traces, scores, args.keep, "bottom", ctx.rng("branching"), "branching score")


class StepRatioArgs(FilterArgs):
    keep: float = KeepShare


@register_filter("step_ratio", StepRatioArgs)
def step_ratio(traces: list[Trace], args: StepRatioArgs, ctx: FilterContext) -> FilterOutcome:
    """Study A proxy 1: steps(trace) / steps(reference trace of the same problem); keep the lowest
    `keep` share of the traces that have a reference; drop the others."""
    ref = ctx.reference or {}
    has = [i for i, t in enumerate(traces) if t.problem_id in ref and _steps_of(ref[t.problem_id])]
    scores = [len(_steps_of(traces[i])) / len(_steps_of(ref[traces[i].problem_id])) for i in has]
    kept = {has[j] for j in _lowest(scores, args.keep, "bottom", ctx.rng("step_ratio"))}
    reasons: list[str | None] = ["no reference trace"] * len(traces)
    for i in has:
        reasons[i] = None if i in kept else _cut_reason("step ratio", args.keep, "bottom")
    out = _split(traces, reasons)
    keys = trace_keys(traces)
    out.scores = {keys[i]: sc for i, sc in zip(has, scores)}
    return out


class LengthArgs(FilterArgs):
    unit: Unit = Field("chars", description="Length in characters or whitespace tokens of the completion.")
    min: int = Field(0, ge=0, description="Shortest length kept.")
    max: int | None = Field(None, ge=0, description="Longest length kept (None = no limit).")


@register_filter("length", LengthArgs)
def length(traces: list[Trace], args: LengthArgs, ctx: FilterContext) -> FilterOutcome:
    """Keep traces whose completion length lies in [min, max]."""
    lens = [_length(t, args.unit) for t in traces]
    reasons = ["shorter than min" if n < args.min else "longer than max" if args.max is not None and n > args.max
               else None for n in lens]
    return _split(traces, reasons, [float(n) for n in lens])


class LengthMatchedArgs(FilterArgs):
    keep: float = KeepShare
    unit: Unit = Field("chars", description="Length in characters or whitespace tokens of the completion.")


@register_filter("length_matched", LengthMatchedArgs)
def length_matched(traces: list[Trace], args: LengthMatchedArgs, ctx: FilterContext) -> FilterOutcome:
    """Length baseline: keep the shortest `keep` share (use the branching filter's keep rate)."""
    scores = [float(_length(t, args.unit)) for t in traces]
    return _keep_share(traces, scores, args.keep, "bottom", ctx.rng("length_matched"), "length")


class QuantileArgs(FilterArgs):
    metric: Literal["chars", "tokens", "steps", "branching"] = Field("chars", description="What to rank by.")
    keep: float = KeepShare
    side: Literal["bottom", "top"] = Field("bottom", description="Keep the lowest or the highest values.")
    typer: KeywordTyper = Field(default_factory=KeywordTyper, description="Typer for metric=branching.")


@register_filter("quantile", QuantileArgs)
def quantile(traces: list[Trace], args: QuantileArgs, ctx: FilterContext) -> FilterOutcome:
    """Keep the bottom (or top) `keep` share by a named metric."""
    scores = [_metric(t, args.metric, args.typer) for t in traces]
    return _keep_share(traces, scores, args.keep, args.side, ctx.rng("quantile"), args.metric)


@register_filter("dedupe", NoArgs)
def dedupe(traces: list[Trace], args: NoArgs, ctx: FilterContext) -> FilterOutcome:
    """Drop traces whose (prompt, completion) already appeared earlier."""
    seen: set[tuple[str, str]] = set()
    reasons: list[str | None] = []
    for t in traces:
        reasons.append("duplicate" if (t.prompt, t.completion) in seen else None)
        seen.add((t.prompt, t.completion))
    return _split(traces, reasons)


class SubsampleArgs(FilterArgs):
    n: int = Field(1000, ge=0, description="Number of traces kept (all if there are fewer).")


@register_filter("subsample", SubsampleArgs)
def subsample(traces: list[Trace], args: SubsampleArgs, ctx: FilterContext) -> FilterOutcome:
    """Keep a seeded random sample of n traces, in input order."""
    chosen = set(ctx.rng("subsample").sample(range(len(traces)), min(args.n, len(traces))))
    return _split(traces, [None if i in chosen else "not sampled" for i in range(len(traces))])


class DeleteStepsArgs(FilterArgs):
    frac: float = Field(0.1, ge=0.0, le=1.0, description="Share of the deletable steps (all traces pooled) "
                        "deleted at random.")
    protect: list[str] = Field(["Conclude"], description="Step types never deleted (the last step never is).")


@register_filter("delete_steps", DeleteStepsArgs)
def delete_steps(traces: list[Trace], args: DeleteStepsArgs, ctx: FilterContext) -> FilterOutcome:
    """Study A ablation: delete round(frac x deletable steps) steps chosen at random over all traces
    (deletable = not the last step, not a protected type); rebuild completions. Nothing is dropped."""
    steps = [_steps_of(t) for t in traces]
    pool = [(i, j) for i, ss in enumerate(steps) for j, s in enumerate(ss[:-1]) if s.type not in args.protect]
    gone = set(ctx.rng("delete_steps").sample(pool, int(args.frac * len(pool) + 0.5)))
    kept = []
    for i, (t, ss) in enumerate(zip(traces, steps)):
        new = [Step(s.type, s.text) for j, s in enumerate(ss) if (i, j) not in gone]
        kept.append(dataclasses.replace(t, steps=new, completion="\n\n".join(s.text for s in new),
                                        meta={**t.meta, "deleted_steps": len(ss) - len(new)}))
    return FilterOutcome(kept=kept)


class LabelNoiseArgs(FilterArgs):
    xi: float = Field(0.1, ge=0.0, le=1.0, description="Share of the eligible two-hop traces corrupted.")
    where: Literal["t", "b", "both"] = Field("t", description="Corrupt the tail t, the bridge b, or both.")
    n_entities: int | None = Field(None, ge=2, description="Entity count (tokens e0..e{N-1}); None = "
                                   "the problem's meta['n_entities'].")


def _token_re(tok: str) -> re.Pattern[str]:
    return re.compile(r"(?<!\S)" + re.escape(tok) + r"(?!\S)")


def _swap_token(text: str, old: str, new: str, last: bool) -> str:
    """Replace the first (or last) whitespace-delimited occurrence of token `old` by `new`."""
    hits = list(_token_re(old).finditer(text))
    if not hits:
        return text
    m = hits[-1] if last else hits[0]
    return text[: m.start()] + new + text[m.end() :]


def _corrupt(t: Trace, meta: Mapping[str, Any], where: str, n: int, rng: random.Random) -> Trace:
    changes, completion, steps, answer = {}, t.completion, [Step(s.type, s.text) for s in t.steps], t.answer
    for which in (["b", "t"] if where == "both" else [where]):
        old = meta["bridge"] if which == "b" else t.answer
        k = rng.randrange(n - 1)
        new = f"e{k if k < int(old[1:]) else k + 1}"  # uniform over the other entities
        completion = _swap_token(completion, old, new, last=which == "t")
        hits = [s for s in steps if _token_re(old).search(s.text)]
        if hits:
            s = hits[-1] if which == "t" else hits[0]
            s.text = _swap_token(s.text, old, new, last=which == "t")
        answer = new if which == "t" else answer
        changes[which] = [old, new]
    return dataclasses.replace(t, completion=completion, steps=steps, answer=answer,
                               meta={**t.meta, "label_noise": changes})


@register_filter("label_noise", LabelNoiseArgs)
def label_noise(traces: list[Trace], args: LabelNoiseArgs, ctx: FilterContext) -> FilterOutcome:
    """Study C noise: in round(xi x eligible) two-hop traces, replace the bridge and/or tail entity token
    (in completion, steps and answer) by a uniformly drawn other entity. Eligible: two-hop traces whose
    completion holds the targeted token(s) (a no-CoT completion has no bridge). Gold stays clean."""
    metas = [ctx.problem(t).meta for t in traces]

    def eligible(t: Trace, m: Mapping[str, Any]) -> bool:
        toks = set(t.completion.split())
        need_b, need_t = args.where in ("b", "both"), args.where in ("t", "both")
        return (m.get("kind") == "twohop" and (not need_b or m.get("bridge") in toks)
                and (not need_t or t.answer in toks))

    pool = [i for i, (t, m) in enumerate(zip(traces, metas)) if eligible(t, m)]
    rng = ctx.rng("label_noise")
    chosen = sorted(rng.sample(pool, int(args.xi * len(pool) + 0.5)))
    kept = list(traces)
    for i in chosen:
        n = args.n_entities or metas[i].get("n_entities")
        if not n:
            raise ValueError("label_noise needs n_entities (args or problem meta)")
        kept[i] = _corrupt(traces[i], metas[i], args.where, int(n), rng)
    return FilterOutcome(kept=kept)


# --------------------------------------------------------------------------------------------- chains


class OneCorrectArgs(FilterArgs):
    use_meta: bool = Field(True, description="Trust a trace's meta.correct (set by the llm teacher, graded on "
                           "its answer) where present; otherwise grade with the task's scorer.")


@register_filter("one_correct", OneCorrectArgs)
def one_correct(traces: list[Trace], args: OneCorrectArgs, ctx: FilterContext) -> FilterOutcome:
    """Study B's selection: of each problem's samples keep one correct response, chosen at random (seeded);
    a problem without a correct sample keeps nothing."""
    graded = [i for i, t in enumerate(traces) if not (args.use_meta and "correct" in t.meta)]
    correct = [bool(t.meta.get("correct")) for t in traces]
    if graded:
        sub = verified([traces[i] for i in graded], VerifiedArgs(math_tasks=[], exact_tasks=[]), ctx)
        kept_ids = {id(t) for t in sub.kept}
        for i in graded:
            correct[i] = id(traces[i]) in kept_ids
    rng = ctx.rng("one_correct")
    by_problem: dict[str, list[int]] = {}
    for i, t in enumerate(traces):
        by_problem.setdefault(t.problem_id, []).append(i)
    reasons: list[str | None] = [None] * len(traces)
    for pid in sorted(by_problem):
        idx = by_problem[pid]
        good = [i for i in idx if correct[i]]
        keep = rng.choice(good) if good else None
        for i in idx:
            if i != keep:
                reasons[i] = "wrong" if not correct[i] else "another correct sample kept"
    return _split(traces, reasons)


def apply_chain(traces: Sequence[Trace], specs: Sequence[tuple[str, Any] | Mapping[str, Any]],
                ctx: FilterContext) -> tuple[list[Trace], dict[str, Any]]:
    """Apply filters in order. `specs`: (name, args) pairs or {"name", "args"} dicts. Returns the kept
    traces and stats {input, kept, dropped, reasons {"filter: reason": n}, dropped_ids {key: "filter:
    reason"}, steps [{filter, input, kept, dropped}]}; keys are those of the chain's input."""
    cur, keys = list(traces), trace_keys(traces)
    dropped_ids: dict[str, str] = {}
    steps = []
    for spec in specs:
        name, args = (spec["name"], spec.get("args")) if isinstance(spec, Mapping) else spec
        out = get_filter(name).apply(cur, args, ctx)
        local = {k: i for i, k in enumerate(trace_keys(cur))}
        gone = {local[k] for k in out.dropped}
        for k, reason in out.dropped.items():
            dropped_ids[keys[local[k]]] = f"{name}: {reason}"
        steps.append({"filter": name, "input": len(cur), "kept": len(out.kept), "dropped": len(gone)})
        keys = [k for i, k in enumerate(keys) if i not in gone]
        cur = out.kept
    stats = {"input": len(traces), "kept": len(cur), "dropped": len(traces) - len(cur),
             "reasons": dict(Counter(dropped_ids.values())), "dropped_ids": dropped_ids, "steps": steps}
    assert stats["kept"] + len(dropped_ids) == stats["input"]
    return cur, stats


def overlap(dropped_a: set[str], dropped_b: set[str]) -> dict[str, float]:
    """How much two filters' dropped sets agree: sizes, intersection, union, Jaccard."""
    a, b = set(dropped_a), set(dropped_b)
    union = len(a | b)
    return {"a": len(a), "b": len(b), "both": len(a & b), "only_a": len(a - b), "only_b": len(b - a),
            "union": union, "jaccard": len(a & b) / union if union else 1.0}
