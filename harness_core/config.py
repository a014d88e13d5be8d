"""Config files, layers and precedence, implemented once.

`resolve()` is the only place where precedence is decided. Layer loading (`load_file`) and key
checks (`check_keys`) give one-line errors that name the file, the field and the fix.
"""
from __future__ import annotations

import difflib
import errno
import json
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ConfigError
from .merge import deep_merge, leaf_paths
from .redact import is_secret_key, remember_secret
from .schemas import MAX_DEPTH, too_deep

MAX_CONFIG_BYTES = 1024 * 1024
MAX_CONFIG_DEPTH = MAX_DEPTH  # nesting of lists/objects (schemas.MAX_DEPTH says why)
# Lowest first. Written here and in resolve()'s docstring, nowhere else.
PRECEDENCE = ("default", "preset", ".env", "env", "config", "flag")


@dataclass
class Layer:
    """One source of values: its kind (one of PRECEDENCE), a label for messages, its values."""

    kind: str
    label: str
    values: dict
    key_labels: dict = field(default_factory=dict)  # key or dotted path -> label (e.g. "flag --persona-name")

    def label_for(self, path: str) -> str:
        """The label of `path`: its own key_labels entry, else its nearest parent's, else the layer's."""
        found = nearest(self.key_labels, path)
        if found is not None:
            return found
        top = path.split(".", 1)[0]
        if self.kind == "flag":
            return f"flag --{top.replace('_', '-')}"
        return self.label


@dataclass
class Resolved:
    """Merged values, and for every leaf path the label of the layer that set it."""

    values: dict
    sources: dict[str, str]

    def source(self, path: str) -> str:
        """Who set `path`: its own label, a parent's, or (for an object) the one that set a field in it."""
        found = nearest(self.sources, path)
        if found is not None:
            return found
        below = sorted(label for leaf, label in self.sources.items() if leaf.startswith(path + "."))
        return below[0] if below else "unset"


def nearest(table: dict, path: str):
    """The entry for dotted `path` or for its nearest parent (a.b.c, then a.b, then a), or None."""
    while path:
        if path in table:
            return table[path]
        path = path.rpartition(".")[0]
    return None


def resolve(layers: list[Layer]) -> Resolved:
    """Merge layers by precedence: flag > config file > environment > .env > preset > built-in default.

    Dicts merge recursively; lists and scalars from a higher layer replace lower ones. A value
    of None means "not given" and never overrides.
    """
    ordered = sorted(layers, key=lambda layer: PRECEDENCE.index(layer.kind))
    values: dict = {}
    sources: dict[str, str] = {}
    below = "built-in default"
    for layer in ordered:
        given = _drop_none(layer.values)
        if not given:
            continue
        values = deep_merge(values, given, base_source=below, overlay_source=layer.label)
        for path in leaf_paths(given):
            for known in [p for p in sources if p == path or p.startswith(path + ".")]:
                del sources[known]
            sources[path] = layer.label_for(path)
        below = layer.label
    return Resolved(values, sources)


def _drop_none(data: dict) -> dict:
    return {k: (_drop_none(v) if isinstance(v, dict) else v) for k, v in data.items() if v is not None}


def load_data(path: str | Path, *, what: str = "config"):
    """The JSON or TOML value in `path` (any JSON type), with one-line errors for every way it can be bad.

    The file must be a regular file (a directory, a FIFO, a device or a symlink loop is named as
    such, and nothing is read from it), at most MAX_CONFIG_BYTES long (reading stops there), valid
    UTF-8 and valid JSON/TOML, nested at most MAX_CONFIG_DEPTH levels, with no integer over
    Python's 4,300-digit conversion limit.
    """
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise _unreadable(path, what, exc) from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{path}: is a directory, not a {what} file", hint=f"name one file in it, e.g. {path}/...json")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{path}: is {_file_kind(info.st_mode)}, not a {what} file",
                          hint="name a regular JSON or TOML file")
    if info.st_size > MAX_CONFIG_BYTES:
        raise _too_big(path, what, info.st_size)
    try:  # O_NONBLOCK: should a FIFO take the file's place after the check, the open does not hang
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise ConfigError(f"{path}: is not a regular file", hint="name a regular JSON or TOML file")
            raw = fh.read(MAX_CONFIG_BYTES + 1)  # a file that grew meanwhile is never read whole
    except OSError as exc:
        raise _unreadable(path, what, exc) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise _too_big(path, what, len(raw))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not valid UTF-8 (byte {exc.start})", hint="save the file as UTF-8") from None
    if not text.strip():
        raise ConfigError(f"{path}: the file is empty", hint="put a JSON object in it, e.g. {}")
    toml = path.suffix.lower() == ".toml"
    import tomli  # here, not at start-up: most commands read only JSON configs
    try:
        data = tomli.loads(text) if toml else json.loads(text)
    except tomli.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", hint="fix the syntax at that line") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}",
                          hint="fix the syntax there") from None
    except RecursionError:
        raise _too_deep(path, "") from None
    except ValueError as exc:  # int(): more digits than sys.get_int_max_str_digits() allows
        raise ConfigError(f"{path}: invalid {'TOML' if toml else 'JSON'}: {str(exc).split(';')[0]}",
                          hint="write the number as a string, or a smaller one") from None
    deep = too_deep(data, MAX_CONFIG_DEPTH)
    if deep is not None:
        raise _too_deep(path, deep)
    return data


def load_file(path: str | Path, *, what: str = "config") -> dict:
    """Read a JSON or TOML object from `path`, with one-line errors for every way it can be bad (see load_data)."""
    data = load_data(path, what=what)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the top level must be an object, not {type(data).__name__}",
                          hint="wrap the settings in { ... }")
    return data


