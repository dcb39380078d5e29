"""Nothing unsafe in a spec: YAML python tags are refused (and never run), names and labels holding `../`
or `/` cannot make any job write outside results/, logs/ and reports/, and trust_remote_code is off
unless a spec turns it on for a named model."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from repro import paths
from repro.config import ModelConfig
from repro.errors import ReproError, SpecError
from repro.plan import build_plan
from repro.safety import check_writable, remote_code_allowed
from repro.spec import load

BASE = """\
name: {name}
base:
  data: {{task: countdown, n: 8}}
  train: {{steps: 2}}
  eval:
    benchmarks: [{{name: {bench}, task: countdown, split: id, n: 4}}]
"""


def _write(tmp: Path, text: str) -> Path:
    p = tmp / "s.yaml"
    p.write_text(text)
    return p


@pytest.mark.parametrize("payload", [
    "!!python/object/apply:os.system ['touch {pwned}']",
    "!!python/object/new:subprocess.Popen [['touch', '{pwned}']]",
    "!!python/name:os.system",
])
def test_python_tags_are_refused_and_never_run(tmp_path: Path, payload: str) -> None:
    pwned = tmp_path / "pwned"
    spec = _write(tmp_path, BASE.format(name="x", bench="b") + f"hypothesis: {payload.format(pwned=pwned)}\n")
    r = subprocess.run([sys.executable, "-m", "repro", "validate", str(spec)], capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"{spec}: line 7: YAML tag refused: ") and "nothing in it is run as code" in line, line
    assert not pwned.exists()


@pytest.mark.parametrize("name, bench, extra", [
    ("../evil", "b", ""),
    ("/abs", "b", ""),
    ("ok", "../../b", ""),
    ("ok", "a/b", ""),
    ("ok", "b", "axes:\n  x:\n    ../../up: {data.n: 4}\n"),
    ("ok", "b", "axes:\n  ../x:\n    v: {data.n: 4}\n"),
    ("ok", "b", "axes:\n  x:\n    /etc/passwd: {data.n: 4}\n"),
    ("ok", "b", "conditions:\n  ../c: {data.n: 4}\n"),
    ("ok", "b", "conditions:\n  c/d: {data.n: 4}\n"),
    ("ok", "b", "axes:\n  x:\n    ..: {data.n: 4}\n"),
])
def test_path_like_names_and_labels_are_refused(tmp_path: Path, name: str, bench: str, extra: str) -> None:
    spec = _write(tmp_path, BASE.format(name=name, bench=bench) + extra)
    with pytest.raises(SpecError) as e:
        load(spec)
    assert str(spec) in str(e.value)


def test_every_path_a_plan_writes_stays_inside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Labels that are legal but odd (dots, spaces, unicode, '+') still give paths inside the three roots."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("REPRO_RESULTS", raising=False)
    monkeypatch.delenv("REPRO_REPORTS", raising=False)
    spec = _write(tmp_path, BASE.format(name="odd", bench="x..y+z") + (
        "axes:\n  'a b':\n    'v..1': {data.n: 4}\n    'ü ..': {data.n: 5}\n"
        "conditions:\n  'c~..': {data.n: 6}\n"))
    plan = build_plan([str(spec)])
    roots = [paths.results_root(), Path("logs"), paths.reports_root()]
    written: list[Path] = []
    for j in plan.jobs.values():
        written += [j.outdir, paths.tmp_dir(j.stage, j.dirname), paths.partial_dir(j.stage, j.dirname),
                    paths.lock_file(j.stage, j.dirname), paths.completion_record(j.stage, j.dirname),
                    Path("logs") / j.stage / f"{j.dirname}.log"]
        if j.stage == "eval":
            written += [j.outdir / b["name"] / "samples.jsonl" for b in j.config["benchmarks"]]
    written += [paths.reports_root() / f"{sp.spec.name}.html" for sp in plan.specs]
    outside = [p for p in written if not paths.inside(p, *roots)]
    assert outside == []
    for p in written:
        check_writable(p)


def test_unsafe_components_and_writes_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for bad in ("..", ".", "", "a/b", "../x", ".hidden", "a\\b", "x\0y"):
        with pytest.raises(ReproError) as e:
            paths.job_dir("train", bad)
        assert e.value.exit_code == 2
    with pytest.raises(ReproError):
        paths.job_dir("../etc", "x-1")
    for p in (Path("results/../x"), Path("/etc/passwd"), Path("reports/../../y"), Path("logsx/a")):
        with pytest.raises(ReproError, match="outside"):
            check_writable(p)


def test_trust_remote_code_only_when_a_spec_turns_it_on_for_a_named_model(tmp_path: Path) -> None:
    assert not remote_code_allowed(ModelConfig())
    assert not remote_code_allowed(ModelConfig(source="hub", id="org/m"))
    assert remote_code_allowed(ModelConfig(source="hub", id="org/m", trust_remote_code=True))
    with pytest.raises(ValueError, match="trust_remote_code"):
        ModelConfig(source="scratch", trust_remote_code=True)
    # off by default, it is not even part of the job config (existing job ids stay); on, it is
    assert "trust_remote_code" not in ModelConfig(source="hub", id="org/m").model_dump(mode="json")
    assert ModelConfig(source="hub", id="org/m", trust_remote_code=True).model_dump(mode="json")["trust_remote_code"]
