"""`tune init`: a new project from the template that ships in the package.

The template (`harness_core/builtin/project/`) holds the example agent: persona configs, a
conversation, objectives, guardrails, a project tool, scenarios, `.env.example`, `.gitignore`
entries and a CI workflow. Files whose name starts with `dot-` are written as `.name` (a wheel
carries no hidden files reliably). Nothing that exists is overwritten without `force`; an
existing `.gitignore` only gains the lines it lacks.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .project import BUILTIN

TEMPLATE = BUILTIN / "project"


@dataclass
class InitResult:
    """What `tune init` did, file by file (paths relative to the project folder)."""

    root: Path
    written: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    extended: list[str] = field(default_factory=list)


def target_name(relative: Path) -> Path:
    """A template path as it is written into a project: `dot-x` parts become `.x`."""
    return Path(*("." + part[4:] if part.startswith("dot-") else part for part in relative.parts))


def init_project(folder: str | Path, *, force: bool = False) -> InitResult:
    """Write the template into `folder` (created if needed); return what was written and what was kept."""
    root = Path(folder)
    if root.exists() and not root.is_dir():
        raise ConfigError(f"init {folder}: is a file, not a folder", hint="name a folder (it is created if needed)")
    result = InitResult(root)
    for source in sorted(p for p in TEMPLATE.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        relative = target_name(source.relative_to(TEMPLATE))
        target = root / relative
        text = source.read_text(encoding="utf-8")
        if target.is_file() and relative.name == ".gitignore" and not force:
            missing = [line for line in text.splitlines()
                       if line and not line.startswith("#") and line not in target.read_text(encoding="utf-8").splitlines()]
            if missing:
                existing = target.read_text(encoding="utf-8")
                target.write_text(existing + ("" if existing.endswith("\n") or not existing else "\n")
                                  + "\n".join(missing) + "\n", encoding="utf-8")
                result.extended.append(str(relative))
            else:
                result.kept.append(str(relative))
            continue
        if target.exists() and not force:
            result.kept.append(str(relative))
            continue
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"init {folder}: cannot write {relative} ({exc.strerror or exc})",
                              hint="pick a folder you can write to") from None
        result.written.append(str(relative))
    return result


def next_steps(result: InitResult, program: str = "tune") -> list[str]:
    """The three commands to run next, from where the user is."""
    here = Path.cwd().resolve()
    go = "" if result.root.resolve() == here else f"cd {result.root} && "
    return [f"{go}{program} demo", f"{go}{program} run scenarios/", f"{go}{program} plan"]
