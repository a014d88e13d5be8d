"""Where settings come from: the process environment and the project's `.env` file.

`.env` is read with `dotenv_values()` into a dict and never injected into `os.environ`;
a real environment variable beats the same name in `.env`.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values, set_key

from .errors import ConfigError
from .project import find_root
from .redact import remembered_secrets

DEFAULT_API_URL = "https://tavusapi.com/v2"
# Names of variables whose values are secrets (redacted everywhere).
SECRET_VARS = ("TAVUS_API_KEY", "WEBHOOK_TOKEN", "TAVUS_RECORDING_ROLE_ARN", "NGROK_AUTHTOKEN")
# Other names that hold secrets (e.g. OPENAI_API_KEY named by {"$env": ...}): only values this long
# count, so a short setting such as FEATURE_TOKEN=true is never scrubbed from text.
SECRET_SUFFIXES = ("_KEY", "_TOKEN", "_SECRET", "_PASSWORD")
MIN_GUESSED_SECRET = 8
SANDBOX_PLACEHOLDER_KEY = "sandbox-local-key"


@dataclass
class Environment:
    """The merged view of os.environ and `.env`, remembering where each value came from."""

    values: dict[str, str]
    sources: dict[str, str]  # name -> "env" | ".env"
    root: Path
    dotenv_path: Path

    def get(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        return default if value in (None, "") else value

    def flag(self, name: str) -> bool:
        """True for 1/true/yes/on (any case)."""
        return (self.get(name) or "").strip().lower() in ("1", "true", "yes", "on")

    def where(self, name: str) -> str:
        """Human label of the layer a variable came from, e.g. `env TAVUS_API_URL`."""
        src = self.sources.get(name)
        return f"{src} {name}" if src else "unset"

    def secrets(self) -> list[str]:
        """Literal secret values to scrub from anything printed or stored: those of secret variables,
        and every value a config read through `{"$env": ...}` (whatever its variable is called)."""
        return [*(v for k, v in self.values.items() if v and is_secret_var(k, v)), *remembered_secrets()]


@functools.lru_cache(maxsize=1024)  # pure, and asked for every variable each time secrets() is
def is_secret_var(name: str, value: str) -> bool:
    """Whether the variable `name` holds a secret: a known name, or a secret-looking one with a value of 8+ characters."""
    upper = name.upper()
    if upper in SECRET_VARS or upper.endswith("_ROLE_ARN"):
        return True
    guessed = upper.endswith(SECRET_SUFFIXES) or "API_KEY" in upper
    return guessed and len(value) >= MIN_GUESSED_SECRET


def load_environment(root: Path | None = None, environ: dict[str, str] | None = None) -> Environment:
    """Read `.env` under `root` (default: the project root found from the current folder) and
    overlay the real environment."""
    root = Path(root) if root else find_root()
    dotenv_path = Path((os.environ if environ is None else environ).get("TAVUS_HARNESS_DOTENV") or root / ".env")
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    if dotenv_path.is_file():
        try:
            for k, v in dotenv_values(dotenv_path).items():
                if v is not None:
                    values[k], sources[k] = v, ".env"
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{dotenv_path}: not valid UTF-8 ({exc.reason})",
                              hint="save the file as UTF-8") from None
    for k, v in (os.environ if environ is None else environ).items():
        values[k], sources[k] = v, "env"
    return Environment(values=values, sources=sources, root=root, dotenv_path=dotenv_path)


def write_dotenv(env: Environment, name: str, value: str) -> Path:
    """Set `name=value` in the project's `.env`, keeping every other line; the file is mode 0600."""
    path = env.dotenv_path
    if not path.exists():
        path.touch(mode=0o600)
    os.chmod(path, 0o600)
    set_key(str(path), name, value, quote_mode="never")
    env.values[name], env.sources[name] = value, ".env"
    return path


def is_loopback(url: str) -> bool:
    """True when `url` points at this machine (127.0.0.0/8, ::1 or localhost)."""
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        import ipaddress  # only when a URL is checked: it costs ~2 ms of every command's start

        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class Target:
    """Which API the harness talks to, and with which key."""

    base_url: str
    api_key: str = field(repr=False)
    url_source: str
    key_source: str

    @property
    def is_sandbox(self) -> bool:
        return is_loopback(self.base_url)

    @property
    def label(self) -> str:
        return f"local sandbox at {self.base_url}" if self.is_sandbox else f"Tavus API at {self.base_url}"


API_VARIABLES = ("TAVUS_API_KEY", "TAVUS_API_URL", "TAVUS_PUBLIC_API_BASE_URL")


def api_configured(env: Environment) -> bool:
    """Whether any API is configured at all (a dry run can go on offline without one)."""
    return any(env.get(name) for name in API_VARIABLES)


def resolve_target(env: Environment) -> Target:
    """Pick the API base URL and key, or stop before anything is sent.

    URL: TAVUS_API_URL, else TAVUS_PUBLIC_API_BASE_URL (the official Tavus CLI's name), else
    the public Tavus API. Key: TAVUS_API_KEY; against a loopback sandbox a placeholder is fine.
    """
    key = env.get("TAVUS_API_KEY")
    for name in ("TAVUS_API_URL", "TAVUS_PUBLIC_API_BASE_URL"):
        url = env.get(name)
        if url:
            url_source = env.where(name)
            break
    else:
        url, url_source = None, "default"
    if not key and not url:
        raise ConfigError(
            "no TAVUS_API_KEY and no TAVUS_API_URL set, so there is no API to talk to",
            hint="put TAVUS_API_KEY=... in .env for the real API, or run `invoke sandbox` and set "
                 "TAVUS_API_URL to the URL it prints, or try `invoke demo`")
    url = (url or DEFAULT_API_URL).rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"{url_source}: {url!r} is not an http(s) URL",
                          hint="use e.g. TAVUS_API_URL=http://127.0.0.1:8800/v2")
    if not key:
        if not is_loopback(url):
            raise ConfigError(f"TAVUS_API_KEY is not set, and {url_source} points at {url}",
                              hint="put TAVUS_API_KEY=... in .env (only a local sandbox works without a key)")
        return Target(url, SANDBOX_PLACEHOLDER_KEY, url_source, "placeholder (local sandbox)")
    return Target(url, key, url_source, env.where("TAVUS_API_KEY"))
