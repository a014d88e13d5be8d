"""The project: the folder a user's agent lives in, found from any of its sub-folders, and the
files that ship with the harness for a project that has none of its own.

The root is found like pytest's rootdir, walking up from the current folder: the nearest folder
with a `tavus-harness.toml` project file (written by `tune init`), else the nearest with the lock
file, else the nearest with both `configs/` and `presets/`; else the current folder. `.env`,
`logs/`, presets and the lock file are the root's; paths given on the command line stay relative
to where you are.

Built-in presets live in the package (`harness_core/builtin/presets/`). A preset is looked up in
the project's `presets/` first and in the built-in folder second, file by file, so a project
overrides (or adds to) the built-ins one file at a time.
"""
from __future__ import annotations

import os
from pathlib import Path

PROJECT_FILE = "tavus-harness.toml"
LOCK_FILE = "tavus-harness.lock.toml"
BUILTIN = Path(__file__).resolve().parent / "builtin"
BUILTIN_LABEL = " (built-in)"


def find_root(start: str | Path | None = None) -> Path:
    """The project root for `start` (default: the current folder), by the markers above."""
    here = Path(start if start is not None else os.getcwd()).resolve()
    chain = [here, *here.parents]
    markers = (lambda d: (d / PROJECT_FILE).is_file(),
               lambda d: (d / LOCK_FILE).is_file(),
               lambda d: (d / "configs").is_dir() and (d / "presets").is_dir())
    for marker in markers:
        for folder in chain:
            if marker(folder):
                return folder
    return here


def project_path(root: Path, value: str | Path) -> Path:
    """`value` as a path: absolute as given, otherwise relative to the project root."""
    path = Path(value)
    return path if path.is_absolute() else Path(root) / path


def preset_folders(root: Path, folder: str | Path) -> list[Path]:
    """Where files of `folder` (e.g. `presets/layers/llm/tools`) are looked up, in order: the
    project's folder, then the built-in one (only for folders under `presets/`)."""
    own = project_path(root, folder)
    relative = Path(folder)
    if relative.is_absolute() or not relative.parts or relative.parts[0] != "presets":
        return [own]
    return [own, BUILTIN / relative]


def find_file(folders: list[Path], name: str) -> Path | None:
    """The first `folder/name` that exists, or None."""
    return next((folder / name for folder in folders if (folder / name).is_file()), None)


def available(folders: list[Path], pattern: str = "*.json") -> list[str]:
    """Names (file stems) of the files matching `pattern` directly in any of `folders`."""
    return sorted({p.stem for folder in folders if folder.is_dir() for p in folder.glob(pattern)})


def display_path(path: Path, root: Path) -> str:
    """A path as the user would type it: relative to the project root, or a built-in file's own
    `presets/...` path marked "(built-in)"."""
    path = Path(path)
    for base, suffix in ((Path(root), ""), (BUILTIN, BUILTIN_LABEL)):
        try:
            return str(path.relative_to(base)) + suffix
        except ValueError:
            continue
    return str(path)


def listing_hint(folders: list[Path], root: Path, names) -> str:
    """`available in presets/... (and built-in): a, b`, or why there is nothing to list."""
    where = " and ".join(display_path(f, root) for f in folders if f.is_dir())
    if not where:
        return f"there is no {display_path(folders[0], root)} folder in {Path(root).resolve()}"
    return f"available in {where}: {', '.join(names) or 'none'}"


def preset_inventory(root: Path) -> list[dict]:
    """Every preset a project can use: {kind, name, source ("project" or "built-in"), path}.

    kind is `layers` (a full layers object), a layer name (`llm`, `tts`, ...) or `tools`. A
    project's file shadows the built-in file of the same path, which is then not listed.
    """
    rows: dict[str, dict] = {}
    for folder, source in ((BUILTIN / "presets/layers", "built-in"), (Path(root) / "presets/layers", "project")):
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*.json")):
            parts = path.relative_to(folder).parts
            kind = "layers" if len(parts) == 1 else ("tools" if parts[:2] == ("llm", "tools") else parts[0])
            rows["/".join(parts)] = {"kind": kind, "name": path.stem, "source": source,
                                     "path": display_path(path, root)}
    return sorted(rows.values(), key=lambda r: (r["kind"], r["name"]))
