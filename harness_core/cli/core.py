"""Project-wide tasks: init, presets, doctor, plugins, sandbox, demo."""
from __future__ import annotations

from invoke import task

from ..errors import CheckFailed, ConfigError
from ..plugins import describe_plugins
from .base import HarnessTask, context, not_help, number, say, say_json


@task(klass=HarnessTask, positional=["folder"], help={
    "folder": "where to create the project (default: the current folder; created if needed)",
    "force": "overwrite files that already exist (otherwise they are kept as they are)",
    "json": "print what was written, extended and kept, and the next commands, as one JSON document",
})
def init(c, folder=None, force=False, json=False):
    """Start a project: the example agent's configs, a scenario, .env.example, .gitignore entries, a CI workflow.

    Nothing that exists is overwritten without --force; an existing .gitignore gains only the
    lines it lacks. Prints the next three commands.
    """
    from ..scaffold import init_project, next_steps
    ctx = context()
    result = init_project(not_help(folder, "init") if folder else ".", force=force)
    program = ctx.program
    if json:
        say_json(ctx, {"root": str(result.root.resolve()), "written": result.written, "extended": result.extended,
                       "kept": result.kept, "next": next_steps(result, program)})
        return
    for name in result.written:
        say(ctx, f"wrote    {name}")
    for name in result.extended:
        say(ctx, f"extended {name}")
    for name in result.kept:
        say(ctx, f"kept     {name} (exists; --force to overwrite)")
    say(ctx, f"Project ready in {result.root.resolve()}. Next:")
    for step in next_steps(result, program):
        say(ctx, f"  {step}")


@task(klass=HarnessTask, help={"json": "print the presets as JSON"})
def presets(c, json=False):
    """List the layer presets and tools a persona can name, and whether each is the project's or built-in."""
    from ..project import preset_inventory
    ctx = context()
    rows = preset_inventory(ctx.root)
    if json:
        say_json(ctx, rows)
        return
    for row in rows:
        say(ctx, f"{row['kind']:<11} {row['name']:<24} {row['source']:<9} {row['path']}")


@task(klass=HarnessTask, help={"json": "print the findings as JSON"})
def doctor(c, json=False):
    """Check which API the harness would use, the key's source, reachability, WEBHOOK_URL and plugins."""
    from ..testing.doctor import diagnose
    ctx = context()
    findings = diagnose(ctx)
    if json:
        say_json(ctx, [f.__dict__ for f in findings])
    else:
        for f in findings:
            say(ctx, f"{'ok ' if f.ok else 'BAD'} {f.topic:<10} {f.detail}" + (f"\n    fix: {f.fix}" if f.fix else ""))
    bad = [f for f in findings if not f.ok]
    if bad:
        raise CheckFailed(f"{len(bad)} problem(s) found: {', '.join(f.topic for f in bad)}",
                          hint="see the fixes above")


@task(klass=HarnessTask, name="plugins", help={"third_party": "only the plugins installed by other packages",
                                               "json": "print as JSON"})
def plugins_(c, third_party=False, json=False):
    """List the loaded plugins: name, where it came from (built-in or its package), version, hooks."""
    ctx = context()
    ctx.hook  # loads the plugins
    rows = [r for r in describe_plugins(ctx.pm) if not (third_party and r["builtin"])]
    if json:
        say_json(ctx, rows)
        return
    if not rows:
        say(ctx, "no third-party plugins loaded")
    for r in rows:
        origin = "built-in" if r["builtin"] else f"{r['distribution'] or 'registered'} {r['version'] or ''}".strip()
        say(ctx, f"{r['name']:<16} {origin:<22} {', '.join(r['hooks'])}")


@task(klass=HarnessTask, help={
    "port": "port to listen on (0 picks a free one; default 8800)",
    "host": "address to bind (default 127.0.0.1)",
    "state": "JSON file that keeps the sandbox's state between runs",
    "api_key": "accept only this x-api-key (default: any non-empty key)",
    "max_concurrent": "active conversations allowed before the limit error (default 3)",
    "time_scale": "multiply simulated durations (0.01 makes a 60 s call last 0.6 s)",
    "faults": 'inject API faults, e.g. "429:0.2,500:0.1,latency:200ms,reset:0.05"',
    "callback_faults": 'inject callback faults, e.g. "late:0.2,dup:0.1,reorder:0.1"',
    "allow_loopback_tools": "accept and call delivery.api tools on http:// loopback/private URLs (Tavus refuses them)",
    "persona_get_shape": 'GET /v2/personas/{id} answers "flat" (default, as the official CLI reads it) '
                         'or "wrapped" in {"data": [persona]} (as the API reference shows)',
    "pal_editing": 'a PATCH to a PAL edited in the dashboard: "maker" (default: 409 maker_changes, '
                   '?force=true) or "draft" (edits the Builder draft, answers publish_url)',
})
def sandbox(c, port=None, host=None, state=None, api_key=None, max_concurrent=None, time_scale=None,
            faults=None, callback_faults=None, allow_loopback_tools=False, persona_get_shape=None, pal_editing=None):
    """Serve the local Tavus sandbox (an offline emulator of the Tavus API) until Ctrl-C."""
    from ..sandbox import SandboxSettings, serve_forever

    ctx = context()
    settings = SandboxSettings(
        api_key=api_key, state_file=state, faults=faults, callback_faults=callback_faults,
        allow_loopback_tools=bool(allow_loopback_tools), **SandboxSettings.model_from(ctx.env),
        **({"persona_get_shape": persona_get_shape} if persona_get_shape is not None else {}),
        **({"pal_editing": pal_editing} if pal_editing is not None else {}),
        **({"max_concurrent": number(max_concurrent, "max-concurrent", 3, low=1)} if max_concurrent is not None else {}),
        **({"time_scale": number(time_scale, "time-scale", 1.0, whole=False)} if time_scale is not None else {}))

    def ready(url):
        say(ctx, f"Tavus sandbox listening on {url} (Ctrl-C to stop)")
        say(ctx, f"TAVUS_API_URL={url}")

    host, port = host or "127.0.0.1", number(port, "port", 8800, high=65535)
    try:
        serve_forever(settings, host, port, on_ready=ready)
    except OSError as exc:  # the port is taken (or not ours to bind): one line, as `webhook` says it
        raise ConfigError(f"--port {port}: cannot listen on {host}:{port} ({exc.strerror or exc})",
                          hint="pick another --port (0 takes a free one) or stop what uses it") from None


@task(klass=HarnessTask, help={"timeout": "seconds to wait for each callback (default 20)",
                               "json": "print the outcome as one JSON document (ids, status, the callbacks)"})
def demo(c, timeout=None, json=False):
    """Create the example persona and a conversation on an embedded local sandbox and show its callbacks.

    Starts the sandbox and a callback receiver on free 127.0.0.1 ports. Nothing reaches Tavus.
    """
    from ..testing.demo import run_demo, summary_lines
    ctx = context()
    result = run_demo(ctx, timeout=number(timeout, "timeout", 20.0, whole=False))
    if json:
        say_json(ctx, result.__dict__)
        return
    for line in summary_lines(result):
        say(ctx, line)
