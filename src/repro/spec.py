"""Study specs: YAML -> validated `Spec` -> named `Condition`s (the cells of the ablation grid).

A spec has a `base` condition and `axes`; each axis value is a set of overrides of the base by dotted path
(`train.lr: 3e-4`). Conditions are the product of the axes, with `zip` groups that vary together,
`exclude`/`only` filters and extra named `conditions`. `include:` pulls in fragments (paths relative to
the including file; the including file wins), and `--set path=value` edits the merged spec.

Every problem is reported as `file: path: what was expected` through `SpecError`.

    spec, conds = load("experiments/mini_c.yaml", sets=["base.train.lr=1e-3"])
"""

from __future__ import annotations

import itertools
import re
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Union

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator

from repro.claimchecks import Check, check_selectors, precheck
from repro.config import Condition, Strict
from repro.errors import SpecError, spec_error
from repro.identity import canonical_json


class Claim(Strict):
    """A paper's claim that the report tests on this run (an effect, its 95% interval and a verdict)."""

    id: str = Field(description="Short id, e.g. C-F1.")
    paper: str = Field(description="Paper (arXiv id) the claim comes from.")
    claim: str = Field(description="The claim in words.")
    number: str = Field("", description="The paper's number(s), as text, with the source tag.")
    design: bool = Field(False, description="A design check: a property of the inputs by construction (e.g. "
                         "the teacher's own branching rate), shown apart from the findings.")
    caveat: str = Field("", description="What the miniature lacks to show the finding (shown with the verdict).")
    check: Check = Field(description="How to test it on this run: a check kind (`kind`, default greater) and its "
                         "arguments; see repro.claimchecks and experiments/README.md.")

    @field_validator("check", mode="before")
    @classmethod
    def _check_keys(cls, v: Any) -> Any:
        return precheck(v)


class SeedCount(Strict):
    """A seed count for the conditions matching one {axis: value(s)} rule."""

    where: dict[str, str | list[str]] = Field(description="{axis: value(s)} rule, as in `only`.")
    seeds: int = Field(ge=1, le=100, description="Seeds for the matching conditions.")


class Replicates(Strict):
    """k training seeds per condition: seed i adds i to train.seed (data order) and, for models made from
    scratch, to model.init_seed. Seed 0 is the condition itself (same job ids), so raising k runs only the
    new seeds; data, filter and pretrain jobs are shared by all seeds."""

    seeds: int = Field(1, ge=1, le=100, description="Seeds per condition (k).")
    only: list[dict[str, str | list[str]]] = Field(
        default_factory=list, description="If given, only conditions matching one of these {axis: value(s)} "
        "rules get k seeds; the others run once.")
    per: list[SeedCount] = Field(
        default_factory=list, description="Other seed counts for some conditions: the first {where, seeds} "
        "whose rule a condition matches sets its k (instead of `seeds` and `only`).")


