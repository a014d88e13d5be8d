"""Standalone resources (tools, documents, dictionaries): a plan reads each config once per command
and version of the file, and no caller can change what another one reads."""
from __future__ import annotations

import json
import os

from harness_core.context import make_context
from harness_core.resources import standalone


def write_tool(path, description):
    path.write_text(json.dumps({"name": "lookup_order", "description": description,
                                "delivery": {"app_message": True}}))


def counted_tool(project, monkeypatch):
    """A tool config in the project, a context, and the list of files standalone.load_file reads from now on."""
    path = project / "configs" / "tools" / "memo_tool.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    write_tool(path, "Looks up an order.")
    loads = []
    real_load = standalone.load_file
    monkeypatch.setattr(standalone, "load_file", lambda p: loads.append(p) or real_load(p))
    return path, make_context(project, quiet=True), loads


def test_a_config_is_built_once_per_version_and_each_caller_gets_its_own_copy(project, monkeypatch):
    path, ctx, loads = counted_tool(project, monkeypatch)

    name, first = standalone.desired(ctx, "tools", path)
    first["description"] = "changed by a caller"
    _, second = standalone.desired(ctx, "tools", path)
    assert name == "lookup_order" and second["description"] == "Looks up an order." and len(loads) == 1

    write_tool(path, "Looks up an order by its number.")  # a new version of the file (size and time)
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert standalone.desired(ctx, "tools", path)[1]["description"] == "Looks up an order by its number."
    assert len(loads) == 2
    standalone.desired(ctx, "tools", path, write=True)  # the body to send is always built afresh
    assert len(loads) == 3


def test_a_plan_reads_a_tool_file_once_for_its_name_and_its_body(project, monkeypatch):
    path, ctx, loads = counted_tool(project, monkeypatch)
    assert standalone.configs(ctx, "tools")["lookup_order"] == "configs/tools/memo_tool.json"
    assert standalone.desired(ctx, "tools", path)[0] == "lookup_order"
    assert loads.count(path) == 1


def test_a_config_path_is_shown_as_written_under_the_root_even_through_a_symlink(project, tmp_path):
    elsewhere = tmp_path / "shared-tools"
    elsewhere.mkdir()
    write_tool(elsewhere / "memo_tool.json", "Looks up an order.")
    (project / "configs" / "tools").mkdir(parents=True, exist_ok=True)
    (project / "configs" / "tools" / "linked").symlink_to(elsewhere, target_is_directory=True)
    ctx = make_context(project, quiet=True)
    assert standalone.rel(ctx, project / "configs" / "tools" / "linked" / "memo_tool.json") == \
        "configs/tools/linked/memo_tool.json"
    assert standalone.rel(ctx, project / "configs" / ".." / "configs" / "tools" / "x.json") == "configs/tools/x.json"
