"""The catalogue of bad inputs: specs, dataset rows, benchmark files, CLI arguments, params.yaml, plugin
registrations and damaged upstream artifacts. Each one must give exit 2 and a one-line message naming the file and the
field or row (no traceback), and leave every finished job folder exactly as it was.

Cases run through `repro.cli.main` in-process (what the `repro` command runs); a few also run as a real
subprocess to show the user sees the same one line. The workspace holds a finished smoke generate job,
whose folder is checked byte for byte after every case.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import struct
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from conftest import copy_workflow

SMOKE = "experiments/smoke.yaml"
LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ (DEBUG|INFO|WARNING|ERROR) ")

MINI = """\
name: {name}
base:
  data: {{task: countdown, n: 8}}
"""


def spec(body: str, name: str = "cat") -> str:
    """A small valid spec with `body` (YAML) merged in as extra top-level text."""
    return MINI.format(name=name) + body


def bench_spec(path: str, task: str = "math500", extra: str = "") -> str:
    return spec(f"""\
  eval:
    benchmarks:
      - {{name: b, task: {task}, split: test, n: 5, task_args: {{path: {path}{extra}}}}}
""")


def parquet_bytes(rows: list[dict]) -> bytes:
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(pa.Table.from_pylist(rows), buf)
    return buf.getvalue()


@dataclass
class Case:
    """One bad input: files to write (under cases/), the argv, what the message must name."""

    id: str
    kind: str
    argv: list[str]
    expect: list[str]
    files: dict[str, str | bytes] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str = "."
    prepare: Callable[[Path], Callable[[], None]] | None = None  # damages an artifact; returns the undo
    site: str | None = None  # a folder of installed plugin packages (dist-info + modules): run in a new process


def _c(cid: str, kind: str, text: str | bytes, expect: list[str], argv: list[str] | None = None, **kw) -> Case:
    f = f"cases/{cid}.yaml"
    return Case(cid, kind, argv or ["validate", f], [f, *expect], files={f: text}, **kw)


def _data(cid: str, content: str | bytes, expect: list[str], ext: str = "jsonl", task: str = "math500",
          extra: str = "") -> Case:
    data = f"cases/{cid}.{ext}"
    f = f"cases/{cid}.yaml"
    return Case(cid, "dataset", ["validate", f], [f, data, *expect],
                files={f: bench_spec(data, task, extra), data: content})


GOOD_ROW = '{"problem": "What is 1+1?", "answer": "2"}\n'
IFEVAL_ROW = {"key": 1, "prompt": "Say hi without commas.", "instruction_id_list": ["punctuation:no_comma"],
              "kwargs": [{}]}


def _gen_job(wd: Path) -> dict:
    r = subprocess.run([sys.executable, "-m", "repro", "plan", SMOKE, "--json"], cwd=wd, capture_output=True,
                       text=True, check=True)
    return {j["stage"]: j for j in json.loads(r.stdout)["jobs"]}


def truncate_traces(wd: Path) -> Callable[[], None]:
    p = wd / _JOBS["generate"]["outdir"] / "traces.jsonl"
    good = p.read_bytes()
    p.write_bytes(good[: len(good) - 40])

    def undo() -> None:
        p.write_bytes(good)
    return undo


def bad_trace_row(wd: Path) -> Callable[[], None]:
    p = wd / _JOBS["generate"]["outdir"] / "traces.jsonl"
    good = p.read_bytes()
    lines = good.splitlines(keepends=True)
    p.write_bytes(lines[0] + b'{"problem_id": "x"}\n' + b"".join(lines[2:]))

    def undo() -> None:
        p.write_bytes(good)
    return undo


def truncated_checkpoint(wd: Path) -> Callable[[], None]:
    """A train job folder whose step-20 checkpoint's weights were cut short (a copy that was interrupted)."""
    train = _JOBS["train"]
    out = wd / train["outdir"]
    ck = out / "checkpoints" / "step-20"
    ck.mkdir(parents=True)
    (ck / "config.json").write_text("{}")
    header = json.dumps({"w": {"dtype": "F32", "shape": [100], "data_offsets": [0, 400]}}).encode()
    (ck / "model.safetensors").write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 123)
    (out / "run.json").write_text("{}")
    (out / "manifest.json").write_text(json.dumps({"id": train["id"]}))

    def undo() -> None:
        import shutil

        shutil.rmtree(out)
    return undo


_JOBS: dict[str, dict] = {}

