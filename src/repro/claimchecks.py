"""Claim-check kinds: one strict, frozen pydantic model per kind, joined into a union discriminated by `kind`.

A spec's claim carries `check: {kind: ..., ...}`; `repro validate` checks it against the kind's model
(an unknown kind or key exits 2 naming the allowed kinds or keys) and checks that its selectors name the
spec's axes and values (`check_selectors`). The report (repro.report.claims) turns each kind into an
effect with a 95% bootstrap interval and a verdict. This module imports only pydantic, so loading a spec
stays light.

Conditions are picked by selectors `{axis: value}` or `{axis: [values]}` (`condition: name` for extra
named conditions, `seed: s1` for one replicate); every key must match, `{}` picks every condition.

    from repro.claimchecks import CHECKS, Greater
    CHECKS.get("greater") is Greater
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

from repro.registry import Registry

Value = Union[str, int, float]
Selector = dict[str, Union[Value, list[Value]]]
SEL_DOC = "Selector: {axis: value or [values]}; every key must match ({} = every condition)."

CHECKS: Registry[type["CheckArgs"]] = Registry("claim check")

EVAL_METRICS = ("accuracy", "mean_response_tokens", "finished_rate", "trapped_rate", "refusal_rate", "harm_score")
METRIC_DOC = (
    "What is compared: an eval metric (" + ", ".join(EVAL_METRICS) + ") averaged over the items of the benchmarks "
    "`role` names; final_loss (mean batch loss over the last 10% of logged steps); or an analysis number by "
    "dotted path: token_loss.tail_share, token_loss.key_token_loss, steps.train.mix.<Type>, "
    "steps.train.transitions.<A>.<B>, steps.outputs.<benchmark>.mix.<Type>, steps.outputs.<benchmark>.trapped_rate, "
    "logit_lens.<split>.resolved_layer."
)
PROPORTIONS = ("accuracy", "finished_rate", "trapped_rate", "refusal_rate")  # shares: shown unscaled
ANALYSES = ("token_loss", "steps", "logit_lens")


class CheckArgs(BaseModel):
    """Base of every check kind: strict and frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Pair(CheckArgs):
    """Two sides of a difference: mean(higher) - mean(lower)."""

    higher: Selector = Field(default_factory=dict, description="Conditions expected higher. " + SEL_DOC)
    lower: Selector = Field(default_factory=dict, description="Conditions expected lower. " + SEL_DOC)


class Measured(CheckArgs):
    """A number read per condition: metric, benchmark role and checkpoint."""

    metric: str = Field("accuracy", description=METRIC_DOC)
    role: str | None = Field(None, description="Benchmark role (id, ood, safety, probe) or a benchmark name; "
                             "None = every benchmark. Used by eval metrics.")
    step: Literal["final"] | int = Field("final", description="Checkpoint: 'final' (each condition's own last "
                                         "step) or a step number.")


@CHECKS.register("greater")
class Greater(Measured):
    """mean(higher) > mean(lower): the effect is their difference, from a paired bootstrap over the shared
    items (and seeds)."""

    kind: Literal["greater"] = Field("greater", description="Check kind.")
    higher: Selector = Field(default_factory=dict, description="Conditions expected higher. " + SEL_DOC)
    lower: Selector = Field(default_factory=dict, description="Conditions expected lower. " + SEL_DOC)
    higher_step: Literal["final"] | int | None = Field(None, description="Read the higher side at this step "
                                                       "instead of `step` (e.g. 0: the model before SFT).")
    lower_step: Literal["final"] | int | None = Field(None, description="Read the lower side at this step "
                                                      "instead of `step`.")


@CHECKS.register("gap_greater")
class GapGreater(Measured):
    """The gap a.higher - a.lower exceeds the gap b.higher - b.lower (e.g. an ablation hurts one teacher's
    student more than another's); the effect is the difference of the two gaps."""

    kind: Literal["gap_greater"] = Field(description="Check kind.")
    a: Pair = Field(description="The gap expected larger.")
    b: Pair = Field(description="The gap expected smaller.")


class Trend(Measured):
    """The metric against the number in an axis label (0.2 from 'xi0.2', 1.1 from '1.1M')."""

    axis: str = Field(description="Axis whose labels hold the numbers (x).")
    where: Selector = Field(default_factory=dict, description="Conditions on the trend. " + SEL_DOC)
    log_x: bool = Field(False, description="Regress on log10 of the axis numbers (e.g. model sizes).")


@CHECKS.register("increasing")
class Increasing(Trend):
    """The least-squares slope of the metric over the axis numbers is positive (bootstrap interval)."""

    kind: Literal["increasing"] = Field(description="Check kind.")


@CHECKS.register("decreasing")
class Decreasing(Trend):
    """The least-squares slope of the metric over the axis numbers is negative (bootstrap interval)."""

    kind: Literal["decreasing"] = Field(description="Check kind.")


