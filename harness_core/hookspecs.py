"""Every hook of tavus-harness, documented.

Each docstring says when the hook is called (and from which harness_core function), what it
receives, what it returns, its mode, and which built-in implements it. Implementations may
accept any subset of the arguments. Arguments are only ever added, never renamed or removed.

`context` is always a `harness_core.RunContext`: the environment, the project root,
the secrets to keep out of output, and `context.note(text)` to tell the user something.
"""
from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("tavus_harness")


@hookspec
def harness_config_keys(kind: str) -> list[str] | None:
    """Declare harness-only config keys this plugin consumes for a resource `kind`.

    Called by resources.payload.allowed_keys() before a config file or flag set is checked, with `kind`
    one of "persona", "conversation". Returns a list of top-level key names (or None). Keys
    declared here are accepted in config files, handed to harness_build_payload in `config`,
    and never sent to the API.
    Mode: broadcast; the core takes the union.
    Built-ins: harness_plugins.tools ("tools", "tools_dir"), harness_plugins.recording
    ("enable_recording"), harness_plugins.meeting_context ("meeting").
    """


@hookspec
def harness_build_payload(kind: str, config: dict, payload: dict, context) -> dict | None:
    """Contribute a fragment to the API request body being built for `kind`.

    Called by resources.payload.assemble() once per request, after the resolved config has been turned
    into `payload` (the body so far, do not mutate it). `config` holds the resolved config
    including harness-only keys. Returns a dict fragment that is deep-merged into the payload
    (dicts merge; lists are replaced, so a plugin extending a list returns the whole list), or None.
    Mode: broadcast; where fragments set the same field, the plugin called first (tryfirst) wins.
    Built-ins: harness_plugins.tools (persona `layers.llm.tools`), harness_plugins.recording
    (conversation `properties.enable_recording` + storage), harness_plugins.meeting_context
    (conversation `conversational_context`).
    """


@hookspec(firstresult=True)
def harness_merge_layers(base: dict, overlay: dict, source: str, context) -> dict | None:
    """Merge persona layer object `overlay` (from `source`) into `base`, returning a new dict.

    Called by resources.payload.merge_layers() for each layer source in precedence order: the layers
    preset, the config's full `layers` object, then modular layers (llm/tts/stt/perception).
    Returns the merged layers dict; must not mutate its arguments.
    Mode: firstresult; the first non-None answer wins.
    Built-in: harness_plugins.tools (trylast): field-by-field deep merge where LLM tools are
    appended and a tool with an existing function name replaces it with a warning.
    """


@hookspec(firstresult=True)
def harness_resolve_policy(kind: str, name: str, candidates: list[dict], context) -> dict | None:
    """Pick the single objectives set or guardrail called `name` among `candidates`.

    Called by resources.policies.resolve_by_name() when a config or flag attaches a policy by name
    (`--objectives-name`, `--guardrails-name`). `kind` is "objectives" or "guardrails";
    `candidates` are the list endpoint's rows. Returns the chosen row, or None for no opinion.
    Raise harness_core.ConfigError to reject (none or several matches).
    Mode: firstresult.
    Built-in: harness_plugins.policies (trylast): exact name match, exactly one.
    """


@hookspec
def harness_handle_callback(event: dict, context) -> None:
    """React to one Tavus conversation callback that the receiver has stored.

    Called by callbacks.receiver.dispatch() for every accepted event, after it was committed to
    logs/callbacks.sqlite3 (a re-sent copy already stored is not handed over again). `event` is the callback envelope as posted (conversation_id, event_type,
    message_type, timestamp, properties). Implementations run on the receiver's single worker
    thread, one event at a time in arrival order, after the 2xx was sent. Returns nothing (the
    value is ignored); an exception is logged as a plugin error and does not stop the others.
    Mode: broadcast.
    Built-in: harness_plugins.transcript (prints the transcript of
    application.transcription_ready).
    """


@hookspec(firstresult=True)
def harness_public_url(port: int, path: str, context) -> str | None:
    """Return a public https base URL that forwards to the local receiver on `port`.

    Called by callbacks.publicurl.public_url() when `invoke webhook --tunnel` is given. `path` is the
    callback path the URL will be completed with (the caller appends path and token).
    Returns the base URL (scheme + host), or None when this plugin cannot provide one.
    Raise harness_core.PluginError with a how-to when a tunnel is expected but absent.
    Mode: firstresult.
    Built-in: harness_plugins.tunnel (trylast): a running ngrok agent's local API.
    """


@hookspec
def harness_expectation_kinds() -> dict | None:
    """Register extra expectation kinds that scenario files may use under `[expect]`.

    Called by testing.expectations.all_kinds() once per `invoke run` (not per scenario; under the pytest
    plugin, once per scenario item), before the scenario files are loaded and checked.
    Takes no arguments. Returns a dict mapping a kind name to a checker
    `checker(value, observed) -> harness_core.testing.expectations.Verdict` (observed has `.events` in
    arrival order and `.final_status`), or None. A plugin's kind replaces a built-in of the
    same name.
    Mode: broadcast; the dicts are merged.
    Built-in: none (the built-in kinds live in harness_core.testing.expectations.BUILTIN_KINDS).
    """


@hookspec(firstresult=True)
def harness_judge(rubric: str, dialogue: list[dict], context) -> dict | None:
    """Judge a scenario's dialogue against a natural-language `rubric` (a `judge` expectation).

    Called by testing.runner.make_judge() (through the Observed.judge of each run) once per `judge` expectation,
    per turn or for the whole conversation, after the turns ran. `dialogue` is the list of turns
    so far, each `{index, user, reply, tool_calls, tool_results, objectives, guardrails}`.
    Returns `{"passed": bool, "reason": str}`, or None to leave it to the next judge.
    Mode: firstresult; the first non-None answer wins.
    Built-in: none; without a plugin the core asks the OpenAI-compatible model in
    TAVUS_HARNESS_MODEL_URL, and without that the expectation is reported "skipped: no model configured".
    """


@hookspec(firstresult=True)
def harness_tool_call(name: str, arguments: dict, tool_call_id: str, conversation_id: str, context) -> dict | None:
    """Answer a tool call the agent made, playing the developer's app (app-message tools).

    Called by the method testing.dialogue.ToolBackends.call for each `conversation.tool_call` seen during a
    scenario's turn, before the scenario's `[tools.NAME] url` is tried. `arguments` are the parsed
    arguments. Returns `{"output": str | dict, "status": "success" | "error"}` (sent back as
    `conversation.tool_result` and recorded), or None to let the scenario's URL answer.
    Mode: firstresult.
    Built-in: none (the scenario's `[tools.NAME] url` answers when no plugin does).
    """
