"""Tasks: plan, apply, status, explain, pull."""
from __future__ import annotations

import json as jsonlib

from invoke import Exit, task

from ..errors import ChangesPending
from ..redact import redact, redact_field
from ..project import LOCK_FILE
from .base import HarnessTask, context, say, say_json
from .base import context as run_context
from .persona import PERSONA_HELP, persona_flags

ONLY_HELP = "limit to one kind: documents, pronunciation, tools, objectives, guardrails or pals (personas)"
DELETE_HELP = "also delete resources the lock file manages whose config file is gone (apply: with --confirm)"


@task(klass=HarnessTask, help={"only": ONLY_HELP, "json": "print as JSON",
                               "delete": "show resources whose config file is gone as `delete` (what apply --delete does)"})
def plan(c, only=None, json=False, delete=False):
    """Compare configs/ with tavus-harness.lock.toml and the remote side.

    Exit 0 when everything matches, 6 when changes are pending (for CI); a plan that cannot be made
    exits with its error's code (2 config, 3 API, ...; see docs/output.md).

    Classes: create, update (with a field-level diff), unchanged, remote-changed (edited outside the
    harness), both-changed, missing-remote; `blocked` when a config cannot be built yet, and
    duplicate-config for a second config of a resource (reported, never applied). A resource the
    lock file manages whose config file is gone is `missing-config` (reported, not pending), or
    with --delete `delete` (pending; `blocked` for a tool a PAL still uses).
    """
    from ..gitops.plan import make_plan, pending, render
    ctx = context()
    items = make_plan(ctx, only, delete=delete)
    if json:
        say_json(ctx, [{k: v for k, v in vars(i).items() if k != "orphan"} for i in items])
    else:
        for item in items:
            for line in render(item):
                say(ctx, line)
        gone = sum(i.status == "missing-config" for i in items)
        kept = f" ({gone} resource{'s' * (gone != 1)} whose config is gone left alone, see above)" if gone else ""
        say(ctx, ("changes pending" if pending(items) else "no changes: everything matches") + kept)
    if pending(items):
        raise Exit(code=ChangesPending.exit_code)  # already said above; CI tells "pending" from "error"


def _item(item) -> dict:
    """A plan item's stable keys, as `status --json` and `apply --json` print them (docs/output.md)."""
    return {"kind": item.kind, "name": item.name, "config": item.config, "status": item.status,
            "remote_id": item.remote_id}


@task(klass=HarnessTask, help={"only": ONLY_HELP, "dry_run": "print what would be sent, send nothing",
                               "force": "overwrite resources that were changed outside the harness",
                               "delete": DELETE_HELP,
                               "confirm": "with --delete: the names (or ids) of the resources to delete, comma-separated; "
                                          "without it an interactive terminal asks for them",
                               "json": "print the steps taken (or, with --dry-run, planned) as one JSON document"})
def apply(c, only=None, dry_run=False, force=False, delete=False, confirm=None, json=False):
    """Do what `invoke plan` shows in dependency order (documents, dictionaries, tools, policies,
    PALs); stop at the first failure. With --delete and --confirm, then delete the resources whose
    config file is gone, in reverse order (never a tool a PAL still uses)."""
    import sys

    from ..errors import ConfigError
    from ..gitops.plan import apply_plan, render
    ctx = context()
    steps = []
    if confirm and not delete:
        raise ConfigError("--confirm: only with --delete", hint="invoke apply --delete --confirm NAME[,NAME]")

    def step(item):
        verb = {"unchanged": "unchanged", "blocked": "blocked", "duplicate-config": "skipped",
                "missing-config": "missing-config"}.get(item.status) or ("would " if dry_run else "") + (
            "delete" if item.status == "delete" else "create" if item.status in ("create", "missing-remote") else "update")
        if verb == "delete":
            verb = "deleted"
        if json:
            steps.append({**_item(item), "action": verb, "diff": item.diff if dry_run else []})
            return
        say(ctx, f"{verb:<16} {item.kind:<10} {item.name!r} ({item.config})")
        if item.status == "missing-config":
            say(ctx, f"    {item.note}")
        elif dry_run and item.status == "create":
            say(ctx, f"    POST {'/personas' if item.kind == 'persona' else '/' + item.kind} "
                     f"{jsonlib.dumps(redact(item.body), ensure_ascii=False)}")
        elif dry_run:
            for line in render(item, width=None)[1:]:
                say(ctx, line)

    def ask(items):  # an interactive terminal types the names instead of --confirm
        if json or not sys.stdin.isatty():
            return None
        for item in items:
            print(f"delete {item.kind} {item.name!r} ({item.remote_id}; its config {item.config} is gone)", file=sys.stderr)
        return input("type the names to delete, comma-separated: ").split(",")

    confirmed = set(confirm.split(",")) if confirm else None
    apply_plan(ctx, only, dry_run=dry_run, force=force, on_step=step, delete=delete, confirmed=confirmed, ask=ask)
    if json:
        say_json(ctx, {"dry_run": bool(dry_run), "steps": steps, "lock_file": LOCK_FILE})
        return
    say(ctx, "dry run: nothing sent" if dry_run else f"done; {LOCK_FILE} is up to date")


