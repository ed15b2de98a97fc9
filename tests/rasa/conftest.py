"""Rasa's side of the integration: the action calls Rasa sends, and Rasa's HTTP API as a server on loopback.

``RasaConversation`` keeps a conversation the way Rasa's tracker does (events with timestamps, parse data,
slots) and builds the exact JSON Rasa posts to an action server; it applies an action's result the way Rasa
does (the action event, then its bot messages, then its events). ``RasaApi`` answers the two calls of Rasa's
HTTP API that the hand-off bridge makes, and records them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from rasa_sdk.executor import ActionExecutor

from bot.rasa.actions import (
    SLOT_ARTICLE,
    SLOT_CONFIDENCE,
    SLOT_CUSTOMER_NAME,
    SLOT_DECISION,
    SLOT_LANG,
    SLOT_SURVEY,
    SLOT_SURVEY_QUESTION,
    SLOT_TICKET,
)
from bot.runner import build_executor
from tests.harness import Running

RASA_VERSION = "3.21.0"  # the rasa-sdk release line the action server runs (rasa-sdk warns on others)
ACTIONS = ["action_kb_answer", "action_handoff", "action_ask_csat", "action_ask_ces", "action_record_survey_answer"]
SLOTS = [SLOT_DECISION, SLOT_CONFIDENCE, SLOT_ARTICLE, SLOT_LANG, SLOT_TICKET, SLOT_SURVEY, SLOT_SURVEY_QUESTION,
         SLOT_CUSTOMER_NAME]
# The domain as Rasa sends it with an action call (the shape of Domain.as_dict()).
DOMAIN: dict[str, Any] = {
    "version": "3.1",
    "session_config": {"session_expiration_time": 60, "carry_over_slots_to_new_session": True},
    "intents": ["greet", "ask_question", "human_handoff", "nlu_fallback", "zabota_kb_article", "zabota_handoff",
                "zabota_survey_answer"],
    "entities": ["zabota_article", "zabota_survey_answer"],
    "slots": {
        name: {"type": "any", "initial_value": None, "influence_conversation": False, "mappings": [{"type": "custom"}]}
        for name in SLOTS
    },
    "responses": {"utter_greet": [{"text": "Здравствуйте! Чем помочь?"}]},
    "actions": ACTIONS,
    "forms": {},
    "e2e_actions": [],
}


@dataclass
class RasaConversation:
    """One conversation as Rasa's tracker holds it."""

    sender_id: str
    channel: str = "rest"
    metadata: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    slots: dict[str, Any] = field(default_factory=lambda: {name: None for name in SLOTS})
    paused: bool = False
    latest_message: dict[str, Any] = field(default_factory=dict)
    _last: float = 0.0

    def __post_init__(self) -> None:
        self._action("action_session_start")
        self.events.append({"event": "session_started", "timestamp": self._now()})
        self._action("action_listen")

    def _now(self) -> float:
        """Rasa stamps events with its clock; the events of one turn get distinct, increasing times."""
        self._last = max(time.time(), self._last + 0.001)
        return self._last

    def _action(self, name: str, policy: str | None = "RulePolicy") -> None:
        self.events.append({"event": "action", "timestamp": self._now(), "name": name, "policy": policy,
                            "confidence": 1.0, "action_text": None, "hide_rule_turn": False})

    def customer_says(self, text: str, intent: str = "ask_question", entities: list[dict[str, Any]] | None = None,
                      confidence: float = 0.93) -> None:
        message_id = f"m{len(self.events)}"
        parse_data = {
            "intent": {"name": intent, "confidence": confidence},
            "entities": entities or [],
            "text": text,
            "message_id": message_id,
            "metadata": self.metadata,
            "intent_ranking": [{"name": intent, "confidence": confidence},
                               {"name": "nlu_fallback", "confidence": round(1 - confidence, 3)}],
        }
        self.events.append({"event": "user", "timestamp": self._now(), "metadata": self.metadata, "text": text,
                            "parse_data": parse_data, "input_channel": self.channel, "message_id": message_id})
        self.events.append({"event": "user_featurization", "timestamp": self._now(),
                            "use_text_for_featurization": False})
        self.latest_message = parse_data

    def taps(self, button: dict[str, str]) -> None:
        """A tap on a button: Rasa takes its payload "/intent{entities}" as the message, without NLU."""
        payload = button["payload"]
        intent, _, raw = payload[1:].partition("{")
        entities = [{"entity": k, "value": v, "start": 0, "end": len(payload)}
                    for k, v in json.loads("{" + raw).items()] if raw else []
        self.customer_says(payload, intent=intent, entities=entities, confidence=1.0)

    def bot_says(self, text: str, utter: str = "utter_greet") -> None:
        self._action(utter)
        self.events.append({"event": "bot", "timestamp": self._now(), "text": text,
                            "data": {"elements": None, "quick_replies": None, "buttons": None, "attachment": None,
                                     "image": None, "custom": None},
                            "metadata": {"utter_action": utter}})
        self._action("action_listen")

    def call(self, action: str) -> dict[str, Any]:
        """The JSON Rasa posts to the action server to run ``action`` now."""
        return {
            "next_action": action,
            "sender_id": self.sender_id,
            "tracker": {
                "sender_id": self.sender_id,
                "slots": dict(self.slots),
                "latest_message": self.latest_message,
                "latest_event_time": self.events[-1]["timestamp"],
                "followup_action": None,
                "paused": self.paused,
                "events": list(self.events),
                "latest_input_channel": self.channel,
                "active_loop": {},
                "latest_action": {"action_name": "action_listen"},
                "latest_action_name": "action_listen",
            },
            "domain": DOMAIN,
            "version": RASA_VERSION,
        }

    def apply(self, action: str, result: dict[str, Any]) -> None:
        """What Rasa does with an action's answer: logs the action, utters its messages, applies its events."""
        self._action(action, policy=None)
        for response in result["responses"]:
            self.events.append({"event": "bot", "timestamp": self._now(), "text": response.get("text"),
                                "data": {"buttons": response.get("buttons") or None}, "metadata": {}})
        for event in result["events"]:
            self.events.append({**event, "timestamp": self._now()})
            if event["event"] == "slot":
                self.slots[event["name"]] = event["value"]
            elif event["event"] == "pause":
                self.paused = True