CASES: list[Case] = [
    # ---- specs
    _c("yaml-syntax", "spec", "name: x\nbase: {data: [\n", ["line", "invalid YAML"]),
    _c("python-tag", "spec", spec("axes: !!python/object/apply:os.system ['touch pwned']\n"),
       ["line 4", "YAML tag refused"]),
    _c("python-object-new", "spec", "name: !!python/object/new:os.getcwd []\n", ["line 1", "YAML tag refused"]),
    _c("not-a-mapping", "spec", "- a\n- b\n", ["expected a mapping"]),
    _c("unknown-top-key", "spec", spec("bogus: 1\n"), ["bogus", "unknown key"]),
    _c("name-dotdot", "spec", spec("", name="../evil"), ["name"]),
    _c("name-slash", "spec", spec("", name="a/b"), ["name"]),
    _c("name-absolute", "spec", spec("", name="/etc"), ["name"]),
    _c("axis-value-dotdot", "spec", spec("axes:\n  x:\n    ../up: {data.n: 4}\n"), ["axes", "'../up'"]),
    _c("axis-name-slash", "spec", spec("axes:\n  a/b:\n    one: {data.n: 4}\n"), ["axes", "'a/b'"]),
    _c("condition-name-abs", "spec", spec("conditions:\n  /tmp/x: {data.n: 4}\n"), ["conditions", "'/tmp/x'"]),
    _c("axis-value-hidden", "spec", spec("axes:\n  x:\n    .hidden: {data.n: 4}\n"), ["axes", "'.hidden'"]),
    _c("unknown-task", "spec", spec("  eval:\n    benchmarks: [{name: a, task: nosuchtask}]\n"),
       ["eval.benchmarks.0", "nosuchtask"]),
    _c("unknown-teacher", "spec", spec("").replace("n: 8}", "n: 8, teacher: {name: nosuch}}"),
       ["data.teacher", "nosuch"]),
    _c("unknown-filter", "spec", spec("  filters: [{name: nosuchfilter}]\n"), ["filters.0", "nosuchfilter"]),
    _c("filter-bad-arg", "spec", spec("  filters: [{name: verified, args: {bogus: 1}}]\n"), ["filters.0", "bogus"]),
    _c("negative-n", "spec", spec("").replace("n: 8", "n: -1"), ["base.data.n", "greater than"]),
    _c("wrong-type-lr", "spec", spec("  train: {lr: fast}\n"), ["base.train.lr"]),
    _c("bench-name-dotdot", "spec", spec("  eval:\n    benchmarks: [{name: ../x, task: countdown}]\n"),
       ["eval.benchmarks.0.name"]),
    _c("bench-name-dup", "spec",
       spec("  eval:\n    benchmarks: [{name: a, task: countdown}, {name: a, task: countdown}]\n"),
       ["eval.benchmarks.1.name", "duplicate"]),
    _c("include-missing", "spec", "include: [nothere.yaml]\n" + spec(""), ["include", "nothere.yaml", "not found"]),
    _c("override-unknown-path", "spec", spec("axes:\n  x:\n    a: {train.nope: 1}\n"), ["axes.x.a.train.nope"]),
    _c("zip-unknown-axis", "spec", spec("axes:\n  x:\n    a: {data.n: 4}\nzip: [[x, y]]\n"), ["zip.0", "'y'"]),
    _c("exclude-unknown-value", "spec", spec("axes:\n  x:\n    a: {data.n: 4}\nexclude: [{x: b}]\n"),
       ["exclude.0.x", "'b'"]),
    _c("remote-code-scratch", "spec", spec("  model: {source: scratch, trust_remote_code: true}\n"),
       ["base.model", "trust_remote_code"]),
    _c("hub-without-id", "spec", spec("  model: {source: hub}\n"), ["base.model", "model.id"]),
    _c("non-utf8-spec", "spec", b"name: caf\xe9\n", ["not UTF-8"]),
    _c("empty-axis", "spec", spec("axes:\n  x: {}\n"), ["axes", "no values"]),
    _c("identical-conditions", "spec", spec("axes:\n  x:\n    a: {data.n: 4}\n    b: {data.n: 4}\n"),
       ["identical to condition"]),
    Case("missing-spec", "spec", ["validate", "cases/nothere.yaml"], ["cases/nothere.yaml", "file not found"]),
    # ---- dataset rows and benchmark files
    _data("row-missing-field", GOOD_ROW + '{"problem": "x"}\n', ["row 2", "'answer'", "missing"]),
    _data("row-wrong-type", GOOD_ROW + '{"problem": "x", "answer": true}\n', ["row 2", "'answer'", "got boolean"]),
    _data("row-empty-answer", '{"problem": "x", "answer": "  "}\n' + GOOD_ROW, ["row 1", "'answer'", "empty"]),
    _data("row-non-utf8", GOOD_ROW.encode() + b'{"problem": "caf\xe9", "answer": "1"}\n', ["row 2", "not UTF-8"]),
    _data("row-truncated", GOOD_ROW + '{"problem": "x", "ans', ["row 2", "truncated"]),
    _data("row-invalid-json", GOOD_ROW + "{oops}\n" + GOOD_ROW, ["row 2", "invalid JSON"]),
    _data("row-not-object", GOOD_ROW + "[1, 2]\n", ["row 2", "JSON object"]),
    _data("file-empty", "", ["no usable rows"]),
    _data("all-rows-skipped", '{"problem": "x"}\n', ["no usable"], extra=", bad_rows: skip"),
    _data("ifeval-kwargs-missing", json.dumps({k: v for k, v in IFEVAL_ROW.items() if k != "kwargs"}) + "\n",
          ["row 1", "'kwargs'", "missing"],
          task="ifeval"),
    _data("parquet-missing-field", parquet_bytes([{"problem": "x", "solution": "y"}]), ["row 1", "'answer'"],
          ext="parquet"),
    _data("parquet-truncated", parquet_bytes([{"problem": "x", "answer": "1"}] * 50)[:-30], ["Parquet"],
          ext="parquet"),
    Case("bench-file-missing", "dataset", ["validate", "cases/bench-file-missing.yaml"],
         ["cases/bench-file-missing.yaml", "cases/nothere.jsonl", "not found"],
         files={"cases/bench-file-missing.yaml": bench_spec("cases/nothere.jsonl")}),
    # ---- CLI arguments, params.yaml, environment
    Case("run-unknown-id", "cli", ["run", "nosuchjob", "--specs", SMOKE], ["nosuchjob", SMOKE]),
    Case("set-without-equals", "cli", ["plan", SMOKE, "--set", "base.train.lr"], ["--set", "base.train.lr"]),
    Case("set-unknown-field", "cli", ["plan", SMOKE, "--set", "base.train.nope=1"], [SMOKE, "base.train.nope"]),
    Case("set-wrong-type", "cli", ["plan", SMOKE, "--set", "base.train.lr=fast"], [SMOKE, "train.lr"]),
    Case("threads-zero", "cli", ["run", "x", "--threads", "0"], ["--threads", "at least 1"]),
    Case("lock-wait-not-number", "cli", ["run", "x", "--lock-wait", "soon"], ["--lock-wait", "soon"]),
    Case("unknown-command", "cli", ["frobnicate"], ["frobnicate"]),
    Case("unknown-option", "cli", ["plan", SMOKE, "--bogus"], ["--bogus"]),
    Case("schema-unwritable", "cli", ["schema", "-o", "cases/no/such/dir/schema.json"],
         ["cases/no/such/dir/schema.json", "cannot write"]),
    Case("no-spec-no-params", "cli", ["validate"], ["params.yaml"], cwd="cases/empty", files={"cases/empty/.keep": ""}),
    Case("params-bad-yaml", "cli", ["validate"], ["params.yaml", "line"], cwd="cases/p1",
         files={"cases/p1/params.yaml": "specs: [a\n"}),
    Case("params-specs-not-list", "cli", ["validate"], ["params.yaml", "specs"], cwd="cases/p2",
         files={"cases/p2/params.yaml": "specs: {a: 1}\n"}),
    Case("lock-wait-env", "cli", ["run", "filter", "--specs", SMOKE], ["REPRO_LOCK_WAIT_S"],
         env={"REPRO_LOCK_WAIT_S": "forever"}),
    # ---- damaged upstream artifacts: detected, not half-read
    Case("traces-truncated", "artifact", ["run", "filter", "--specs", SMOKE], ["traces.jsonl", "truncated"],
         prepare=truncate_traces),
    Case("traces-bad-row", "artifact", ["run", "filter", "--specs", SMOKE], ["traces.jsonl", "row 2", "not a trace"],
         prepare=bad_trace_row),
    Case("checkpoint-truncated", "artifact", ["run", "eval", "--specs", SMOKE],
         ["model.safetensors", "truncated"], prepare=truncated_checkpoint),
]


