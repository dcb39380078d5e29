"""Plugins: a package installed beside repro adds a task, a teacher and a filter through entry points,
and a spec naming them validates, plans and runs through the real Snakemake."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REPO, copy_workflow

PLUGIN = REPO / "tests" / "plugins" / "repro_demo_plugin"
SPEC = REPO / "tests" / "plugins" / "plugin_spec.yaml"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a process that sees the plugin installed (pip install --target, on PYTHONPATH)."""
    site = tmp_path_factory.mktemp("plugin-site")
    build = tmp_path_factory.mktemp("plugin-src")
    src = build / "repro_demo_plugin"
    shutil.copytree(PLUGIN, src)  # build in a copy: pip writes build/ and *.egg-info next to the sources
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--no-index", "--target", str(site), str(src)], check=True)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO / "src"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


def repro(env: dict[str, str], *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "repro", *args], env=env, cwd=cwd, capture_output=True, text=True)


def test_without_the_plugin_the_names_are_unknown() -> None:
    r = subprocess.run([sys.executable, "-m", "repro", "validate", str(SPEC)], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2, r.stderr
    assert "unknown task 'addition'" in r.stderr and "Traceback" not in r.stderr


def test_plugin_components_are_listed_and_validated(plugin_env: dict[str, str], tmp_path: Path) -> None:
    r = repro(plugin_env, "list")
    assert r.returncode == 0, r.stderr
    lines = dict(line.split(": ", 1) for line in r.stdout.splitlines())
    assert "addition" in lines["tasks"] and "direct" in lines["teachers"] and "max_chars" in lines["filters"]
    assert repro(plugin_env, "validate", str(SPEC)).returncode == 0
    # the plugin's own Args models check a spec's arguments like the built-in ones
    bad = tmp_path / "bad.yaml"
    bad.write_text(SPEC.read_text().replace("max_chars: 60", "max_charz: 60"))
    r = repro(plugin_env, "validate", str(bad))
    assert r.returncode == 2
    assert "filters.0.args.max_charz: unknown key of filter 'max_chars'; allowed keys: max_chars" in r.stderr


def test_broken_plugin_is_a_clear_error(plugin_env: dict[str, str], tmp_path: Path) -> None:
    """A plugin whose module fails to import: exit 2, one line naming the entry point, no traceback."""
    site = tmp_path / "site"
    info = site / "broken_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[repro.tasks]\nbroken = broken_plugin_mod\n")
    (site / "broken_plugin_mod.py").write_text("raise RuntimeError('boom')\n")
    env = dict(plugin_env, PYTHONPATH=f"{site}{os.pathsep}{plugin_env['PYTHONPATH']}")
    r = repro(env, "validate", str(SPEC))
    assert r.returncode == 2, r.stderr
    assert "plugin broken = 'broken_plugin_mod'" in r.stderr and "RuntimeError: boom" in r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_plugin_spec_runs_through_snakemake(plugin_env: dict[str, str], tmp_path: Path) -> None:
    wd = copy_workflow(tmp_path)
    shutil.copy(SPEC, wd / "plugin_spec.yaml")
    plan = json.loads(repro(plugin_env, "plan", "plugin_spec.yaml", "--json", cwd=wd).stdout)
    assert {j["stage"] for j in plan["jobs"]} == {"generate", "filter", "train", "eval", "report"}
    r = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", "--config", "specs=plugin_spec.yaml"],
                       cwd=wd, env=plugin_env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    by_stage = {j["stage"]: j for j in plan["jobs"]}
    gen = wd / by_stage["generate"]["outdir"]
    traces = [json.loads(x) for x in (gen / "traces.jsonl").read_text().splitlines()]
    assert len(traces) == 32 and all(t["teacher"] == "direct" and "\\boxed{" in t["completion"] for t in traces)
    stats = json.loads((wd / by_stage["filter"]["outdir"] / "stats.json").read_text())
    assert stats["input"] == 32 and stats["kept"] + stats["dropped"] == 32
    metrics = json.loads((wd / by_stage["eval"]["outdir"] / "add-id" / "metrics.json").read_text())
    assert metrics["task"] == "addition" and metrics["n_items"] == 8
    assert (wd / "reports" / "plugin_demo.html").is_file()
