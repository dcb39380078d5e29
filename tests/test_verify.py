"""`repro verify`: identical reruns pass; a tampered output fails (exit 1) and is named; ids that are not in
the plan (exit 2) or not run yet (exit 1) get a one-line error. Data jobs of the tiny spec only: seconds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repro.cli import main
from repro.plan import Job, Plan, build_plan

from conftest import FIXTURES


@pytest.fixture
def data_jobs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, Plan, Job, Job]:
    """The tiny spec's generate and filter jobs, run with `repro run` in a fresh results root."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPRO_RESULTS", str(tmp_path / "results"))
    spec = tmp_path / "every.yaml"
    spec.write_text((FIXTURES / "tiny_every.yaml").read_text())
    plan = build_plan([str(spec)])
    (gen,) = [j for j in plan.jobs.values() if j.stage == "generate"]
    (filt,) = [j for j in plan.jobs.values() if j.stage == "filter"]
    for job in (gen, filt):
        assert main(["run", job.id, "--specs", str(spec)]) == 0
    return str(spec), plan, gen, filt


def verify(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["verify", *args])
    out, err = capsys.readouterr()
    return code, out, err


def lines_of(out: str, job: Job) -> list[str]:
    return [ln for ln in out.splitlines() if job.dirname in ln]


def test_identical_rerun_passes(data_jobs: tuple[str, Plan, Job, Job], capsys: pytest.CaptureFixture[str]) -> None:
    spec, _, gen, filt = data_jobs
    code, out, _ = verify(capsys, spec, gen.id, filt.dirname)  # a bare id or <name>-<id>
    assert code == 0, out
    for job in (gen, filt):
        (line,) = lines_of(out, job)
        assert line.split()[:3] == [job.stage, job.dirname, "identical"]
    assert "2 of 2 jobs as expected" in out


@pytest.mark.parametrize("what", ["edited", "deleted", "added"])
def test_tampered_output_fails_naming_the_file(data_jobs: tuple[str, Plan, Job, Job], capsys: pytest.CaptureFixture[str],
                                               what: str) -> None:
    spec, _, gen, filt = data_jobs
    traces = filt.outdir / "traces.jsonl"
    if what == "edited":  # one character of one recorded trace
        text = traces.read_text()
        traces.write_text(text.replace('"answer": "', '"answer": "9', 1))
        name = "traces.jsonl"
    elif what == "deleted":
        (filt.outdir / "stats.json").unlink()
        name = "stats.json"
    else:
        (filt.outdir / "notes.txt").write_text("not written by the job\n")
        name = "notes.txt"
    code, out, _ = verify(capsys, spec, gen.id, filt.id)
    assert code == 1, out
    (line,) = lines_of(out, filt)
    assert line.split()[:3] == ["filter", filt.dirname, "DIFFERS"]
    assert line.split("files:")[1].split(",")[0].strip() == name
    assert lines_of(out, gen)[0].split()[2] == "identical"  # the untouched input job still verifies
    assert "1 of 2 jobs as expected; 1 data/eval jobs differ" in out


def test_tampered_input_shows_in_both_jobs(data_jobs: tuple[str, Plan, Job, Job], capsys: pytest.CaptureFixture[str]) -> None:
    """A rerun of the filter reads the recorded (tampered) generate output: both differ, each names its file."""
    spec, _, gen, filt = data_jobs
    traces = gen.outdir / "traces.jsonl"
    rows = traces.read_text().splitlines()
    traces.write_text("\n".join(rows[1:]) + "\n")  # the first trace removed
    code, out, _ = verify(capsys, spec, gen.id, filt.id)
    assert code == 1
    for job in (gen, filt):
        (line,) = lines_of(out, job)
        assert "DIFFERS" in line and "traces.jsonl" in line.split("files:")[1]
    assert json.loads((filt.outdir / "stats.json").read_text())["input"] == len(rows)  # verify wrote nothing back


def test_unknown_id_is_bad_input(data_jobs: tuple[str, Plan, Job, Job], capsys: pytest.CaptureFixture[str]) -> None:
    spec, *_ = data_jobs
    code, out, err = verify(capsys, spec, "0123456789ab", "filter-x-feedfacecafe")
    assert code == 2
    (line,) = err.strip().splitlines()
    assert "unknown job ids 0123456789ab, filter-x-feedfacecafe" in line and spec in line
    assert "Traceback" not in err and not out


def test_job_not_run_yet_is_a_clear_error(data_jobs: tuple[str, Plan, Job, Job], capsys: pytest.CaptureFixture[str]) -> None:
    spec, plan, gen, _ = data_jobs
    (train,) = [j for j in plan.jobs.values() if j.stage == "train"]
    code, out, err = verify(capsys, spec, gen.id, train.id)
    assert code == 1
    (line,) = err.strip().splitlines()
    assert f"1 of 2 jobs to verify is not done yet (train/{train.dirname})" in line and "run it first" in line
    assert "Traceback" not in err and not out
    # the whole spec: every job but the report, most of them not run
    code, _, err = verify(capsys, spec)
    n = sum(j.stage != "report" for j in plan.jobs.values())
    assert code == 1 and f"{n - 2} of {n} jobs to verify are not done yet" in err