# ---- plugin registrations: a package beside repro whose entry points are broken (run in a fresh process,
# since registries load their plugins once per process)
PLUGIN_SPEC = spec("  filters: [{name: verified}]\n")


def _plugin(cid: str, group: str, entry: str, modules: dict[str, str], expect: list[str]) -> Case:
    site = f"cases/{cid}-site"
    files = {f"{site}/{cid.replace('-', '_')}-0.1.dist-info/METADATA":
             f"Metadata-Version: 2.1\nName: {cid}\nVersion: 0.1\n",
             f"{site}/{cid.replace('-', '_')}-0.1.dist-info/entry_points.txt": f"[{group}]\n{entry}\n",
             f"cases/{cid}.yaml": PLUGIN_SPEC}
    files.update({f"{site}/{name}.py": src for name, src in modules.items()})
    return Case(cid, "plugin", ["validate", f"cases/{cid}.yaml"], [cid, *expect], files=files, site=site)


PLUGIN_CASES = [
    _plugin("plugin-import-error", "repro.tasks", "mytask = plug_a", {"plug_a": "raise RuntimeError('boom')\n"},
            ["mytask", "cannot be loaded", "RuntimeError: boom"]),
    _plugin("plugin-missing-module", "repro.filters", "myfilter = plug_nothere", {},
            ["myfilter", "cannot be loaded", "ModuleNotFoundError"]),
    _plugin("plugin-duplicate-name", "repro.tasks", "dup = plug_b",
            {"plug_b": "from repro.tasks import TASKS, Task\n\n@TASKS.register('countdown')\nclass T(Task):\n    name = 'countdown'\n"},
            ["registered twice", "'countdown'"]),
    _plugin("plugin-without-args", "repro.teachers", "noargs = plug_c:thing", {"plug_c": "thing = object()\n"},
            ["noargs", "no `Args` model"]),
    _plugin("plugin-syntax-error", "repro.filters", "bad = plug_d", {"plug_d": "def f(:\n"},
            ["bad", "cannot be loaded", "SyntaxError"]),
]
CASES += PLUGIN_CASES


