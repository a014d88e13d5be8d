"""The tree keeps its shape: no import circle (lazy imports included), and plugins use only the public surface."""
from __future__ import annotations

import ast
from pathlib import Path

import harness_core

REPO = Path(__file__).resolve().parents[2]
PACKAGES = {"harness_core": REPO / "harness_core", "harness_plugins": REPO / "plugins"}


def module_files() -> dict[str, Path]:
    """Every module of harness_core and harness_plugins by its dotted name."""
    found = {}
    for package, folder in PACKAGES.items():
        for path in folder.rglob("*.py"):
            parts = [package, *path.relative_to(folder).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The project modules `name` imports anywhere in its body (functions too)."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    edges = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)] if node.level > 1 else base
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in known else module for alias in node.names]
        else:
            continue
        edges.update(t for t in targets if t in known and t != name)
    return edges


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative enough for ~80 nodes)."""
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def import_graph() -> dict[str, set[str]]:
    files = module_files()
    return {name: imports_of(name, path, set(files)) for name, path in files.items()}


def test_no_module_is_part_of_an_import_circle():
    graph = import_graph()
    assert len(graph) > 50, "the walk found the modules"
    assert cycles(graph) == []


def test_the_cycle_finder_finds_a_circle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_the_old_circle_is_gone():
    graph = import_graph()
    assert "harness_core.resources.persona" not in graph["harness_core.resources.lockfile"]
    assert "harness_core.resources.lockfile" not in graph["harness_core.context"]


def test_built_in_plugins_import_only_the_public_surface():
    public = set(harness_core.__all__)
    offences = []
    for path in sorted(PACKAGES["harness_plugins"].glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in PACKAGES:
                if node.module != "harness_core":
                    offences.append(f"{path.name}: from {node.module} import ...")
                else:
                    offences += [f"{path.name}: harness_core.{a.name} is not public" for a in node.names
                                 if a.name not in public]
            elif isinstance(node, ast.Import):
                offences += [f"{path.name}: import {a.name}" for a in node.names
                             if a.name.split(".")[0] in PACKAGES and a.name != "harness_core"]
    assert offences == []


def test_every_public_name_resolves():
    for name in harness_core.__all__:
        assert getattr(harness_core, name) is not None, name


def test_the_core_does_not_select_or_check_tools():
    graph = import_graph()
    assert not any(target.startswith("harness_plugins") for name, targets in graph.items()
                   if name.startswith("harness_core") for target in targets)
    persona = (REPO / "harness_core/resources/persona.py").read_text(encoding="utf-8")
    assert "select_tools" not in persona and "check_tool" not in persona
