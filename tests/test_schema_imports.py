"""Structure checks: the committed spec schema is current and referenced, `src/repro` has no import
cycle, stage names are defined once, and a stage's code does not change without its version."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

from conftest import REPO

from repro.spec import spec_schema
from repro.stages import STAGES, recorded_sources, source_hash

SRC = REPO / "src" / "repro"
SCHEMA = REPO / "experiments" / "spec.schema.json"
MODELINE = "# yaml-language-server: $schema=spec.schema.json"


def test_committed_schema_is_current() -> None:
    assert json.loads(SCHEMA.read_text()) == spec_schema(), "run: repro schema -o experiments/spec.schema.json"


def test_example_specs_reference_the_schema() -> None:
    specs = sorted(p for p in (REPO / "experiments").glob("*.yaml"))
    assert specs
    for p in specs:
        assert p.read_text().splitlines()[0] == MODELINE, f"{p.name}: first line should be {MODELINE!r}"


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def import_graph() -> dict[str, set[str]]:
    """Module -> the repro modules it imports at module level (imports inside functions are lazy and do
    not form cycles at import time)."""
    mods = {_module_name(p): p for p in SRC.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        deps: set[str] = set()
        tree = ast.parse(path.read_text())
        pkg = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in tree.body:  # top level only
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(pkg.split(".")[: len(pkg.split(".")) - node.level + 1] + ([base] if base else []))
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            deps.update(t for t in targets if t in mods and t != name)
        graph[name] = deps
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for d in sorted(graph.get(n, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state and (c := visit(d)):
                return c
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (c := visit(n)):
            return c
    return None


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    graph = import_graph()
    assert "repro.plan" in graph and "repro.stages" in graph["repro.plan"]
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_stage_names_are_defined_once() -> None:
    """No other module spells out the list of stages: every list is derived from repro.stages.STAGES."""
    names = [s.name for s in STAGES]
    pattern = re.compile(r"""\(\s*["']generate["']\s*,\s*["']filter["']\s*,\s*["']pretrain["']""")
    offenders = [str(p.relative_to(REPO)) for p in SRC.rglob("*.py")
                 if p.name != "__init__.py" or p.parent.name != "stages"
                 if pattern.search(p.read_text())]
    assert names[:3] == ["generate", "filter", "pretrain"]
    assert not offenders, f"stage list written out again in {offenders}"


def test_stage_code_changes_bump_the_version() -> None:
    """A stage module whose source changed since its version was recorded must bump its version (or,
    for a change that cannot change any result, re-record): `python -m repro.stages --update`."""
    rec = recorded_sources()
    for s in STAGES:
        r = rec.get(s.name)
        assert r is not None, f"stage {s.name} is not recorded in STAGE_SOURCES.json"
        if r["source_sha256"] != source_hash(s.name):
            assert s.version > r["version"], (
                f"stages/{s.name}.py changed but its version is still {s.version}: bump it in repro.stages.STAGES "
                f"if the change can change results, then run `python -m repro.stages --update`")
            raise AssertionError(f"stage {s.name}: version bumped to {s.version}; record it: python -m repro.stages --update")
        assert r["version"] == s.version, f"stage {s.name}: recorded v{r['version']}, code v{s.version}: python -m repro.stages --update"
