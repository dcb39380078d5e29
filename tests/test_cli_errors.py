"""The CLI with nothing to work on: no spec named and no params.yaml (or one without specs) is bad input,
exit 2 with one line that says what is missing, for every command that falls back to params.yaml."""

from __future__ import annotations

from pathlib import Path

import pytest

from repro.cli import main


@pytest.mark.parametrize("params", [None, "specs: []\n", "set: [base.train.lr=0.1]\n"])
@pytest.mark.parametrize("argv", [["validate"], ["plan"], ["plan", "--json"], ["run", "0123456789ab"], ["report"],
                                  ["publish"], ["dvc"]])
def test_no_spec_and_no_params_specs_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str], params: str | None,
                                             argv: list[str]) -> None:
    monkeypatch.chdir(tmp_path)
    if params is not None:
        (tmp_path / "params.yaml").write_text(params)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    (line,) = err.strip().splitlines()
    assert "no spec given" in line and "params.yaml" in line and "Traceback" not in err
    assert not out and sorted(p.name for p in tmp_path.iterdir()) == ([] if params is None else ["params.yaml"])


def test_validate_with_params_specs_validates_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The fallback is real: params.yaml's specs are what `repro validate` checks (a broken one exits 2)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.yaml").write_text("name: s\nbase: {data: {task: countdown, n: 4}}\n")
    (tmp_path / "params.yaml").write_text("specs: [s.yaml]\n")
    assert main(["validate"]) == 0
    assert capsys.readouterr().out.startswith("s.yaml: ok")
    (tmp_path / "s.yaml").write_text("name: s\nbase: {data: {task: countdown, n: 4, bogus: 1}}\n")
    assert main(["validate"]) == 2
    assert "s.yaml" in capsys.readouterr().err