@CHECKS.register("dip_recovery")
class DipRecovery(Measured):
    """The metric first falls below its step-0 value and then recovers: the dip (step 0 minus the minimum
    over intermediate steps) and the recovery (final minus that minimum) each get an interval; the curve is
    the mean over the selected conditions."""

    kind: Literal["dip_recovery"] = Field(description="Check kind.")
    where: Selector = Field(default_factory=dict, description="Conditions whose curves are averaged. " + SEL_DOC)
    early_max_step: int | None = Field(None, description="Look for the minimum only at steps <= this.")
    above_base: bool = Field(False, description="Also require the final value above step 0 (a third contrast).")


@CHECKS.register("layer_shallower")
class LayerShallower(CheckArgs):
    """The logit lens resolves the bridge at a shallower layer for `shallower` than for `deeper` (a split
    never resolved counts as one past the last layer); interval over seeds (no per-item ranks are stored)."""

    kind: Literal["layer_shallower"] = Field(description="Check kind.")
    split: str = Field("id", description="Logit-lens split: id or ood.")
    shallower: Selector = Field(default_factory=dict, description="Conditions expected shallower. " + SEL_DOC)
    deeper: Selector = Field(default_factory=dict, description="Conditions expected deeper. " + SEL_DOC)
    analysis: str = Field("logit_lens", description="Analysis whose summary holds the splits.")


@CHECKS.register("overlap_below")
class OverlapBelow(CheckArgs):
    """The Jaccard overlap of the problems that the filters of `a` and `b` dropped (same generate job) is
    below `threshold`; bootstrap over the generated problems. Usually a design check."""

    kind: Literal["overlap_below"] = Field(description="Check kind.")
    a: Selector = Field(description="Conditions of the first filter. " + SEL_DOC)
    b: Selector = Field(description="Conditions of the second filter. " + SEL_DOC)
    threshold: float = Field(0.5, ge=0, le=1, description="The overlap must stay below this.")


Check = Annotated[
    Union[Greater, GapGreater, Increasing, Decreasing, DipRecovery, LayerShallower, OverlapBelow],
    Field(discriminator="kind"),
]


def unknown_key(model: type[BaseModel], data: Any, path: str = "") -> str | None:
    """A one-line message for the first key of `data` (recursively) that `model` does not have, else None."""
    if not isinstance(data, dict):
        return None
    for key, value in data.items():
        if key not in model.model_fields:
            return (f"{path}{key}: unknown key of check kind {data.get('kind', model.__name__)!r}"
                    if path == "" else f"{path}{key}: unknown key") + f"; allowed keys: {', '.join(model.model_fields)}"
        ann = model.model_fields[key].annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            msg = unknown_key(ann, value, f"{path}{key}.")
            if msg:
                return msg
    return None


def precheck(check: Any) -> Any:
    """Default `kind` to greater; raise ValueError naming the allowed kinds or keys for a bad check."""
    if not isinstance(check, dict):
        return check
    check = {"kind": "greater", **check}
    kind = check["kind"]
    if kind not in CHECKS:
        raise field_error("kind", f"unknown check kind {kind!r}; allowed kinds: {', '.join(CHECKS.names())}")
    msg = unknown_key(CHECKS.get(kind), check)
    if msg:
        sub, _, text = msg.partition(": ")
        raise field_error(sub, text)
    metric = check.get("metric")
    if isinstance(metric, str) and metric not in (*EVAL_METRICS, "final_loss"):
        head = metric.split(".")[0]
        if "." not in metric or head not in ANALYSES:
            raise field_error("metric", f"unknown metric {metric!r}; expected one of {', '.join((*EVAL_METRICS, 'final_loss'))} "
                              f"or <analysis>.<path> with analysis one of {', '.join(ANALYSES)}")
    return check


def field_error(sub: str, message: str) -> Exception:
    """A validation error located at `sub` below the field being validated (repro.spec reports it as
    `<field path>.<sub>: <message>`)."""
    from pydantic_core import PydanticCustomError

    return PydanticCustomError("repro_field", "{sub}: {message}", {"sub": sub, "message": message})


def selectors(check: BaseModel) -> list[tuple[str, Selector]]:
    """(field path, selector) of every selector in a check."""
    out: list[tuple[str, Selector]] = []
    for name, field in type(check).model_fields.items():
        v = getattr(check, name)
        if isinstance(v, Pair):
            out += [(f"{name}.higher", v.higher), (f"{name}.lower", v.lower)]
        elif field.annotation is Selector or name in ("higher", "lower", "where", "shallower", "deeper", "a", "b"):
            if isinstance(v, dict):
                out.append((name, v))
    return out


def check_selectors(check: BaseModel, labels: list[dict[str, str]]) -> list[tuple[str, str]]:
    """(field path, problem) for selector keys that are no axis, and values no condition has."""
    problems = []
    axes: dict[str, set[str]] = {}
    for lab in labels:
        for k, v in lab.items():
            axes.setdefault(k, set()).add(str(v))
    for path, sel in selectors(check):
        for axis, want in sel.items():
            if axis not in axes:
                problems.append((f"{path}.{axis}", f"no axis {axis!r}; axes: {', '.join(sorted(axes)) or '(none)'}"))
                continue
            for w in want if isinstance(want, list) else [want]:
                if str(w) not in axes[axis]:
                    problems.append((f"{path}.{axis}", f"no condition has {axis}={w}; values: {', '.join(sorted(axes[axis]))}"))
    return problems