def _resolve_argv(argv: list[str]) -> list[str]:
    """`run filter` -> `run <the filter job's id>` (ids depend on the code version)."""
    if argv[:1] == ["run"] and argv[1] in _JOBS:
        return ["run", _JOBS[argv[1]]["id"], *argv[2:]]
    return argv


def _snapshot(root: Path) -> dict[str, str]:
    """Every file of every finished job folder: path -> sha256."""
    out = {}
    for man in root.glob("results/*/*/manifest.json"):
        for f in sorted(man.parent.rglob("*")):
            if f.is_file():
                out[str(f.relative_to(root))] = hashlib.sha256(f.read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="module")
def ws(tmp_path_factory: pytest.TempPathFactory) -> Path:
    wd = copy_workflow(tmp_path_factory.mktemp("bad"))
    _JOBS.update(_gen_job(wd))
    r = subprocess.run([sys.executable, "-m", "repro", "run", _JOBS["generate"]["id"], "--specs", SMOKE], cwd=wd,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return wd


def run_cli(argv: list[str], cwd: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
            env: dict[str, str]) -> tuple[int, str]:
    from repro.cli import main

    monkeypatch.chdir(cwd)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    logging.root.handlers.clear()  # main() installs a handler on the current (captured) stderr
    capsys.readouterr()
    try:
        rc = main(argv)
    except SystemExit as e:  # argparse
        rc = int(e.code or 0)
    return rc, capsys.readouterr().err


def message_lines(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.strip() and not LOG_LINE.match(ln)]


def test_catalogue_size() -> None:
    kinds = {c.kind for c in CASES}
    assert len(CASES) >= 40 and {"spec", "dataset", "cli", "artifact", "plugin"} <= kinds
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, ws: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    for rel, content in case.files.items():
        p = ws / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = _snapshot(ws)
    undo = case.prepare(ws) if case.prepare else None
    try:
        if case.site:  # registries load plugins once per process: a fresh one sees this case's packages
            r = subprocess.run([sys.executable, "-m", "repro", *case.argv], cwd=ws / case.cwd, capture_output=True,
                               text=True, env={**os.environ, **case.env,
                                               "PYTHONPATH": os.pathsep.join([str(ws / case.site), *sys.path])})
            rc, err = r.returncode, r.stderr
        else:
            rc, err = run_cli(_resolve_argv(case.argv), ws / case.cwd, monkeypatch, capsys, case.env)
    finally:
        if undo:
            undo()
    lines = message_lines(err)
    assert "Traceback" not in err, err
    assert rc == 2, f"exit {rc}: {err}"
    assert len(lines) == 1, f"expected one line, got: {lines}"
    for want in case.expect:
        assert want in lines[0], f"{want!r} not in {lines[0]!r}"
    assert _snapshot(ws) == before, "a finished job folder changed"
    assert not (ws / "pwned").exists() and not (ws / case.cwd / "pwned").exists()


@pytest.mark.parametrize("cid", ["python-tag", "row-truncated", "threads-zero"])
def test_same_line_from_the_real_command(cid: str, ws: Path) -> None:
    case = next(c for c in CASES if c.id == cid)
    for rel, content in case.files.items():
        p = ws / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content if isinstance(content, bytes) else content.encode())
    r = subprocess.run([sys.executable, "-m", "repro", *case.argv], cwd=ws, capture_output=True, text=True,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    lines = message_lines(r.stderr)
    assert r.returncode == 2 and len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert all(w in lines[0] for w in case.expect), lines
