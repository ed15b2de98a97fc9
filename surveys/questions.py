"""Survey messages as every channel shows them: the words, and one-tap buttons whose data records the answer.

A button's data is ``s:<survey>:<question>:<value>`` (``tap_data``), the same on every channel: Telegram sends
it back as callback data, Rasa inside a button's payload, the web as a tap. ``SurveyQuestions`` says what comes
after each tap, so that every channel asks, thanks and offers a comment alike.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.core.texts import Texts
from surveys.models import Question, Survey, SurveyTrigger

__all__ = ["SurveyMessage", "SurveyQuestions", "parse_tap", "tap_data"]

Buttons = tuple[tuple[tuple[str, str], ...], ...]  # rows of (label, tap data)


def tap_data(survey_id: str, question: str, value: str) -> str:
    return f"s:{survey_id}:{question}:{value}"


def parse_tap(data: str) -> tuple[str, str, str] | None:
    """``(survey id, question, value)`` from a button's data (the ``s:`` may be left out); None if it is not one."""
    parts = data.strip().split(":")
    if len(parts) == 4 and parts[0] == "s":
        parts = parts[1:]
    if len(parts) != 3 or not all(parts):
        return None
    return parts[0], parts[1], parts[2]


@dataclass(frozen=True)
class SurveyMessage:
    text: str
    buttons: Buttons = ()


class SurveyQuestions:
    """The surveys' words in the customer's language, and their buttons."""

    def __init__(self, texts: Texts) -> None:
        self.texts = texts

    def question(self, survey: Survey, question: Question, prefix: str = "") -> SurveyMessage:
        if question is Question.CSAT:
            key = "csat_agent" if survey.trigger is SurveyTrigger.AGENT_CLOSED else "csat_bot"
        else:
            key = question.value
        text = (prefix + "\n\n" if prefix else "") + self.texts.get(survey.lang, key)
        values = range(11) if question is Question.NPS else range(1, 6)
        buttons = tuple((str(v), tap_data(survey.id, question.value, str(v))) for v in values)
        rows = (buttons,) if len(buttons) <= 5 else (buttons[:6], buttons[6:])
        return SurveyMessage(text, rows)

    def first(self, survey: Survey) -> SurveyMessage:
        first = survey.next_question
        assert first is not None, "a survey is opened with its questions"
        return self.question(survey, first)

    def after_answer(self, survey: Survey) -> SurveyMessage:
        """After an accepted answer: the next question, or (after a low score) the offer to write a comment, or
        thanks."""
        lang = survey.lang
        following = survey.next_question
        if following is not None:
            return self.question(survey, following, prefix=self.texts.get(lang, "thanks_next"))
        if survey.low:
            return SurveyMessage(self.texts.get(lang, "thanks_low"), ((
                (self.texts.get(lang, "btn_comment"), tap_data(survey.id, "comment", "c")),
                (self.texts.get(lang, "btn_skip"), tap_data(survey.id, "comment", "k")),
            ),))
        return SurveyMessage(self.texts.get(lang, "thanks_done"))

    def after_comment_choice(self, survey: Survey, write: bool) -> str:
        return self.texts.get(survey.lang, "comment_prompt" if write else "thanks_done")
