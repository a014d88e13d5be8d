"""The `tune init` template carries the same example agent as this repository, byte for byte."""
from __future__ import annotations

from pathlib import Path

from harness_core.scaffold import TEMPLATE, init_project, target_name

REPO = Path(__file__).resolve().parents[2]


def test_the_template_has_the_repositorys_example_configs_scenarios_and_tool_backend():
    for folder in ("configs", "scenarios", "examples"):
        ours = {p.relative_to(REPO): p.read_bytes() for p in (REPO / folder).rglob("*")
                if p.is_file() and "__pycache__" not in p.parts}
        shipped = {p.relative_to(TEMPLATE): p.read_bytes() for p in (TEMPLATE / folder).rglob("*") if p.is_file()}
        assert ours and ours == shipped, f"{folder}/ and the template's copy differ: update both"


def test_init_writes_dot_files_and_never_overwrites_without_force(tmp_path):
    first = init_project(tmp_path / "agent")
    root = tmp_path / "agent"
    assert {".gitignore", ".env.example", ".github/workflows/tavus-harness.yml", "tavus-harness.toml",
            "configs/persona/facilitator.example.json", "scenarios/facilitator_smoke.toml"} <= set(first.written)
    assert target_name(Path("dot-github/workflows/x.yml")) == Path(".github/workflows/x.yml")
    (root / "configs/persona/facilitator.example.json").write_text("{}")
    (root / ".gitignore").write_text("node_modules/\n.env\n")
    again = init_project(root)
    assert again.written == [] and "configs/persona/facilitator.example.json" in again.kept
    assert (root / "configs/persona/facilitator.example.json").read_text() == "{}", "kept as the user left it"
    lines = (root / ".gitignore").read_text().splitlines()
    assert lines[:2] == ["node_modules/", ".env"] and "logs/" in lines and lines.count(".env") == 1
    forced = init_project(root, force=True)
    assert "configs/persona/facilitator.example.json" in forced.written
    assert (root / "configs/persona/facilitator.example.json").read_text() != "{}"
