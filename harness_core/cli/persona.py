"""Tasks: persona, objectives, guardrails (each imports its area when it runs, to keep start-up short)."""
from __future__ import annotations

from invoke import task

from .base import HarnessTask, say, say_json, show_request, split_list
from .base import context as run_context

PERSONA_HELP = {
    "config": "persona config file (JSON or TOML), e.g. configs/persona/facilitator.example.json",
    "update": "update the existing persona (found by persona_id, else by exact persona_name) with a JSON Patch "
              "of the fields the config sets, instead of creating one",
    "persona_id": "with --update: the persona to update (otherwise it is found by persona_name)",
    "persona_name": "persona_name (the display name; --update finds the persona by it)",
    "system_prompt": "system_prompt (required unless pipeline_mode is echo)",
    "context": "context appended to the system prompt",
    "pipeline_mode": "pipeline_mode: full (default) or echo",
    "default_replica_id": "default_replica_id, e.g. r4317e64d25a (env: TAVUS_DEFAULT_REPLICA_ID)",
    "layers_preset": "load a full layers object from <layers-dir>/NAME.json, e.g. assistant_with_tools",
    "layers_dir": "folder of layer presets (default presets/layers)",
    "llm": "LLM layer preset: <layers-dir>/llm/NAME.json, merged field by field",
    "tts": "TTS layer preset: <layers-dir>/tts/NAME.json",
    "stt": "STT layer preset: <layers-dir>/stt/NAME.json",
    "perception": "perception layer preset: <layers-dir>/perception/NAME.json",
    "tools": "comma-separated tools (file or function names in --tools-dir), appended to layers.llm.tools",
    "tools_dir": "folder of tool files (default <layers-dir>/llm/tools)",
    "objectives_id": "attach this objectives set (objectives_id)",
    "guardrails_id": "attach this guardrail: a flat guardrail's uuid goes to guardrail_ids, "
                     "a legacy set's id to guardrails_id (decided by looking it up)",
    "objectives_name": "attach the one objectives set with exactly this name",
    "guardrails_name": "attach the one guardrail (set or flat) with exactly this name",
    "document_ids": "comma-separated document_ids",
    "document_tags": "comma-separated document_tags",
    "dry_run": "print the exact payload (or JSON Patch) that would be sent, and send nothing",
    "json": "print the raw API response as JSON (with --dry-run: the request, as one JSON document)",
    "upsert": "create, or update the persona this name already maps to in tavus-harness.lock.toml",
    "force": "with --update: overwrite changes made outside the harness (dashboard edits, a Builder draft, "
             "409 maker_changes) instead of refusing",
}


FIELD_FLAGS = ("persona_id", "persona_name", "system_prompt", "context", "pipeline_mode", "default_replica_id",
               "layers_preset", "layers_dir", "llm", "tts", "stt", "perception", "tools", "tools_dir",
               "objectives_id", "guardrails_id", "objectives_name", "guardrails_name", "document_ids", "document_tags")


def persona_flags(arguments: dict) -> dict:
    """The persona flags among a task's arguments, as config keys (comma lists split); shared with explain."""
    return {k: split_list(arguments[k]) if k in ("tools", "document_ids", "document_tags") else arguments[k]
            for k in FIELD_FLAGS}


@task(klass=HarnessTask, help=PERSONA_HELP)
def persona(c, config=None, update=False, persona_id=None, persona_name=None, system_prompt=None, context=None,
            pipeline_mode=None, default_replica_id=None, layers_preset=None, layers_dir=None, llm=None, tts=None,
            stt=None, perception=None, tools=None, tools_dir=None, objectives_id=None, guardrails_id=None,
            objectives_name=None, guardrails_name=None, document_ids=None, document_tags=None, dry_run=False,
            json=False, upsert=False, force=False):
    """Create a persona from a config file and flags, or update it with --update (`invoke pal` in PAL names).

    Precedence: flag > config file > environment/.env > preset > built-in default. Layers: the
    --layers-preset object, then the config's `layers`, then --llm/--tts/--stt/--perception
    presets merge field by field; tools are appended by function name. Payloads and responses
    are logged to logs/.
    """
    ctx = run_context()
    flags = persona_flags(locals())
    _run_persona(ctx, flags, config, update, dry_run, json, upsert, force)


