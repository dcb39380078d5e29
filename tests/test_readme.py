"""The README and docs stay true: its two commands are the ones CI runs and the setup script's header
gives, its spec example validates and plans, every `docs/studies.md §N` a spec or module cites exists, and
nothing in the repository points outside it (a clone has no ../shared)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from repro.cli import main

from conftest import REPO

README = (REPO / "README.md").read_text()
RUN = "bash scripts/setup.sh && . .venv/bin/activate && snakemake --cores all"
TEST = "bash scripts/setup.sh --test && . .venv/bin/activate && python -m pytest"


def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def tracked_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    return [REPO / f for f in out.stdout.splitlines() if (REPO / f).is_file()]


def test_the_two_commands() -> None:
    bash = [ln.strip() for block in code_blocks(README, "bash") for ln in block.splitlines()]
    assert bash[:2] == [RUN, TEST]  # the first two command blocks, as a user copies them
    ci = [ln for ln in (REPO / ".ci" / "run").read_text().splitlines() if ln and not ln.startswith("#")]
    assert ci[-1] == TEST
    header = (REPO / "scripts" / "setup.sh").read_text()
    assert "snakemake --cores all" in header and ". .venv/bin/activate" in header


def test_cpu_torch_index_matches_the_script() -> None:
    """The README's manual CPU-torch command uses the index and pin setup.sh uses."""
    script = (REPO / "scripts" / "setup.sh").read_text()
    (pin,) = set(re.findall(r"torch==[0-9.]+", script))
    (index,) = set(re.findall(r"https://download\.pytorch\.org/whl/cpu", script))
    assert f"pip install {pin} --index-url {index}" in README


def test_spec_example_validates_and_plans(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    (example,) = code_blocks(README, "yaml")
    (tmp_path / "tour.yaml").write_text(example)
    monkeypatch.chdir(tmp_path)
    assert main(["validate", "tour.yaml"]) == 0
    assert "tour.yaml: ok (mini_a: 4 conditions)" in capsys.readouterr().out
    assert main(["plan", "tour.yaml", "--summary"]) == 0


def test_study_sections_cited_exist() -> None:
    studies = (REPO / "docs" / "studies.md").read_text()
    headings = set(re.findall(r"^#+ (\d+(?:\.\d+)?)\.? ", studies, re.M))
    cited: dict[str, set[str]] = {}
    for f in tracked_files():
        if f.suffix in (".py", ".yaml", ".md") and f.name != "studies.md":
            for m in re.finditer(r"docs/studies\.md (§[\d.]+(?:, [a-z]+ §[\d.]+)*)", f.read_text(errors="replace")):
                for sec in re.findall(r"§(\d+(?:\.\d+)?)", m.group(1)):
                    cited.setdefault(sec, set()).add(str(f.relative_to(REPO)))
    assert {"1", "2", "3", "6.1", "6.2", "6.3"} <= set(cited), cited  # the three specs cite their studies
    missing = {sec: files for sec, files in cited.items() if sec not in headings}
    assert not missing, f"cited sections not in docs/studies.md: {missing}"


def test_no_reference_outside_the_repository() -> None:
    bad = [str(f.relative_to(REPO)) for f in tracked_files() if f != Path(__file__).resolve()
           and f.suffix in (".py", ".md", ".yaml", ".yml", ".toml", ".sh", ".cfg", ".txt", "")
           and re.search(r"\.\./shared|/work/shared|papers\.md", f.read_text(errors="replace"))]
    assert not bad, bad
