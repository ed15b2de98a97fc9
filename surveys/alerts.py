"""A bad score reaches the supervisors at once: the scores, the comment, the agent and the conversation.

Sent through the hand-off's ``StaffChannel`` (``handoff.ports``), so it reaches supervisors wherever they work.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence

from bot.core.texts import Texts
from handoff.ports import StaffChannel
from surveys.models import Survey

__all__ = ["LowScoreAlerts"]

Transcript = Callable[[Survey], Awaitable[str]]
MAX_ALERT = 4000  # characters: a long conversation is cut, the alert still goes


class LowScoreAlerts:
    def __init__(
        self,
        staff: StaffChannel,
        staff_texts: Texts,
        *,
        alert_chat_ids: Sequence[int] = (),
        more_alert_chat_ids: Callable[[], Awaitable[Iterable[int]]] | None = None,
        transcript: Transcript | None = None,
    ) -> None:
        self.staff = staff
        self.texts = staff_texts
        self.alert_chat_ids = list(dict.fromkeys(alert_chat_ids))
        self._more_alert_chat_ids = more_alert_chat_ids  # e.g. supervisors added by admins since the start
        self._transcript = transcript
        self.alerts_sent = 0

    async def _chats(self) -> list[int]:
        more = await self._more_alert_chat_ids() if self._more_alert_chat_ids is not None else ()
        return list(dict.fromkeys([*self.alert_chat_ids, *more]))

    async def alert(self, survey: Survey) -> None:
        """A CSAT or CES of 1-2: the scores, the comment, the agent and the conversation, to supervisors at once."""
        transcript = await self._transcript(survey) if self._transcript is not None else "—"
        scores = ", ".join(f"{q.upper()} {v}" for q, v in survey.answers.items())
        lang = self.texts.default_lang
        text = self.texts.get(
            lang,
            "low_score_alert",
            ticket=f" ({survey.ticket_id})" if survey.ticket_id else "",
            scores=scores,
            customer=survey.customer_name or str(survey.chat_id),
            lang=survey.lang,
            agent=f" · {survey.agent_name}" if survey.agent_name else "",
            comment=survey.comment or self.texts.get(lang, "no_comment"),
            transcript=transcript,
        )
        for chat_id in await self._chats():
            await self.staff.send(chat_id, text[:MAX_ALERT])
        self.alerts_sent += 1

    async def forward_comment(self, survey: Survey) -> None:
        """A low-score survey's comment, to the supervisors who got its alert."""
        lang = self.texts.default_lang
        text = self.texts.get(
            lang, "low_score_comment", ticket=f" ({survey.ticket_id})" if survey.ticket_id else "",
            customer=survey.customer_name, comment=survey.comment,
        )
        for chat_id in await self._chats():
            await self.staff.send(chat_id, text[:MAX_ALERT])
