"""The dialogue engine of one sandbox conversation: the PAL's side of the call.

PAL-directed app messages (CONTRACT §10.2/§10.3) arrive through `deliver()`. `tool_result` and
`interrupt` act at once; the rest are handled in the order sent, by one worker thread that starts
when the replica joins (messages sent earlier wait for it). For each `conversation.respond` (a
turn, `turn_idx` T) the in-call events are, in order:

1. `conversation.utterance {role: "user"}`;
2. the reply source: the persona's custom LLM (`layers.llm.base_url`), else the sandbox's model
   (TAVUS_SANDBOX_LLM_URL/_MODEL/_API_KEY), else the conversation's rules (rules.py), else the
   plain acknowledgement;
3. per tool call `conversation.tool_call`; app-message tools wait for the app's `tool_result`
   (at most TOOL_RESULT_WAIT simulated seconds, and never less than MIN_TOOL_RESULT_WAIT real
   ones: our choice, Tavus sets no hard limit), `delivery.api` tools are called by the sandbox and
   their answer emitted as `conversation.tool_result {…, source: "api"}`; then per `on_resolve`:
   generate_response feeds the result back (the model is called again; a rule's reply gets
   `{result}`), response_in_result speaks the output, add_to_context and fire_and_forget keep the
   reply the source gave with the call (fire_and_forget does not wait);
4. the matching rule's objective / guardrail events (also when a model gave the reply: a model
   cannot signal them, so the rules can);
5. `conversation.replica.started_speaking`, `conversation.utterance {role: "replica"}`,
   `conversation.replica.stopped_speaking` (which ends turn T). A failed reply source emits
   `conversation.error {turn_idx, message}` and then `stopped_speaking` (our choice).

The greeting (`custom_greeting`, else the persona's `greeting`) is said once a participant is
present (lifecycle.mark_present), as turn 0. `echo` makes the replica say the text; an
`interrupt` drops the reply of the turn in progress; `append_llm_context` /
`overwrite_llm_context` change the conversational context the model is given.
"""
from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from dataclasses import dataclass

from .records import system_prompt
from .rules import Rule, acknowledgement, first_match
from .toolcalls import call_api, in_call, openai_tools, output_text, persona_tools
from .triggers import complete_objective, trigger_guardrail

TOOL_RESULT_WAIT = 30.0      # simulated seconds the replica waits for an app's tool_result
MIN_TOOL_RESULT_WAIT = 5.0   # real seconds, whatever the time scale: the app answers in real time
MAX_TOOL_ROUNDS = 5          # model calls in one turn (each round may call tools)
_STOP = object()


@dataclass
class Outcome:
    """How a tool call ended: its output, success/error, and what the replica does with it."""

    output: object
    status: str
    on_resolve: str


