"""RunContext: what every harness_core function and every hook gets to know about this run."""
from __future__ import annotations

import re
import sys
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from .env import Environment, load_environment
from .redact import redact_text
from .store import Store


MAX_NOTES = 200  # a long `invoke webhook` session keeps only the latest notes
EPHEMERAL = "TAVUS_HARNESS_EPHEMERAL"  # set by the demo and embedded runs: their sandbox dies with them


@dataclass
class RunContext:
    """The environment, the project root, the log store, the plugin manager and user notes."""

    env: Environment
    pm: object = None  # pluggy.PluginManager, built lazily by `plugins`
    notes: deque = field(default_factory=lambda: deque(maxlen=MAX_NOTES))
    quiet: bool = False
    program: str = "invoke"  # the command the user typed (`tune` or `invoke`): hints name it
    commands: frozenset = frozenset()  # its task names, so only `invoke <task>` is renamed

    def spoken(self, text: str) -> str:
        """`text` with each `invoke <task>` hint naming the program actually running (e.g. `tune plan`)."""
        if self.program == "invoke" or not self.commands:
            return text
        tasks = "|".join(sorted(map(re.escape, self.commands), key=len, reverse=True))
        return re.sub(rf"\binvoke (?=(?:{tasks})\b)", f"{self.program} ", text)

    @property
    def root(self) -> Path:
        return self.env.root

    @property
    def secrets(self) -> list[str]:
        return self.env.secrets()

    @property
    def store(self) -> Store:
        if not hasattr(self, "_store"):
            self._store = Store(self.root / "logs", self.secrets)
        return self._store

    @property
    def hook(self):
        if self.pm is None:
            from .plugins import get_plugin_manager
            self.pm = get_plugin_manager(self.env)
        return self.pm.hook

    def client(self):
        """The Tavus API client for this run (resolves the target; raises ConfigError if none)."""
        if not hasattr(self, "_client"):
            from .api import TavusClient
            from .env import resolve_target
            self._client = TavusClient(resolve_target(self.env), self.store)
        return self._client

    def note(self, text: str) -> None:
        """Tell the user one line (stderr, redacted), and keep it for summaries."""
        text = self.spoken(redact_text(text, self.secrets))
        self.notes.append(text)
        if not self.quiet:
            print(text, file=sys.stderr, flush=True)


def make_context(root: Path | None = None, environ: dict | None = None, quiet: bool = False) -> RunContext:
    """Build the context for one command run from the current directory and environment."""
    return RunContext(env=load_environment(root, environ), quiet=quiet)


def sandbox_context(ctx: RunContext, api_url: str) -> RunContext:
    """The context for a throw-away embedded sandbox at `api_url` (the demo's, an embedded run's).

    Built from the values already read: make_context() would read .env again and bring back a
    TAVUS_API_KEY to send to the sandbox. No real key, no WEBHOOK_URL, and nothing recorded in
    tavus-harness.lock.toml (the sandbox dies with the run). The plugins are shared.
    """
    values = {k: v for k, v in ctx.env.values.items() if k not in ("TAVUS_API_KEY", "WEBHOOK_URL")}
    values.update({"TAVUS_API_URL": api_url, EPHEMERAL: "1"})
    env = Environment(values=values, sources={k: ctx.env.sources.get(k, "env") for k in values},
                      root=ctx.root, dotenv_path=ctx.env.dotenv_path)
    return RunContext(env=env, pm=ctx.pm, quiet=ctx.quiet, program=ctx.program, commands=ctx.commands)
