"""The harness as a user installs it: the wheel in a fresh virtualenv outside this repository,
a project started with `tune init` in an empty folder, used from its root and from a sub-folder."""
from __future__ import annotations

import os
import site
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """bin/ of a fresh venv with only the wheel installed (its dependencies are this venv's, offline)."""
    work = tmp_path_factory.mktemp("installed")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(work / "dist"), str(REPO)], check=True, capture_output=True, timeout=300)
    [wheel] = (work / "dist").glob("tavus_harness-*.whl")
    venv = work / "venv"
    subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", str(venv)],
                   check=True, timeout=120)
    [purelib] = venv.glob("lib/python3*/site-packages")
    (purelib / "deps-from-test-venv.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(venv / "bin" / "python"), "install", "--no-deps",
                    "--no-index", "-q", str(wheel)], check=True, capture_output=True, timeout=300)
    return venv / "bin"


def tune(bin_dir: Path, cwd: Path, *args: str, **env_extra) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TAVUS_", "WEBHOOK_", "VIRTUAL_ENV"))}
    env.update(env_extra)
    proc = subprocess.run([str(bin_dir / "tune"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc


@pytest.fixture(scope="module")
def agent(installed, tmp_path_factory) -> Path:
    """An empty folder outside the repository, made a project by the installed `tune init`."""
    root = tmp_path_factory.mktemp("user") / "my-agent"
    root.mkdir()
    made = tune(installed, root, "init")
    assert made.returncode == 0, made.stderr
    assert made.stdout.splitlines()[-3:] == ["  tune demo", "  tune run scenarios/", "  tune plan"]
    (root / "src" / "deep").mkdir(parents=True)
    return root


def test_the_installed_harness_is_the_wheel(installed, tmp_path):
    where = subprocess.run([str(installed / "python"), "-c", "import harness_core; print(harness_core.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert str(installed.parent) in where.stdout and str(REPO) not in where.stdout


def test_demo_runs_in_an_empty_folder(installed, tmp_path):
    result = tune(installed, tmp_path, "demo")
    assert result.returncode == 0 and "conversation" in result.stdout, result.stderr
    assert not (tmp_path / "configs").exists(), "the built-in example was used, nothing was written but logs"


def test_init_writes_a_project_and_keeps_what_exists(installed, agent):
    for name in (".gitignore", ".env.example", ".github/workflows/tavus-harness.yml", "tavus-harness.toml",
                 "configs/persona/facilitator.example.json", "scenarios/facilitator_smoke.toml"):
        assert (agent / name).is_file(), name
    again = tune(installed, agent, "init")
    assert again.returncode == 0 and "wrote" not in again.stdout and "kept" in again.stdout


@pytest.mark.parametrize("where", [".", "src/deep"])
def test_the_demo_runs_from_the_root_and_a_sub_folder(installed, agent, where):
    assert tune(installed, agent / where, "demo").returncode == 0
    assert not (agent / where / "logs").exists() or where == ".", "logs/ is the root's"


@pytest.mark.parametrize("where", [".", "src/deep"])
def test_scenarios_run_from_the_root_and_a_sub_folder(installed, agent, where):
    ran = tune(installed, agent / where, "run", "scenarios/")
    assert ran.returncode == 0 and "3 passed, 0 failed, 1 skipped" in ran.stdout, ran.stdout + ran.stderr
    assert (agent / "logs" / "runs").is_dir() and not (agent / where / "logs").exists() or where == "."


@pytest.mark.parametrize("where", [".", "src/deep"])
def test_plan_sees_the_projects_configs_from_anywhere(installed, agent, sandbox, where):
    plan = tune(installed, agent / where, "plan", TAVUS_API_URL=sandbox.url)
    assert plan.returncode == 6, plan.stdout + plan.stderr
    assert "configs/persona/facilitator.example.json" in plan.stdout and "create" in plan.stdout