def _run_persona(ctx, flags, config, update, dry_run, json, upsert, force):
    """The body of `invoke persona` and `invoke pal`."""
    from ..resources.persona import apply_persona, summary_lines
    result = apply_persona(ctx, flags, config, update=update, dry_run=dry_run, upsert=upsert, force=force)
    if dry_run:
        method, path = ("PATCH", f"/personas/{result.persona_id}") if result.patch is not None else ("POST", "/personas")
        show_request(ctx, json, action=f"{result.action} persona", method=method, path=path, body=result.sent)
        ctx.note(f"dry run: {result.action} persona {result.persona_id or ''} (nothing sent)".replace("  ", " "))
    elif json:
        say_json(ctx, result.response if result.response is not None else
                 {"persona_id": result.persona_id, "status": result.action, "patch": result.patch})
    else:
        for line in summary_lines(result):
            say(ctx, line)


PAL_HELP = {**{k: v for k, v in PERSONA_HELP.items() if k not in ("persona_id", "persona_name", "default_replica_id")},
            "config": "PAL config file (JSON or TOML; PAL or persona names), e.g. configs/pals/facilitator.json",
            "update": "update the existing PAL (found by pal_id, else by exact pal_name) instead of creating one",
            "pal_id": "with --update: the PAL to update (otherwise it is found by pal_name)",
            "pal_name": "pal_name (the display name; --update finds the PAL by it)",
            "face_id": "default_face_id, the face (replica) the PAL appears as (env: TAVUS_DEFAULT_REPLICA_ID)"}


@task(klass=HarnessTask, help=PAL_HELP)
def pal(c, config=None, update=False, pal_id=None, pal_name=None, system_prompt=None, context=None,
        pipeline_mode=None, face_id=None, layers_preset=None, layers_dir=None, llm=None, tts=None,
        stt=None, perception=None, tools=None, tools_dir=None, objectives_id=None, guardrails_id=None,
        objectives_name=None, guardrails_name=None, document_ids=None, document_tags=None, dry_run=False,
        json=False, upsert=False, force=False):
    """Create a PAL from a config file and flags, or update it with --update (`invoke persona` in PAL names).

    PAL = persona, face = replica; configs may use either set of names (pal_name/persona_name,
    default_face_id/default_replica_id, pal_id/persona_id).

    Tools named in the config that live in configs/tools/ are created if needed and attached
    through /v2/pals/{id}/tools; documents and a pronunciation dictionary are found by name.
    """
    ctx = run_context()
    arguments = dict(locals(), persona_id=pal_id, persona_name=pal_name, default_replica_id=face_id)
    _run_persona(ctx, persona_flags(arguments), config, update, dry_run, json, upsert, force)


POLICY_HELP = {
    "config": "the config file (JSON or TOML)",
    "dry_run": "print the exact payload (or JSON Patch) that would be sent, and send nothing",
    "json": "print the raw API response as JSON (with --dry-run: the request, as one JSON document)",
    "force": "overwrite it even if it was changed outside the harness since the last write",
}


@task(klass=HarnessTask, help={**POLICY_HELP, "config": "objectives config, e.g. configs/objectives/facilitator_core.json"})
def objectives(c, config=None, dry_run=False, json=False, force=False):
    """Create the objectives set in --config, or update the one with the same `name` (JSON Patch)."""
    from ..resources.policies import apply_policy
    ctx = run_context()
    result = apply_policy(ctx, "objectives", config, dry_run=dry_run, force=force)
    _show_policy(ctx, result, dry_run, json)


@task(klass=HarnessTask, help={**POLICY_HELP, "config": "guardrails config, e.g. configs/guardrails/facilitator_safety.json"})
def guardrails(c, config=None, dry_run=False, json=False, force=False):
    """Create the guardrails in --config, or update the ones with the same name (JSON Patch).

    A config with `name` and `data` is a guardrails set (attached with guardrails_id); one with
    a top-level `guardrail_name` is a single flat guardrail (attached with guardrail_ids).
    """
    from ..resources.policies import apply_policy
    ctx = run_context()
    result = apply_policy(ctx, "guardrails", config, dry_run=dry_run, force=force)
    _show_policy(ctx, result, dry_run, json)


def _show_policy(ctx, result, dry_run, json):
    from ..resources.policies import policy_summary
    if dry_run:
        method, path = (("PATCH", f"/{result.kind}/{result.policy_id}") if result.patch is not None
                        else ("POST", f"/{result.kind}"))
        show_request(ctx, json, action=f"{result.action} {result.kind}", method=method, path=path, body=result.sent)
        ctx.note(f"dry run: {result.action} {result.kind} {result.name!r} (nothing sent)")
    elif json:
        say_json(ctx, result.response if result.response is not None else
                 {"id": result.policy_id, "status": result.action, "patch": result.patch})
    else:
        for line in policy_summary(result):
            say(ctx, line)
