"""What a persona/PAL config names instead of ids: tools, documents, a pronunciation dictionary,
and the PAL vocabulary (`pal_name`, `default_face_id`, `pal_id`) for the persona one.

- `tools`: names of tools. `tools_as` chooses how: `attached` (each is a standalone tool from
  `configs/tools/` or the API, attached through `/v2/pals/{id}/tools`, compared as `tool_ids`),
  `inline` (each is a preset from `presets/layers/llm/tools/`, the tools plugin's
  `layers.llm.tools`), or `auto` (default): a preset name stays inline, as it always did, and a
  name only `configs/tools/` declares is attached.
- `documents`: names of knowledge-base documents (`configs/documents/` or the API), sent as
  `document_ids`; `document_tags` already reaches documents by tag.
- `layers.tts.pronunciation_dictionary`: the name of a dictionary, sent as
  `layers.tts.pronunciation_dictionary_id`.
"""
from __future__ import annotations

from ..config import Resolved
from ..errors import ConfigError
from . import standalone

PAL_NAMES = {"pal_name": "persona_name", "default_face_id": "default_replica_id", "pal_id": "persona_id"}
TOOLS_AS = ("auto", "attached", "inline")


def persona_vocabulary(resolved: Resolved) -> Resolved:
    """The same values with PAL names (pal_name, default_face_id, pal_id) as persona names.

    Both spellings from the same place is an error naming the two; a flag beats a config file.
    """
    values, sources = dict(resolved.values), dict(resolved.sources)
    for pal, persona in PAL_NAMES.items():
        if pal not in values:
            continue
        value, src = values.pop(pal), resolved.source(pal)
        if values.get(persona) is not None and value is not None:
            other = resolved.source(persona)
            if other.startswith("flag") == src.startswith("flag"):
                raise ConfigError(f"{src}: {pal} and {persona}: both are set", hint=f"keep one of them ({pal} is the current name)")
            if other.startswith("flag"):
                continue
        if value is not None:
            values[persona] = value
            for path in [p for p in sources if p == pal or p.startswith(pal + ".")]:
                sources[persona + path[len(pal):]] = sources.pop(path)
    return Resolved(values, sources)


def split_tools(ctx, values: dict, where: str, *, create: bool, origins: dict | None = None) -> list[str] | None:
    """Take the standalone tools out of `values["tools"]` (the rest stay for the tools plugin) and
    return their ids (None when the config attaches none). `origins` gets `tool_ids`' label."""
    mode = values.pop("tools_as", None) or "auto"
    if mode not in TOOLS_AS:
        raise ConfigError(f"{where}: tools_as: {mode!r} is not one of {', '.join(TOOLS_AS)}",
                          hint='"attached" for configs/tools/, "inline" for presets/layers/llm/tools/')
    names = values.get("tools")
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    if not isinstance(names, list) or mode == "inline":
        return None
    declared = standalone.configs(ctx, "tools")
    attached = [n for n in names if mode == "attached" or (isinstance(n, str) and n in declared and not _preset(ctx, values, n))]
    if not attached:
        return None
    rest = [n for n in names if n not in attached]
    if rest:
        values["tools"] = rest
    else:
        values.pop("tools", None)
    if origins is not None:
        origins["tool_ids"] = f"tools by name: {by_name(ctx, 'tools', attached)}, named in {where}"
    return [standalone.resolve(ctx, "tools", n, where, "tools", create=create) for n in attached]


def by_name(ctx, kind: str, names: list) -> str:
    """`a (configs/tools/a.json), b (the API)`: each name and where it is declared."""
    declared = standalone.configs(ctx, kind)
    return ", ".join(f"{n} ({declared.get(n) or 'found on the API'})" for n in names)


def document_ids(ctx, values: dict, where: str, *, create: bool, origins: dict | None = None) -> list[str] | None:
    """`document_ids` plus the ids of the documents named in `documents` (None when neither is set).
    `origins` gets `document_ids`' label."""
    names = values.pop("documents", None)
    if names is None:
        return None
    if not isinstance(names, list):
        raise ConfigError(f"{where}: documents: must be a list of document names", hint='e.g. "documents": ["Handbook"]')
    ids = list(values.get("document_ids") or [])
    if origins is not None:
        origins["document_ids"] = (f"documents by name: {by_name(ctx, 'documents', names)}, named in {where}"
                                   + (" after the ids in document_ids" if ids else ""))
    for name in names:
        found = standalone.resolve(ctx, "documents", name, where, "documents", create=create)
        if found not in ids:
            ids.append(found)
    return ids


def dictionary(ctx, layers: dict, where: str, *, create: bool, origins: dict | None = None) -> None:
    """`layers.tts.pronunciation_dictionary` (a name) becomes `pronunciation_dictionary_id`, in place.
    `origins` gets its label."""
    tts = layers.get("tts") if isinstance(layers, dict) else None
    if not isinstance(tts, dict) or "pronunciation_dictionary" not in tts:
        return
    name = tts.pop("pronunciation_dictionary")
    if origins is not None:
        origins["layers.tts.pronunciation_dictionary_id"] = (
            f"pronunciation dictionary by name: {by_name(ctx, 'pronunciation', [name])}, named in {where}")
    tts["pronunciation_dictionary_id"] = standalone.resolve(ctx, "pronunciation", name, where,
                                                            "layers.tts.pronunciation_dictionary", create=create)


def _preset(ctx, values: dict, name: str) -> bool:
    """True when an inline tool file (project or built-in) is called `name`."""
    from ..project import preset_folders
    from .layers import DEFAULT_LAYERS_DIR
    tools_dir = values.get("tools_dir") or f"{values.get('layers_dir') or DEFAULT_LAYERS_DIR}/llm/tools"
    for folder in preset_folders(ctx.root, tools_dir):
        if (folder / f"{name}.json").is_file():
            return True
    return False