class Spec(Strict):
    """A study: a base condition, ablation axes and the claims it tests."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", description="Short name; used in report file names.")
    title: str = Field("", description="Title shown in the report.")
    hypothesis: str = Field("", description="What the study tests, in a sentence or two.")
    include: list[str] = Field(default_factory=list, description="Fragments merged under this file.")
    base: Condition = Field(default_factory=Condition, description="The base condition.")
    axes: dict[str, dict[str, dict[str, Any] | None]] = Field(
        default_factory=dict,
        description="Ablation axes: axis -> value name -> {dotted.path: value} overrides of `base`.",
    )
    zip: list[list[str]] = Field(default_factory=list, description="Groups of axes that vary together.")
    exclude: list[dict[str, str | list[str]]] = Field(
        default_factory=list, description="Drop conditions matching any of these {axis: value(s)} rules."
    )
    only: list[dict[str, str | list[str]]] = Field(
        default_factory=list, description="If given, keep only conditions matching one of these rules."
    )
    conditions: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Extra named conditions: name -> overrides of `base`."
    )
    claims: list[Claim] = Field(default_factory=list, description="Claims the report checks.")
    replicates: Replicates = Field(default_factory=Replicates, description="Training seeds per condition.")

    @field_validator("axes")
    @classmethod
    def _axis_names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for axis, values in v.items():
            _check_label(axis, "axis name")
            if not values:
                raise ValueError(f"axis {axis!r} has no values")
            for value in values:
                _check_label(value, f"value of axis {axis!r}")
        return v

    @field_validator("conditions")
    @classmethod
    def _condition_names(cls, v: dict[str, Any]) -> dict[str, Any]:
        for name in v:
            _check_label(name, "condition name")
        return v


_LABEL = re.compile(r"^[^/\\\x00-\x1f.][^/\\\x00-\x1f]*$")


def _check_label(name: str, what: str) -> None:
    """Axis names, axis values and condition names name conditions (`spec/condition` in plans and reports):
    no '/', '\\' or control characters, no leading '.', so no label can ever act as a path."""
    if not isinstance(name, str) or not _LABEL.match(name):
        raise ValueError(f"{what} {name!r} is not allowed: use letters, digits and - _ + (no '/', '\\', "
                         "control characters or leading '.')")


@dataclass
class NamedCondition:
    """One cell of the grid: its name, its axis labels and the resolved condition."""

    name: str
    labels: dict[str, str]
    condition: Condition


# ---------------------------------------------------------------------------------------------------------
# Loading: YAML, includes, --set


def _read_yaml(path: Path, shown: str) -> dict[str, Any]:
    if not path.exists():
        raise spec_error(shown, "", "file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as e:
        raise spec_error(shown, "", f"not UTF-8 text (byte {e.start}): {e.reason}") from None
    except yaml.constructor.ConstructorError as e:  # !!python/object and other object-building tags
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise spec_error(shown, where, f"YAML tag refused: {e.problem}; a spec is plain data (safe YAML: "
                         "mappings, lists, strings, numbers), nothing in it is run as code") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        raise spec_error(shown, where, f"invalid YAML: {getattr(e, 'problem', e)}") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise spec_error(shown, "", f"expected a mapping at the top level, got {type(data).__name__}")
    return data


def deep_merge(base: dict[str, Any], top: dict[str, Any]) -> dict[str, Any]:
    """Merge `top` over `base`: mappings merge recursively, anything else is replaced."""
    out = dict(base)
    for k, v in top.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def _load_raw(path: Path, shown: str, chain: tuple[Path, ...]) -> dict[str, Any]:
    real = path.resolve()
    if real in chain:
        cycle = " -> ".join(str(p.name) for p in (*chain, real))
        raise spec_error(shown, "include", f"include cycle: {cycle}")
    data = _read_yaml(path, shown)
    inc = data.pop("include", [])
    if isinstance(inc, str):
        inc = [inc]
    if not isinstance(inc, list) or not all(isinstance(i, str) for i in inc):
        raise spec_error(shown, "include", "expected a list of file paths")
    merged: dict[str, Any] = {}
    for rel in inc:
        p = path.parent / rel
        if not p.is_file():
            raise spec_error(shown, "include", f"{rel}: file not found (looked for {p})")
        merged = deep_merge(merged, _load_raw(p, str(p), (*chain, real)))
    return deep_merge(merged, data)


def parse_set(item: str) -> tuple[str, Any]:
    """`a.b.c=value` -> ("a.b.c", yaml-parsed value)."""
    if "=" not in item:
        raise spec_error("--set", item, "expected PATH=VALUE")
    path, _, raw = item.partition("=")
    try:
        value = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    return path.strip(), value


# ---------------------------------------------------------------------------------------------------------
# Dotted paths, checked against the pydantic models


def _unwrap(tp: Any) -> list[Any]:
    """The alternatives of an annotation (Optional/Union flattened)."""
    origin = typing.get_origin(tp)
    if origin in (Union, types.UnionType):
        out: list[Any] = []
        for a in typing.get_args(tp):
            out.extend(_unwrap(a))
        return out
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(tp)[0])
    return [tp]


def check_path(model: type[BaseModel], path: str) -> str | None:
    """None if `path` names a field reachable from `model`, else a message saying what was expected."""
    segs = path.split(".")
    options: list[Any] = [model]
    for i, seg in enumerate(segs):
        nxt: list[Any] = []
        errors: list[str] = []
        for tp in options:
            origin = typing.get_origin(tp)
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                if seg in tp.model_fields:
                    nxt.extend(_unwrap(tp.model_fields[seg].annotation))
                else:
                    errors.append(f"{seg!r} is not a field here; expected one of: {', '.join(tp.model_fields)}")
            elif origin is dict or tp is dict:
                args = typing.get_args(tp)
                nxt.extend(_unwrap(args[1]) if args else [Any])
            elif origin is list:
                if seg.isdigit():
                    nxt.extend(_unwrap(typing.get_args(tp)[0]))
                else:
                    errors.append(f"{seg!r}: expected a list index")
            elif tp is Any:
                return None
        if not nxt:
            where = ".".join(segs[:i]) or "<top>"
            msg = errors[0] if errors else "is not a mapping"
            return f"{seg!r} under {where}: {msg}" if not errors else msg
        options = nxt
    return None


def _is_tag(model: type[BaseModel], seg: str) -> bool:
    """Whether `seg` is the value of one of `model`'s Literal fields (a discriminated union's tag in an
    error location)."""
    for f in model.model_fields.values():
        for tp in _unwrap(f.annotation):
            if typing.get_origin(tp) is typing.Literal and seg in [str(a) for a in typing.get_args(tp)]:
                return True
    return False


def check_path_model(model: Any, segs: list[str]) -> list[str] | None:
    """The field names of the pydantic model that `segs` (an error location) leads to under `model`, or None
    when it does not lead to a model. List indices, dict keys and union tags are followed."""
    options: list[Any] = _unwrap(model)
    for seg in segs:
        nxt: list[Any] = []
        models = [tp for tp in options if isinstance(tp, type) and issubclass(tp, BaseModel)]
        tagged = [tp for tp in models if seg not in tp.model_fields and _is_tag(tp, seg)]
        if tagged:
            options = tagged
            continue
        for tp in options:
            origin = typing.get_origin(tp)
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                if seg in tp.model_fields:
                    nxt.extend(_unwrap(tp.model_fields[seg].annotation))
            elif origin is dict or origin is list:
                args = typing.get_args(tp)
                nxt.extend(_unwrap(args[-1]) if args else [])
        options = nxt
    for tp in options:
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            return list(tp.model_fields)
    return None


def set_path(d: dict[str, Any], path: str, value: Any) -> None:
    """Set `path` in nested dicts/lists `d`, creating mappings on the way."""
    segs = path.split(".")
    cur: Any = d
    for seg in segs[:-1]:
        if isinstance(cur, list):
            cur = cur[int(seg)]
            continue
        if not isinstance(cur.get(seg), (dict, list)):
            cur[seg] = {}
        cur = cur[seg]
    last = segs[-1]
    if isinstance(cur, list):
        cur[int(last)] = value
    else:
        cur[last] = value


# ---------------------------------------------------------------------------------------------------------
# Validation


def _pyd_problems(file: str, prefix: str, err: ValidationError, model: Any = None) -> list[tuple[str, str, str]]:
    """One (file, field path, message) per pydantic error; an unknown key names the allowed keys when
    `model` (the model validated) is given."""
    out = []
    for e in err.errors():
        locs = [str(x) for x in e["loc"] if x not in ("function-after",)]
        loc = ".".join(locs)
        path = f"{prefix}.{loc}" if prefix and loc else (prefix or loc)
        msg = e["msg"]
        if e["type"] == "repro_field":  # raised by a validator that knows the exact key (repro.claimchecks)
            out.append((file, f"{path}.{e['ctx']['sub']}", e["ctx"]["message"]))
            continue
        if e["type"] == "extra_forbidden":
            keys = check_path_model(model, locs[:-1]) if model is not None else None
            msg = f"unknown key; allowed keys: {', '.join(keys)}" if keys else "unknown key (not a field of this section)"
        elif "input" in e and e["type"] not in ("missing",):
            msg = f"{msg} (got {e['input']!r})"[:300]
        out.append((file, path, msg))
    return out


def load(path: str | Path, sets: list[str] | None = None) -> tuple[Spec, list[NamedCondition]]:
    """Load, merge includes, apply --set, validate and expand a spec. Raises SpecError."""
    path = Path(path)
    shown = str(path)
    raw = _load_raw(path, shown, ())
    for item in sets or []:
        p, v = parse_set(item)
        msg = check_path(Spec, p)
        if msg:
            raise spec_error(shown, p, f"--set names no field: {msg}")
        set_path(raw, p, v)
    base_raw = raw.get("base", {})
    try:
        spec = Spec.model_validate(raw)
    except ValidationError as e:
        raise SpecError(_pyd_problems(shown, "", e, Spec)) from None
    conds = replicate(spec, expand(spec, base_raw if isinstance(base_raw, dict) else {}, shown), shown)
    from repro.validate import check_registries  # registries import task code; keep spec.py light

    check_registries(shown, conds)
    return spec, conds


def _matches(labels: dict[str, str], rule: dict[str, str | list[str]]) -> bool:
    return all(labels.get(a) in ([v] if isinstance(v, str) else v) for a, v in rule.items())


def expand(spec: Spec, base_raw: dict[str, Any], file: str) -> list[NamedCondition]:
    """The conditions of a spec: product of axes (zip groups together), filtered, plus extras."""
    problems: list[tuple[str, str, str]] = []
    axes = spec.axes
    for axis, values in axes.items():
        for value, ov in values.items():
            if not ov:
                problems.append((file, f"axes.{axis}.{value}", "axis value overrides nothing (give at least one path)"))
                continue
            for p in ov:
                msg = check_path(Condition, p)
                if msg:
                    problems.append((file, f"axes.{axis}.{value}.{p}", f"override names no field: {msg}"))
    for name, ov in spec.conditions.items():
        for p in ov:
            msg = check_path(Condition, p)
            if msg:
                problems.append((file, f"conditions.{name}.{p}", f"override names no field: {msg}"))
    zipped: set[str] = set()
    for i, group in enumerate(spec.zip):
        for a in group:
            if a not in axes:
                problems.append((file, f"zip.{i}", f"unknown axis {a!r}; axes are: {', '.join(axes)}"))
            elif a in zipped:
                problems.append((file, f"zip.{i}", f"axis {a!r} is in two zip groups"))
            zipped.add(a)
        sizes = {len(axes[a]) for a in group if a in axes}
        if len(sizes) > 1:
            problems.append((file, f"zip.{i}", f"zipped axes must have the same number of values, got {sorted(sizes)}"))
    for key in ("exclude", "only"):
        for i, rule in enumerate(getattr(spec, key)):
            for a, v in rule.items():
                if a not in axes:
                    problems.append((file, f"{key}.{i}.{a}", f"unknown axis; axes are: {', '.join(axes) or '(none)'}"))
                    continue
                for one in [v] if isinstance(v, str) else v:
                    if one not in axes[a]:
                        problems.append((file, f"{key}.{i}.{a}", f"unknown value {one!r}; values: {', '.join(axes[a])}"))
    if problems:
        raise SpecError(problems)

    # Factors: each zip group is one factor; other axes are factors of their own (in axis order).
    factors: list[list[dict[str, str]]] = []
    seen: set[str] = set()
    for axis in axes:
        if axis in seen:
            continue
        group = next((g for g in spec.zip if axis in g), [axis])
        seen.update(group)
        n = len(axes[group[0]])
        factors.append([{a: list(axes[a])[k] for a in group} for k in range(n)])

    cells: list[tuple[str, dict[str, str], dict[str, Any]]] = []
    if axes:
        for combo in itertools.product(*factors):
            labels = {a: v for part in combo for a, v in part.items()}
            labels = {a: labels[a] for a in axes}
            if any(_matches(labels, r) for r in spec.exclude):
                continue
            if spec.only and not any(_matches(labels, r) for r in spec.only):
                continue
            overrides: dict[str, Any] = {}
            owner: dict[str, str] = {}
            for a, v in labels.items():
                for p, val in (axes[a][v] or {}).items():
                    if p in overrides and canonical_json(overrides[p]) != canonical_json(val):
                        problems.append((file, f"axes.{a}.{v}.{p}", f"conflicts with axis {owner[p]} setting the same path"))
                    overrides[p], owner[p] = val, a
            cells.append(("-".join(labels.values()), labels, overrides))
    elif not spec.conditions:
        cells.append(("base", {}, {}))
    for name, ov in spec.conditions.items():
        cells.append((name, {"condition": name}, dict(ov)))

    return _resolve(cells, base_raw, axes, file, problems)


def _resolve(cells: list[tuple[str, dict[str, str], dict[str, Any]]], base_raw: dict[str, Any],
             axes: dict[str, dict[str, dict[str, Any] | None]], file: str,
             problems: list[tuple[str, str, str]]) -> list[NamedCondition]:
    """Validate each cell's condition. A condition's sections (data, filters, model, ...) are validated
    separately and cached by the axis values that touch them, so a 10,000-cell grid costs about as much as
    its distinct sections; equal sections are interned, so identical conditions are found by identity."""
    try:
        base = Condition.model_validate(base_raw)
    except ValidationError as e:
        raise SpecError(_pyd_problems(file, "base", e, Condition)) from None
    sections = list(Condition.model_fields)
    interned: dict[tuple[str, str], Any] = {}
    cache: dict[tuple[str, tuple[tuple[str, str], ...]], Any] = {}

    def intern(sec: str, value: Any) -> Any:
        key = (sec, canonical_json(value.model_dump(mode="json") if isinstance(value, BaseModel) else _dump(value)))
        return interned.setdefault(key, value)

    base_secs = {sec: intern(sec, getattr(base, sec)) for sec in sections}

    def section(sec: str, overrides: dict[str, Any], where: str) -> Any:
        d = {sec: _copy(base_raw.get(sec))} if sec in base_raw else {}
        for p, val in overrides.items():
            set_path(d, p, _copy(val))
        try:
            cond = Condition.model_validate(d)
        except ValidationError as e:
            problems.extend((f, f"{where}: {p}", m) for f, p, m in _pyd_problems(file, "", e, Condition))
            return None
        return intern(sec, getattr(cond, sec))

    touch: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}  # (axis, value) -> section -> overrides
    for a, vals in axes.items():
        for v, ov in vals.items():
            per: dict[str, dict[str, Any]] = {}
            for p, val in (ov or {}).items():
                per.setdefault(p.split(".")[0], {})[p] = val
            touch[(a, v)] = per
    out: list[NamedCondition] = []
    names: set[str] = set()
    by_key: dict[tuple[int, ...], str] = {}
    for name, labels, overrides in cells:
        extra = "condition" in labels
        if name in names:
            problems.append((file, f"conditions.{name}", f"duplicate condition name {name!r}"))
            continue
        names.add(name)
        if extra:
            per_sec: dict[str, list[tuple[str, str]]] = {}
            for p in overrides:
                per_sec.setdefault(p.split(".")[0], [("", name)])
        else:
            per_sec = {}
            for av in labels.items():
                for sec in touch[av]:
                    per_sec.setdefault(sec, []).append(av)
        values = dict(base_secs)
        for sec, touching in per_sec.items():
            key = (sec, tuple(touching))
            if key not in cache:
                if extra:
                    ov = {p: v for p, v in overrides.items() if p.split(".")[0] == sec}
                    where = f"conditions.{name}"
                else:
                    ov = {}
                    for av in touching:
                        ov.update(touch[av][sec])
                    where = "axes (" + ", ".join(f"{a}={v}" for a, v in labels.items()) + ")"
                cache[key] = section(sec, ov, where)
            values[sec] = cache[key]
        if any(v is None for v in values.values()):
            continue
        cond = Condition.model_construct(**values)
        ident = tuple(id(values[sec]) for sec in sections if sec != "resources")
        if ident in by_key:
            problems.append((file, f"conditions.{name}", f"identical to condition {by_key[ident]!r} (the two resolve to the same config)"))
        by_key.setdefault(ident, name)
        out.append(NamedCondition(name, labels, cond))
    if problems:
        raise SpecError(list(dict.fromkeys(problems)))
    return out


def _dump(x: Any) -> Any:
    if isinstance(x, BaseModel):
        return x.model_dump(mode="json")
    if isinstance(x, list):
        return [_dump(v) for v in x]
    if isinstance(x, dict):
        return {k: _dump(v) for k, v in x.items()}
    return x


def _copy(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _copy(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_copy(v) for v in x]
    return x


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of a spec file (`repro schema`), committed as experiments/spec.schema.json, which
    the example specs reference (`# yaml-language-server: $schema=spec.schema.json`) so editors complete
    and check their fields. Component arguments (`args`, `task_args`) are checked by `repro validate`."""
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **Spec.model_json_schema()}