def _too_deep(path: Path, where: str) -> ConfigError:
    at = f" at {where[:80]}{'...' if len(where) > 80 else ''}" if where else ""
    return ConfigError(f"{path}: nested deeper than {MAX_CONFIG_DEPTH} levels{at}",
                       hint="flatten the data (no Tavus setting nests this deep)")


def _too_big(path: Path, what: str, size: int) -> ConfigError:
    return ConfigError(f"{path}: {what} file is {size} bytes, over the {MAX_CONFIG_BYTES} byte limit",
                       hint="split it or remove embedded data")


def _file_kind(mode: int) -> str:
    kinds = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
             (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
    return next((name for test, name in kinds if test(mode)), "not a regular file")


def _unreadable(path: Path, what: str, exc: OSError) -> ConfigError:
    """The one-line error for a file that cannot be opened, by its errno."""
    if exc.errno == errno.ENOENT:
        if path.is_symlink():
            return ConfigError(f"{path}: is a symlink to {os.readlink(path)}, which does not exist",
                               hint="fix the link or name the file itself")
        return ConfigError(f"{path}: {what} file not found", hint="check the path (it is relative to the current directory)")
    if exc.errno == errno.ELOOP:
        return ConfigError(f"{path}: is a symlink loop (too many levels of symbolic links)",
                           hint="fix the link or name the file itself")
    if exc.errno == errno.ENOTDIR:
        return ConfigError(f"{path}: a part of the path is a file, not a folder", hint="check the path")
    if exc.errno in (errno.EACCES, errno.EPERM):
        return ConfigError(f"{path}: permission denied", hint="make the file readable (chmod u+r)")
    return ConfigError(f"{path}: cannot read the {what} file ({exc.strerror or type(exc).__name__})",
                       hint="check the path")


def suggest(name: str, choices) -> str | None:
    """The closest valid name to `name`, for "did you mean" hints."""
    match = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1, cutoff=0.6)
    return match[0] if match else None


def check_keys(data: dict, allowed, where: str, *, prefix: str = "") -> None:
    """Raise ConfigError for the first key of `data` not in `allowed`, with a suggestion."""
    allowed = set(allowed)
    for key in data:
        if key not in allowed:
            close = suggest(key, allowed)
            hint = f"did you mean {close!r}?" if close else f"known keys: {', '.join(sorted(allowed))}"
            shown = key if isinstance(key, str) and key.isprintable() and key.strip() == key and key else repr(key)
            raise ConfigError(f"{where}: {prefix}{shown}: unknown key", hint=hint)


def expand_env_refs(data, env_get, where: str, _path: str = ""):
    """Replace `{"$env": "NAME"}` values by the environment's NAME; refuse literal secrets.

    Secrets (API keys, tokens, role ARNs) come only from the environment or `.env`; a config
    file names them with `{"$env": "NAME"}`. Every value read this way is remembered as a secret
    (redact.remember_secret), so it is redacted under any key, in output, logs/ and reports.
    """
    if isinstance(data, dict):
        if set(data) == {"$env"}:
            name = data["$env"]
            if not isinstance(name, str) or not name.strip():
                got = "an empty name" if isinstance(name, str) else f"a {type(name).__name__}"
                raise ConfigError(f"{where}: {_path or '$env'}: $env must be the name of an environment variable, not {got}",
                                  hint='write {"$env": "NAME"} with the name in quotes')
            value = env_get(name)
            if value is None:
                raise ConfigError(f"{where}: {_path}: environment variable {name} is not set",
                                  hint=f"add {name}=... to .env")
            key = _path.rpartition(".")[2]
            remember_secret(value, None if key.endswith("]") else key)  # a secret wherever it lands
            return value
        out = {}
        for key, value in data.items():
            path = f"{_path}.{key}" if _path else key
            if is_secret_key(key) and isinstance(value, str) and value:
                raise ConfigError(f"{where}: {path}: secrets do not belong in config files",
                                  hint='put the value in .env and write {"$env": "NAME"} here')
            out[key] = expand_env_refs(value, env_get, where, path)
        return out
    if isinstance(data, list):
        return [expand_env_refs(v, env_get, where, f"{_path}[{i}]") for i, v in enumerate(data)]
    return data


def gather(*, flags: dict, config_path: str | None, env, env_map: dict[str, str],
           defaults: dict | None = None, preset: dict | None = None, preset_label: str = "preset") -> tuple[Resolved, dict]:
    """Build the layers of one command and resolve them. Returns (resolved, raw config file data).

    `flags` are the task's options (None = not given; a `key_labels` attribute names the real flag
    of a path, e.g. enable_recording -> "flag --record"); `env_map` maps config keys to the
    environment variable that can set them (e.g. callback_url -> WEBHOOK_URL). The config
    file's `{"$env": NAME}` references are expanded here.
    """
    file_data: dict = {}
    layers = [Layer("default", "built-in default", dict(defaults or {}))]
    if preset:
        layers.append(Layer("preset", preset_label, preset))
    env_vals: dict = {}
    dotenv_vals: dict = {}
    labels: dict = {}
    for key, var in env_map.items():
        value = env.get(var)
        if value is None:
            continue
        (env_vals if env.sources.get(var) == "env" else dotenv_vals)[key] = value
        labels[key] = f"{env.sources.get(var)} {var}"
    layers.append(Layer(".env", ".env", dotenv_vals, key_labels=labels))
    layers.append(Layer("env", "environment", env_vals, key_labels=labels))
    if config_path:
        file_data = load_file(config_path)
        layers.append(Layer("config", str(config_path), expand_env_refs(file_data, env.get, str(config_path))))
    layers.append(Layer("flag", "flags", {k: v for k, v in flags.items() if v is not None},
                        key_labels=dict(getattr(flags, "key_labels", None) or {})))
    return resolve(layers), file_data
