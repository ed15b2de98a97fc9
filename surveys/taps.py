"""What a tap on a survey button does, on every channel: the answer recorded, what the survey message becomes,
a bad score alerted; and the comment a customer offered to write after one.

A channel turns its own tap (Telegram's callback query, the web widget's click) into ``SurveyTaps.tap`` and
shows the ``TapReply`` its own way: a short notice, or the survey message edited in place.
"""

from __future__ import annotations

from dataclasses import dataclass

from surveys.alerts import LowScoreAlerts
from surveys.models import Survey, TapOutcome
from surveys.questions import SurveyMessage, SurveyQuestions, parse_tap
from surveys.service import SurveyService

__all__ = ["SurveyTaps", "TapReply"]

_NOTICES = {
    TapOutcome.EXPIRED: "survey_closed",
    TapOutcome.REPEATED: "already_counted",
    TapOutcome.NOT_YOURS: "not_yours",
}


@dataclass(frozen=True)
class TapReply:
    """``notice``: a short word instead of a change (already counted, closed, not yours); ``message``: what the
    survey message becomes (the next question, the comment offer, thanks); neither: nothing to show."""

    notice: str = ""
    message: SurveyMessage | None = None
    survey: Survey | None = None


class SurveyTaps:
    def __init__(self, service: SurveyService, questions: SurveyQuestions, alerts: LowScoreAlerts) -> None:
        self.service = service
        self.questions = questions
        self.alerts = alerts

    async def tap(self, data: str, user_id: int, language_code: str | None = None) -> TapReply | None:
        """A tap on a button whose data is ``surveys.questions.tap_data``; None when the data is not a survey's."""
        parsed = parse_tap(data)
        if parsed is None:
            return None
        survey_id, question, value = parsed
        if question == "comment":
            return await self._comment_choice(survey_id, user_id, write=value == "c")
        try:
            score = int(value)
        except ValueError:
            return TapReply()
        result = await self.service.tap(survey_id, user_id, question, score)
        survey = result.survey
        texts = self.questions.texts
        if result.outcome is not TapOutcome.ACCEPTED:
            lang = survey.lang if survey is not None else texts.for_code(language_code)
            return TapReply(notice=texts.get(lang, _NOTICES.get(result.outcome, "survey_closed")), survey=survey)
        assert survey is not None
        following = self.questions.after_answer(survey)
        if result.became_low:
            await self.alerts.alert(survey)
        return TapReply(message=following, survey=survey)

    async def _comment_choice(self, survey_id: str, user_id: int, *, write: bool) -> TapReply:
        survey = await self.service.get(survey_id)
        if survey is None or survey.user_id != user_id:
            return TapReply()
        if write:
            await self.service.await_comment(survey.chat_id, survey.id)
        return TapReply(message=SurveyMessage(self.questions.after_comment_choice(survey, write)), survey=survey)

    async def comment(self, chat_id: int, text: str) -> str | None:
        """The customer's message, when it is the comment he offered to write: recorded, supervisors told; the
        thanks to show him. None: it is not one (the message goes on as usual)."""
        survey_id = await self.service.take_comment_slot(chat_id)
        if not survey_id:
            return None
        survey = await self.service.record_comment(survey_id, text)
        if survey is None:
            return None
        await self.alerts.forward_comment(survey)
        return self.questions.texts.get(survey.lang, "comment_thanks")
