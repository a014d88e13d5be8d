"""The sandbox's memory: every resource by id, behind one lock, optionally persisted to a JSON file."""
from __future__ import annotations

import json
import os
import secrets
import sys
import threading
from pathlib import Path

from ..errors import ConfigError
from ..schemas import MAX_DEPTH, too_deep
from ..store import atomic_write, writable
from .stock import stock_documents, stock_personas, stock_replicas

COLLECTIONS = ("personas", "conversations", "objectives", "guardrails", "documents", "replicas", "tools",
               "pronunciation_dictionaries", "pal_edits", "pal_skills", "deleted_memory_stores")


def new_id(prefix: str, hex_len: int = 11) -> str:
    """`prefix` + lowercase hex (conversations use 16 hex digits, the rest 11: our choice)."""
    return prefix + secrets.token_hex(hex_len)[:hex_len]


class SandboxState:
    """All records, by collection and id. Callers hold `lock` while reading or writing."""

    def __init__(self, state_file: str | os.PathLike | None = None):
        self.lock = threading.RLock()
        self._save_lock = threading.Lock()
        self.state_file = Path(state_file) if state_file else None
        self.personas: dict[str, dict] = {}  # the account's own personas
        self.stock_personas: dict[str, dict] = {}  # persona_type system, read-only
        self.conversations: dict[str, dict] = {}
        self.objectives: dict[str, dict] = {}
        self.guardrails: dict[str, dict] = {}
        self.documents: dict[str, dict] = {}
        self.replicas: dict[str, dict] = {}
        self.tools: dict[str, dict] = {}
        self.pronunciation_dictionaries: dict[str, dict] = {}
        # pal_id -> the PAL as edited in the dashboard and not yet live: the Builder draft or the
        # unpushed PAL Maker changes, by the sandbox's pal_editing setting (resources/personas.py)
        self.pal_edits: dict[str, dict] = {}
        self.pal_skills: dict[str, dict] = {}  # pal_id -> {skill_id: the attachment body as PUT}
        self.deleted_memory_stores: dict[str, str] = {}  # memory store name -> when it was deleted
        self.scripts: dict[str, dict] = {}  # "conversation:<id>" or "persona:<id>" -> script
        self._seed()
        if self.state_file:  # refused at start-up rather than losing writes later
            writable(self.state_file, "state", "tavus-sandbox-state.json")
        if self.state_file and self.state_file.is_file():
            self.load()

    def snapshot(self) -> dict:
        return {name: getattr(self, name) for name in (*COLLECTIONS, "scripts")}

    def load(self) -> None:
        try:
            data = json.loads(self.state_file.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # JSONDecodeError is a ValueError
            raise ConfigError(f"--state {self.state_file}: not a sandbox state file ({type(exc).__name__})",
                              hint="fix it, or move it away to start from the seeded state") from None
        if not isinstance(data, dict):
            raise ConfigError(f"--state {self.state_file}: not a sandbox state file (top level is not an object)",
                              hint="fix it, or move it away to start from the seeded state")
        for name in (*COLLECTIONS, "scripts"):
            if isinstance(data.get(name), dict):
                getattr(self, name).update(self._servable(name, data[name]))

    def _servable(self, name: str, records: dict) -> dict:
        """The records of a loaded collection, without those nested past MAX_DEPTH (an older sandbox
        stored them; listing them would fail for everyone), each one said on stderr."""
        kept = {}
        for rid, record in records.items():
            if too_deep(record, MAX_DEPTH) is None:
                kept[rid] = record
            else:
                print(f"sandbox: --state {self.state_file}: {name} {rid} dropped: nested deeper than "
                      f"{MAX_DEPTH} levels", file=sys.stderr, flush=True)
        return kept

    def save(self) -> None:
        """Write the state file atomically (temp file + replace) when one is configured.

        One save at a time, from snapshot to replace, so an older snapshot never lands after a newer
        one. Never call it with `lock` held (the save lock is always taken first).
        """
        if not self.state_file:
            return
        with self._save_lock:
            with self.lock:
                text = json.dumps(self.snapshot(), indent=1, sort_keys=True)
            try:
                atomic_write(self.state_file, text)
            except OSError as exc:  # the request still succeeds: the state lives on in memory
                print(f"sandbox: could not save state to {self.state_file}: {exc.strerror}", file=sys.stderr, flush=True)

    def reset(self) -> None:
        """Back to the seeded state, in place under the same lock, then saved (the state file is kept)."""
        with self.lock:
            for name in (*COLLECTIONS, "stock_personas", "scripts"):
                getattr(self, name).clear()
            self._seed()
        self.save()

    def _seed(self) -> None:
        self.stock_personas.update(stock_personas())
        self.documents.update(stock_documents())
        self.replicas.update(stock_replicas())

    def persona(self, pid: str) -> dict | None:
        """A user or stock persona by id."""
        return self.personas.get(pid) or self.stock_personas.get(pid)