class Dialogue:
    """One conversation's turns, rules, model history and pending tool calls."""

    def __init__(self, sandbox, cid: str):
        self.sb, self.cid = sandbox, cid
        self.rules: list[Rule] = []
        self.inbox: queue.Queue = queue.Queue()
        self.cond = threading.Condition()
        self.results: dict[str, dict] = {}   # tool_call_id -> the app's tool_result properties
        self.history: list[dict] = []        # the dialogue in OpenAI messages (after the system prompt)
        self.context: str | None = None      # conversational context after append/overwrite_llm_context
        self.controls: dict = {}             # sensitivity and emotion as last set (no effect on text)
        self.turn_idx = 0
        self.greeted = self.closed = self.busy = self.interrupted = False
        self.thread: threading.Thread | None = None

    # -- from the API -----------------------------------------------------------------------------
    def deliver(self, message: dict) -> None:
        """A PAL-directed app message (already validated by the room route)."""
        kind = message["event_type"].split(".", 1)[1]
        props = message.get("properties") or {}
        if kind == "tool_result":
            with self.cond:
                self.results[props["tool_call_id"]] = props
                self.cond.notify_all()
            return
        if kind == "interrupt":
            with self.cond:
                self.interrupted = self.busy
                self.cond.notify_all()
            return
        if kind == "respond":  # the user speaks: someone is in the call (lifecycle.mark_present)
            self.sb.participant_arrived(self.cid)
        self.inbox.put(message)

    def joined(self) -> None:
        """The replica is in the room (or a participant arrived after it): work through the inbox."""
        with self.cond:
            if self.closed:
                return
            if self.thread is None:
                self.thread = threading.Thread(target=self._run, name=f"sandbox-dialogue-{self.cid}", daemon=True)
                self.thread.start()
        self.inbox.put(None)  # a wake-up: greet if a participant is now present

    def close(self) -> None:
        """The call ended: stop waiting and working (what is still said afterwards is dropped)."""
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        self.inbox.put(_STOP)

    # -- the worker -------------------------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self.inbox.get()
            if item is _STOP or self.closed:
                return
            try:
                self._greet_if_due()
                if item is not None:
                    self.handle(item)
            except Exception as exc:  # noqa: BLE001 - one bad turn must not silence the rest of the call
                self.emit("conversation.error", {"turn_idx": self.turn_idx,
                                                 "message": f"sandbox error: {type(exc).__name__}"})

    def handle(self, message: dict) -> None:
        kind = message["event_type"].split(".", 1)[1]
        props = message.get("properties") or {}
        if kind == "respond":
            self.turn(props["text"])
        elif kind == "echo":
            text = props.get("text") if props.get("modality", "text") == "text" else None
            self.speak(text or "", self.turn_idx, props.get("inference_id") or new_inference())
        elif kind == "append_llm_context":
            base = self.context if self.context is not None else self.conversation().get("conversational_context") or ""
            self.context = "\n".join(p for p in (base, props["context"]) if p)
        elif kind == "overwrite_llm_context":
            self.context = props["context"]
        else:  # sensitivity, set_emotion: kept, nothing to say in text
            self.controls.update(props)

    def _greet_if_due(self) -> None:
        conv = self.conversation()
        if self.greeted or not conv.get("participant_present"):
            return
        self.greeted = True
        persona = self.persona(conv)
        greeting = conv.get("custom_greeting") or (persona or {}).get("greeting")
        if greeting:
            self.speak(greeting, 0, new_inference())
            self.history.append({"role": "assistant", "content": greeting})

    # -- one turn ---------------------------------------------------------------------------------
    def turn(self, text: str) -> None:
        """The replica's answer to the user's words (see the module docstring for the order of events)."""
        from .llm import ModelError, endpoint_for
        self.turn_idx += 1
        turn, inference = self.turn_idx, new_inference()
        with self.cond:
            self.busy, self.interrupted = True, False
        try:
            self.emit("conversation.utterance", {"role": "user", "speech": text}, turn, inference)
            self.record("user", text)
            self.history.append({"role": "user", "content": text})
            conv = self.conversation()
            persona = self.persona(conv)
            rule = first_match(self.rules, text)
            endpoint = endpoint_for(persona, self.sb.settings)
            reply = None
            try:
                if endpoint is not None:
                    reply = self.model_reply(endpoint, persona, conv, turn, inference)
                else:
                    reply = self.rule_reply(rule, text, persona, turn, inference)
            except ModelError as exc:
                self.emit("conversation.error", {"turn_idx": turn, "message": str(exc)}, turn, inference)
            if rule is not None and rule.objective_completed:
                complete_objective(self.sb, self.cid, rule.objective_completed["name"],
                                   rule.objective_completed.get("output_variables") or {}, turn, inference)
            if rule is not None and rule.guardrail_triggered:
                trigger_guardrail(self.sb, self.cid, rule.guardrail_triggered, text, turn, inference)
            if reply and not self.interrupted:
                self.speak(reply, turn, inference)
                if not self.history or self.history[-1].get("content") != reply or self.history[-1]["role"] != "assistant":
                    self.history.append({"role": "assistant", "content": reply})
            else:
                self.emit("conversation.replica.stopped_speaking", {}, turn, inference)
        finally:
            with self.cond:
                self.busy = False

    def rule_reply(self, rule: Rule | None, text: str, persona, turn: int, inference: str) -> str:
        """The reply the rules give (the plain acknowledgement without a match or a reply)."""
        if rule is None:
            return acknowledgement(text)
        reply = rule.reply
        if rule.tool_call:
            arguments = rule.tool_call.get("arguments") or {}
            outcome = self.run_tool(rule.tool_call["name"], arguments, json.dumps(arguments),
                                    f"call_{uuid.uuid4().hex[:16]}", persona, turn, inference)
            if outcome.on_resolve == "response_in_result":
                reply = output_text(outcome.output)
            elif reply:
                reply = reply.replace("{result}", output_text(outcome.output))
        return reply or acknowledgement(text)

    def model_reply(self, endpoint, persona, conv: dict, turn: int, inference: str) -> str:
        """The model's reply, calling tools as it asks (at most MAX_TOOL_ROUNDS model calls)."""
        from .llm import complete
        with self.sb.state.lock:
            tools = openai_tools(in_call(persona_tools(self.sb.state, persona)))
        content = ""
        for _ in range(MAX_TOOL_ROUNDS):
            messages = [{"role": "system", "content": system_prompt(persona, conv, self.context)}, *self.history]
            answer = complete(endpoint, messages, tools)
            content = answer.content
            if not answer.tool_calls or self.closed or self.interrupted:
                return content
            self.history.append({"role": "assistant", "content": content or None, "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in answer.tool_calls]})
            again, spoken = False, []
            for call in answer.tool_calls:
                try:
                    arguments = json.loads(call.arguments or "{}")
                except ValueError:
                    arguments = {}
                outcome = self.run_tool(call.name, arguments if isinstance(arguments, dict) else {}, call.arguments,
                                        call.id, persona, turn, inference)
                self.history.append({"role": "tool", "tool_call_id": call.id, "content": output_text(outcome.output)})
                again |= outcome.on_resolve == "generate_response"
                if outcome.on_resolve == "response_in_result":
                    spoken.append(output_text(outcome.output))
            if not again:
                return " ".join(spoken) or content
        return content

    def run_tool(self, name: str, arguments: dict, arguments_json: str, call_id: str, persona, turn: int,
                 inference: str) -> Outcome:
        """Emit the tool call, get its result (app or API), and say how the replica goes on."""
        with self.sb.state.lock:
            tool = next((t for t in persona_tools(self.sb.state, persona) if t["name"] == name), None)
        self.emit("conversation.tool_call", {"name": name, "arguments": arguments_json, "tool_call_id": call_id},
                  turn, inference)
        if tool is None:  # a model may name a tool the persona lacks
            return Outcome(f"unknown tool {name}", "error", "generate_response")
        on_resolve = tool.get("on_resolve") or "fire_and_forget"
        if (tool.get("delivery") or {}).get("api"):
            result = call_api(tool, arguments, conversation_id=self.cid, tool_call_id=call_id,
                              allow_loopback=self.sb.settings.allow_loopback_tools)
            self.emit("conversation.tool_result", {"tool_call_id": call_id, "name": name, "output": result.output,
                                                   "status": result.status, "source": "api"}, turn, inference)
            return Outcome(result.output, result.status, on_resolve)
        if on_resolve == "fire_and_forget":
            return Outcome("", "success", on_resolve)
        wait = max(TOOL_RESULT_WAIT * self.sb.settings.time_scale, MIN_TOOL_RESULT_WAIT)
        deadline = time.monotonic() + wait
        with self.cond:
            while call_id not in self.results and not self.closed and not self.interrupted:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.cond.wait(left)
            answer = self.results.pop(call_id, None)
        if answer is None:
            return Outcome(f"no conversation.tool_result for {call_id} within {wait:g}s", "error", on_resolve)
        return Outcome(answer.get("output", ""), answer.get("status") or "success", on_resolve)

    # -- saying things ----------------------------------------------------------------------------
    def speak(self, text: str, turn: int, inference: str) -> None:
        """The replica says `text`: started_speaking, its utterance (when there is text), stopped_speaking."""
        self.emit("conversation.replica.started_speaking", {}, turn, inference)
        if text:
            self.emit("conversation.utterance", {"role": "replica", "speech": text}, turn, inference)
            self.record("assistant", text, inference)
        self.emit("conversation.replica.stopped_speaking", {}, turn, inference)

    def emit(self, event_type: str, properties: dict, turn: int | None = None, inference: str | None = None) -> None:
        self.sb.emit_in_call(self.cid, event_type, properties, self.turn_idx if turn is None else turn, inference)

    def record(self, role: str, content: str, inference: str | None = None) -> None:
        """Add a line to the transcript, while the call is active (nothing is said after the end)."""
        with self.sb.state.lock:
            conv = self.sb.state.conversations.get(self.cid)
            if conv is not None and conv["status"] == "active":
                entry = {"role": role, "content": content, "timestamp": time.time()}
                if inference:
                    entry["inference_id"] = inference
                conv.setdefault("dialogue", []).append(entry)

    def conversation(self) -> dict:
        with self.sb.state.lock:
            return dict(self.sb.state.conversations.get(self.cid) or {})

    def persona(self, conv: dict):
        with self.sb.state.lock:
            return self.sb.state.persona(conv.get("persona_id") or "")


def new_inference() -> str:
    """An inference id (a UUID, as in the documented examples)."""
    return str(uuid.uuid4())