@task(klass=HarnessTask, help={"only": ONLY_HELP, "json": "print the resources as one JSON array"})
def status(c, only=None, json=False):
    """The plan's classification per resource, without computing diffs (a resource whose config
    file is gone shows as missing-config)."""
    from ..gitops.plan import make_plan, render
    ctx = context()
    items = make_plan(ctx, only, with_diff=False)
    if json:
        say_json(ctx, [_item(item) for item in items])
        return
    for item in items:
        for line in render(item, with_diff=False):
            say(ctx, line)


EXPLAIN_HELP = {k: v for k, v in PERSONA_HELP.items() if k not in ("update", "dry_run", "json", "upsert", "force")}
EXPLAIN_HELP["config"] = "persona config file to explain (flags may be added, as for `invoke persona`)"
EXPLAIN_HELP["json"] = "print one JSON array of {path, value, source}"


@task(klass=HarnessTask, help=EXPLAIN_HELP)
def explain(c, config=None, persona_id=None, persona_name=None, system_prompt=None, context=None, pipeline_mode=None,
            default_replica_id=None, layers_preset=None, layers_dir=None, llm=None, tts=None, stt=None,
            perception=None, tools=None, tools_dir=None, objectives_id=None, guardrails_id=None,
            objectives_name=None, guardrails_name=None, document_ids=None, document_tags=None, json=False):
    """For every field of the final persona payload, show which source set it.

    Sources: flag, config file, preset file, environment, default, policy lookup, plugin; for
    tool_ids, document_ids and pronunciation_dictionary_id, the names the config gave (where each
    is declared, and which config named them).
    """
    from ..gitops.explain import explain_persona
    ctx = run_context()
    flags = persona_flags(locals())
    rows = explain_persona(ctx, config, flags)
    if json:
        say_json(ctx, [{"path": path, "value": redact_field(path.rpartition(".")[2], value), "source": source}
                       for path, value, source in rows])
        return
    for path, value, source in rows:
        shown = jsonlib.dumps(redact_field(path.rpartition(".")[2], value), ensure_ascii=False)[:50]
        say(ctx, f"{path:<40} {shown:<52} {source}")


@task(klass=HarnessTask, help={"persona_id": "the remote PAL/persona (required)",
                               "to": "config file to write (default configs/persona/<persona_id>.json)",
                               "force": "overwrite the --to file if it exists, and pull a persona another config manages",
                               "json": "print {persona_id, path, lock_file} as one JSON document (path relative to the project)"})
def pull(c, persona_id=None, to=None, force=False, json=False):
    """Write a remote PAL/persona and everything it references (tools, documents, objectives,
    guardrails, pronunciation dictionary) as configs; a `plan` right after says "unchanged".

    A config the project already has for a referenced resource is kept. Tool auth secrets come
    back as {"$env": NAME} placeholders: set NAME (e.g. in .env) before the next write.
    """
    from ..gitops.pull import pull_persona
    ctx = context()
    pulled = pull_persona(ctx, persona_id, to, force=force)
    for name in pulled.env:
        ctx.note(f"note: the API never returns tool secrets: set {name} (e.g. in .env) before `invoke apply` writes that tool")
    if json:
        say_json(ctx, {"persona_id": persona_id, "path": pulled.path, "lock_file": LOCK_FILE})
        return
    for path in pulled.written:
        say(ctx, f"wrote {path}")
    for path in pulled.kept:
        say(ctx, f"kept  {path} (the project's config for a referenced resource)")
    say(ctx, f"wrote {pulled.path}; it is now managed in {LOCK_FILE}")
