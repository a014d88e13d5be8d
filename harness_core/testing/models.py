"""The model the harness itself uses (to judge a dialogue, to play a simulated user): any
OpenAI-compatible chat-completions server, configured by

    TAVUS_HARNESS_MODEL_URL      base URL without the route, e.g. https://api.openai.com/v1
    TAVUS_HARNESS_MODEL          model name (default "gpt-4o-mini")
    TAVUS_HARNESS_MODEL_API_KEY  sent as a bearer token (a secret: never printed or stored)

Without TAVUS_HARNESS_MODEL_URL there is no model: judge expectations and simulated users report
"skipped: no model configured" instead of passing in silence.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass

import requests

from ..errors import HarnessError

NO_MODEL = "skipped: no model configured (set TAVUS_HARNESS_MODEL_URL, see docs/conversation-tests.md)"
MODEL_TIMEOUT = 60.0


class ModelFailed(HarnessError):
    """The harness's model did not answer with a chat completion."""


@dataclass
class Model:
    """Where the harness's model is and how to call it."""

    url: str
    name: str = "gpt-4o-mini"
    api_key: str | None = None
    timeout: float = MODEL_TIMEOUT

    @classmethod
    def from_env(cls, env) -> "Model | None":
        """The model TAVUS_HARNESS_MODEL_URL names, or None when it is unset."""
        url = env.get("TAVUS_HARNESS_MODEL_URL")
        if not url:
            return None
        return cls(url.rstrip("/"), env.get("TAVUS_HARNESS_MODEL") or "gpt-4o-mini", env.get("TAVUS_HARNESS_MODEL_API_KEY"))

    def chat(self, messages: list[dict]) -> str:
        """The text of one (non-streamed) chat completion; ModelFailed naming what answered otherwise."""
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        where = f"the harness's model at {self.url}"
        try:
            resp = requests.post(f"{self.url}/chat/completions", json={"model": self.name, "messages": messages},
                                 headers=headers, timeout=self.timeout)
        except requests.RequestException as exc:
            raise ModelFailed(f"{where} did not answer ({type(exc).__name__})") from None
        if resp.status_code != 200:
            raise ModelFailed(f"{where} answered {resp.status_code}: {resp.text[:120]}")
        try:
            content = resp.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise ModelFailed(f"{where} answered something that is not a chat completion: {resp.text[:120]}") from None
        if not isinstance(content, str):
            raise ModelFailed(f"{where} answered a chat completion without text")
        return content


def dialogue_text(turns) -> str:
    """The dialogue as plain lines (user, tool calls and results, agent), for a model to read."""
    lines = []
    for t in turns:
        lines.append(f"User: {t.user}")
        for call in t.tool_calls:
            lines.append(f"[tool call {call['name']}({json.dumps(call.get('arguments'), sort_keys=True)})]")
        for res in t.tool_results:
            lines.append(f"[tool result {res.get('name') or ''} {res.get('status')}: {str(res.get('output'))[:300]}]")
        lines.append(f"Agent: {t.reply}")
    return "\n".join(lines)


JUDGE_PROMPT = ("You grade a conversation between a user and an AI agent against a rubric. Answer with one JSON "
                'object and nothing else: {"pass": true or false, "reason": "one sentence citing the dialogue"}.')


def judge_with_model(model: Model, rubric: str, turns) -> tuple[bool, str]:
    """(passed, reason) from the model's verdict on `rubric` over the dialogue."""
    answer = model.chat([{"role": "system", "content": JUDGE_PROMPT},
                         {"role": "user", "content": f"Rubric: {rubric}\n\nConversation:\n{dialogue_text(turns)}"}])
    found = re.search(r"\{.*\}", answer, re.S)
    try:
        verdict = json.loads(found.group(0)) if found else None
    except ValueError:
        verdict = None
    if not isinstance(verdict, dict) or not isinstance(verdict.get("pass"), bool):
        raise ModelFailed(f"the judge's answer is not a verdict like {{\"pass\": true, \"reason\": ...}}: {answer[:120]!r}")
    return verdict["pass"], str(verdict.get("reason") or "")


DONE = "[done]"
SIMULATED_USER_PROMPT = ("You play a user talking to an AI agent, to test it. Your goal: {goal}\nWho you are: {persona}\n"
                         "Write only your next message to the agent, short and natural. When your goal is reached "
                         "or cannot be reached, answer exactly " + DONE + ".")


def next_user_message(model: Model, goal: str, persona: str, turns) -> str | None:
    """The simulated user's next words, or None when it says it is done."""
    messages = [{"role": "system", "content": SIMULATED_USER_PROMPT.format(goal=goal, persona=persona or "an ordinary user")}]
    for t in turns:  # from the simulated user's side, the agent is the other party
        messages += [{"role": "assistant", "content": t.user}, {"role": "user", "content": t.reply or "(no answer)"}]
    if not turns:
        messages.append({"role": "user", "content": "(the conversation starts; say your first message)"})
    text = model.chat(messages).strip()
    return None if not text or text.lower().startswith(DONE) else text
