"""Surveys and their answers: CSAT ("how satisfied are you", 1-5), CES ("how easy was it", 1-5), NPS (0-10)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum

__all__ = ["Question", "Survey", "SurveyTrigger", "TapOutcome", "TapResult"]


class Question(StrEnum):
    CSAT = "csat"
    CES = "ces"
    NPS = "nps"


class SurveyTrigger(StrEnum):
    AGENT_CLOSED = "agent_closed"  # an agent closed the ticket: CSAT about the help, then CES
    BOT_HELPED = "bot_helped"  # the customer said the bot's answer helped: CES, then CSAT
    ASSUMED_RESOLVED = "assumed_resolved"  # a bot answer, then silence: CES, then CSAT


LOW_SCORE = 2  # a CSAT or CES of 1-2 reaches a supervisor at once


@dataclass
class Survey:
    """One survey, attributed when it was sent: who helped, with what, in which language, how long it took."""

    id: str
    chat_id: int
    user_id: int
    trigger: SurveyTrigger
    questions: list[Question]
    lang: str
    dialog: str  # what was surveyed: "ticket:T12" or "answer:<search id>"
    sent_at: float
    expires_at: float
    channel: str = "telegram"
    customer_name: str = ""
    ticket_id: str = ""
    agent_id: int = 0
    agent_name: str = ""
    articles: list[str] = field(default_factory=list)
    waited_seconds: float = 0.0  # in the queue, for a ticket
    handled_seconds: float = 0.0  # from taken (or the first bot answer) to the end
    message_id: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    answered_at: float = 0.0
    comment: str = ""

    @property
    def done(self) -> bool:
        return all(q.value in self.answers for q in self.questions)

    @property
    def next_question(self) -> Question | None:
        return next((q for q in self.questions if q.value not in self.answers), None)

    @property
    def low(self) -> bool:
        return any(self.answers.get(q.value, 5) <= LOW_SCORE for q in (Question.CSAT, Question.CES))

    def to_redis(self) -> dict[str, str]:
        data = asdict(self)
        return {k: json.dumps(v, ensure_ascii=False) for k, v in data.items()}

    @classmethod
    def from_redis(cls, data: dict[str, str]) -> Survey:
        values = {k: json.loads(v) for k, v in data.items() if k in cls.__dataclass_fields__}
        values["trigger"] = SurveyTrigger(values["trigger"])
        values["questions"] = [Question(q) for q in values["questions"]]
        return cls(**values)


class TapOutcome(StrEnum):
    ACCEPTED = "accepted"
    REPEATED = "repeated"  # that question was answered already (double tap, replay)
    NOT_YOURS = "not_yours"  # someone other than the surveyed customer
    EXPIRED = "expired"
    UNKNOWN = "unknown"  # no such survey, or a value out of range


@dataclass(frozen=True)
class TapResult:
    outcome: TapOutcome
    survey: Survey | None = None
    became_low: bool = False  # this answer made the survey a low-score one (alert now)
