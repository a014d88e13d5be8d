"""Tasks: tools, documents, pronunciation (the resources a PAL references by name)."""
from __future__ import annotations

from invoke import task

from .base import HarnessTask, context, say, say_json

HELP = {
    "dry_run": "show what would change, send nothing",
    "force": "overwrite it even if it was changed outside the harness since the last write",
    "json": "print what was done as one JSON document",
}


def _run(kind: str, config, dry_run, force, json, **extra):
    from ..errors import ConfigError
    from ..resources.standalone import KINDS, apply_resource, summary
    ctx = context()
    if not config:
        raise ConfigError("--config: required", hint=f"e.g. --config {KINDS[kind].folder}/NAME.json")
    results = [apply_resource(ctx, kind, path, dry_run=dry_run, force=force, **extra) for path in _paths(config)]
    if json:
        say_json(ctx, [{"kind": r.kind, "action": r.action, "name": r.name, "id": r.remote_id, "diff": r.diff}
                       for r in results])
        return
    for result in results:
        for line in summary(result):
            say(ctx, line)


def _paths(config: str) -> list[str]:
    """`--config a.json,b.json` -> both files."""
    return [part.strip() for part in config.split(",") if part.strip()]


@task(klass=HarnessTask, help={**HELP, "config": "tool config(s), comma-separated, e.g. configs/tools/schedule_meeting.json",
                               "send_secret": "send the tool even if nothing changed, to rotate its auth secret"})
def tools(c, config=None, dry_run=False, force=False, json=False, send_secret=False):
    """Create the tool in --config, or update the one of the same name (checked before anything is sent).

    Secrets come from the environment: "secret": {"$env": "TOOL_HMAC_SECRET"}. The API never shows
    them back, so a change of the variable alone is sent with --send-secret.
    """
    _run("tools", config, dry_run, force, json, send_secret=send_secret)


@task(klass=HarnessTask, help={**HELP, "config": "document config(s), e.g. configs/documents/handbook.json"})
def documents(c, config=None, dry_run=False, force=False, json=False):
    """Create the knowledge-base document in --config and wait until it is ready (or update its name/tags)."""
    _run("documents", config, dry_run, force, json)


@task(klass=HarnessTask, help={**HELP, "config": "dictionary config(s), e.g. configs/pronunciation/brand_names.json"})
def pronunciation(c, config=None, dry_run=False, force=False, json=False):
    """Create the pronunciation dictionary in --config, or update the one of the same name (JSON Patch)."""
    _run("pronunciation", config, dry_run, force, json)