@dataclass
class RasaApi:
    """Rasa's HTTP API (``rasa run --enable-api``) as the bridge uses it, answering on loopback."""

    url: str = ""
    appended: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    trackers: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    calls: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    async def append_events(self, request: web.Request) -> web.Response:
        sender = request.match_info["sender"]
        self.calls.append(("POST", sender, dict(request.query)))
        body = await request.json()
        for event in body if isinstance(body, list) else [body]:
            self.appended[sender].append({**event, "_query": dict(request.query)})
            self.trackers[sender].append({**event, "timestamp": time.time()})
        return web.json_response({"sender_id": sender, "events": None})

    async def tracker(self, request: web.Request) -> web.Response:
        sender = request.match_info["sender"]
        self.calls.append(("GET", sender, dict(request.query)))
        return web.json_response({"sender_id": sender, "events": self.trackers[sender]})

    def customer_writes(self, sender: str, text: str) -> None:
        """The customer writes while the conversation is paused: Rasa only logs it."""
        self.trackers[sender].append({"event": "user", "timestamp": time.time(), "text": text,
                                      "parse_data": {"intent": {"name": "nlu_fallback", "confidence": 0.3},
                                                     "entities": [], "text": text},
                                      "input_channel": "rest", "message_id": f"p{len(self.trackers[sender])}",
                                      "metadata": {}})

    def bot_texts(self, sender: str) -> list[str]:
        return [str(e.get("text")) for e in self.appended[sender] if e.get("event") == "bot"]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                raise AssertionError(f"Rasa's API never got what was expected; it got: {dict(self.appended)}")
            await asyncio.sleep(0.05)


@pytest.fixture
async def rasa_api() -> AsyncIterator[RasaApi]:
    api = RasaApi()
    app = web.Application()
    app.router.add_post("/conversations/{sender}/tracker/events", api.append_events)
    app.router.add_get("/conversations/{sender}/tracker", api.tracker)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    api.url = f"http://127.0.0.1:{port}"
    yield api
    await runner.cleanup()


@pytest.fixture
def executor(running: Running) -> ActionExecutor:
    """rasa-sdk's executor with Zabota's actions, built from the running application's services."""
    return build_executor(running.app)


async def run_action(executor: ActionExecutor, conversation: RasaConversation, action: str) -> dict[str, Any]:
    """Rasa runs ``action`` through the executor, and the conversation takes in what it returned."""
    result = await executor.run(conversation.call(action))
    assert result is not None
    answer = result.model_dump()
    conversation.apply(action, answer)
    return answer


def slots_set(answer: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e["value"] for e in answer["events"] if e["event"] == "slot"}


def texts(answer: dict[str, Any]) -> list[str]:
    return [str(r["text"]) for r in answer["responses"]]