# ---------------------------------------------------------------------------------------------------------
# Replicates and claim selectors (issue 16)


def replicate(spec: Spec, conds: list[NamedCondition], file: str) -> list[NamedCondition]:
    """Each condition (matching `replicates.only`) k times, labelled seed s0..s{k-1}; then check the claims'
    selectors against the resulting labels."""
    r = spec.replicates
    for key, rules in (("replicates.only", r.only), ("replicates.per", [p.where for p in r.per])):
        for i, rule in enumerate(rules):
            for a in rule:
                if a not in spec.axes:
                    where = f"{key}.{i}.where.{a}" if key == "replicates.per" else f"{key}.{i}.{a}"
                    raise spec_error(file, where, f"unknown axis; axes are: {', '.join(spec.axes) or '(none)'}")
    out: list[NamedCondition] = []
    copies: dict[tuple[int, int], Any] = {}  # (id(section), i) -> its copy: equal sections stay one object
    for nc in conds:
        k = next((p.seeds for p in r.per if _matches(nc.labels, p.where)), None)
        if k is None:
            k = 1 if r.only and not any(_matches(nc.labels, rule) for rule in r.only) else r.seeds
        if k == 1:
            out.append(nc)
            continue
        c = nc.condition
        for i in range(k):
            model = c.model
            if c.model.source == "scratch":
                model = copies.setdefault((id(c.model), i), c.model.model_copy(update={"init_seed": c.model.init_seed + i}))
            train = copies.setdefault((id(c.train), i), c.train.model_copy(update={"seed": c.train.seed + i}))
            cond = c.model_copy(update={"train": train, "model": model})
            out.append(NamedCondition(f"{nc.name}-s{i}", {**nc.labels, "seed": f"s{i}"}, cond))
    labels = [{"condition": nc.name, **nc.labels} for nc in out]
    problems = [(file, f"claims.{i}.check.{path}", msg) for i, cl in enumerate(spec.claims)
                for path, msg in check_selectors(cl.check, labels)]
    if problems:
        raise SpecError(problems)
    return out
