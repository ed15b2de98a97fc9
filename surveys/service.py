"""The survey store: who gets surveyed (once per dialog, not too often, never a blocked customer) and their taps.

A tap is recorded by one Lua script, so a double tap, a replayed callback or a tap from anyone but the
surveyed customer changes nothing, even with several bot processes.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis

from bot.core.channels import channel_of
from bot.core.redis_values import fields_of, optional_text, text_map, texts
from handoff import Ticket
from surveys import keys
from surveys.models import Question, Survey, SurveyTrigger, TapOutcome, TapResult

__all__ = ["SurveyService"]

_SCALES = {Question.CSAT: range(1, 6), Question.CES: range(1, 6), Question.NPS: range(11)}

# At most once per period per customer, measured on the service's clock (the key's TTL only cleans up).
_ONCE_PER_PERIOD = """
local last = redis.call('GET', KEYS[1])
if last and tonumber(ARGV[1]) - tonumber(last) < tonumber(ARGV[2]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[3])
return 1
"""

_TAP = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 'unknown' end
if redis.call('HGET', KEYS[1], 'user_id') ~= ARGV[1] then return 'not_yours' end
if tonumber(redis.call('HGET', KEYS[1], 'expires_at')) < tonumber(ARGV[4]) then return 'expired' end
if redis.call('HEXISTS', KEYS[1], 'a:' .. ARGV[2]) == 1 then return 'repeated' end
redis.call('HSET', KEYS[1], 'a:' .. ARGV[2], ARGV[3], 'answered_at', ARGV[4])
return 'accepted'
"""


class SurveyService:
    def __init__(
        self,
        redis: aioredis.Redis,
        *,
        expiry_seconds: float = 24 * 3600,
        fatigue_seconds: float = 7 * 24 * 3600,
        nps_enabled: bool = False,
        nps_period_seconds: float = 90 * 24 * 3600,
        retention_seconds: float = 400 * 24 * 3600,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._redis = redis
        self.expiry_seconds = expiry_seconds
        self.fatigue_seconds = fatigue_seconds
        self.nps_enabled = nps_enabled
        self.nps_period_seconds = nps_period_seconds
        self._retention = int(retention_seconds)
        self._clock = clock
        self._tap = redis.register_script(_TAP)
        self._once_per_period = redis.register_script(_ONCE_PER_PERIOD)

    # ------------------------------------------------------------------ sending

    async def open(
        self,
        *,
        trigger: SurveyTrigger,
        chat_id: int,
        user_id: int,
        lang: str,
        dialog: str,
        customer_name: str = "",
        ticket_id: str = "",
        agent_id: int = 0,
        agent_name: str = "",
        articles: Sequence[str] = (),
        waited_seconds: float = 0.0,
        handled_seconds: float = 0.0,
        first: Question | None = None,
        channel: str = "",
    ) -> Survey | None:
        """A new survey for this dialog, or None: already surveyed, surveyed recently, or blocked.

        CSAT and CES are both asked, the first one by the trigger (CSAT after an agent) unless ``first`` says.
        """
        if await self._redis.exists(keys.blocked(chat_id)):
            return None
        now = self._clock()
        survey_id = secrets.token_urlsafe(6)
        # One survey per dialog, whatever else happens: the dialog is claimed first.
        if not await self._redis.set(keys.dialog(dialog), survey_id, nx=True, ex=self._retention):
            return None
        if self.fatigue_seconds > 0 and not await self._first_in_period(keys.customer(chat_id), self.fatigue_seconds):
            return None  # surveyed within the fatigue period: this dialog goes unsurveyed
        questions = [Question.CSAT, Question.CES] if trigger is SurveyTrigger.AGENT_CLOSED else [Question.CES, Question.CSAT]
        if first in questions:
            questions.sort(key=lambda question: question is not first)
        if self.nps_enabled and await self._first_in_period(keys.nps(chat_id), self.nps_period_seconds):
            questions.append(Question.NPS)
        survey = Survey(
            id=survey_id,
            chat_id=chat_id,
            user_id=user_id,
            trigger=trigger,
            questions=questions,
            lang=lang,
            dialog=dialog,
            sent_at=now,
            expires_at=now + self.expiry_seconds,
            channel=channel or channel_of(chat_id).value,
            customer_name=customer_name,
            ticket_id=ticket_id,
            agent_id=agent_id,
            agent_name=agent_name,
            articles=list(articles),
            waited_seconds=round(waited_seconds, 1),
            handled_seconds=round(handled_seconds, 1),
        )
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(keys.survey(survey_id), mapping=fields_of(survey.to_redis()))
            pipe.expire(keys.survey(survey_id), self._retention)
            pipe.zadd(keys.INDEX, {survey_id: now})
            await pipe.execute()
        return survey

    async def _first_in_period(self, key: str, period: float) -> bool:
        now = self._clock()
        return bool(await self._once_per_period(keys=[key], args=[now, period, max(1, int(period))]))

    async def open_for_ticket(
        self,
        ticket: Ticket,
        articles: Sequence[str],
        *,
        chat_id: int | None = None,
        customer_name: str = "",
        first: Question | None = None,
        channel: str | None = None,
    ) -> Survey | None:
        """The survey of a closed ticket (CSAT about the agent's help first), attributed to its agent and timings."""
        return await self.open(
            trigger=SurveyTrigger.AGENT_CLOSED,
            chat_id=ticket.chat_id if chat_id is None else chat_id,
            user_id=ticket.user_id if chat_id is None else chat_id,
            lang=ticket.lang,
            dialog=f"ticket:{ticket.id}",
            customer_name=ticket.customer_name or customer_name,
            ticket_id=ticket.id,
            agent_id=ticket.agent_id,
            agent_name=ticket.agent_name,
            articles=articles,
            waited_seconds=max(0.0, (ticket.taken_at or ticket.closed_at) - ticket.waiting_since),
            handled_seconds=max(0.0, ticket.closed_at - (ticket.taken_at or ticket.created_at)),
            first=first,
            channel=channel or ticket.channel,
        )

    async def attach_message(self, survey_id: str, message_id: int) -> None:
        await self._redis.hset(keys.survey(survey_id), "message_id", str(message_id))

    async def not_delivered(self, survey: Survey, *, blocked: bool) -> None:
        """The survey could not be sent: it is withdrawn, and a customer who blocked the bot is remembered."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(keys.survey(survey.id))
            pipe.zrem(keys.INDEX, survey.id)
            pipe.delete(keys.customer(survey.chat_id))  # he was not surveyed after all
            if blocked:
                pipe.set(keys.blocked(survey.chat_id), "1")
            await pipe.execute()

    async def set_blocked(self, chat_id: int, blocked: bool) -> None:
        if blocked:
            await self._redis.set(keys.blocked(chat_id), "1")
        else:
            await self._redis.delete(keys.blocked(chat_id))

    # ------------------------------------------------------------------ answers

    async def get(self, survey_id: str) -> Survey | None:
        data = await self._redis.hgetall(keys.survey(survey_id))
        if not data or "id" not in data:
            return None
        values = text_map(data)
        survey = Survey.from_redis(values)
        survey.answers = {k[2:]: int(v) for k, v in values.items() if k.startswith("a:")}
        return survey

    async def tap(self, survey_id: str, user_id: int, question: str, value: int) -> TapResult:
        """Record one tap; only the first answer of the surveyed customer to each question counts."""
        try:
            parsed = Question(question)
        except ValueError:
            return TapResult(TapOutcome.UNKNOWN)
        if value not in _SCALES[parsed]:
            return TapResult(TapOutcome.UNKNOWN)
        before = await self.get(survey_id)
        if before is not None and parsed not in before.questions:
            return TapResult(TapOutcome.UNKNOWN, before)
        outcome = TapOutcome(
            await self._tap(keys=[keys.survey(survey_id)], args=[str(user_id), parsed.value, str(value), self._clock()])
        )
        after = await self.get(survey_id)
        became_low = bool(
            outcome is TapOutcome.ACCEPTED and after is not None and after.low and not (before and before.low)
        )
        return TapResult(outcome, after, became_low)

    async def await_comment(self, chat_id: int, survey_id: str) -> None:
        await self._redis.set(keys.comment(chat_id), survey_id, ex=int(self.expiry_seconds))

    async def take_comment_slot(self, chat_id: int) -> str | None:
        """The survey whose comment the customer is writing now, if any (cleared on reading)."""
        return optional_text(await self._redis.getdel(keys.comment(chat_id)))

    async def record_comment(self, survey_id: str, text: str) -> Survey | None:
        await self._redis.hset(keys.survey(survey_id), "comment", _json(text[:2000]))
        return await self.get(survey_id)

    # ------------------------------------------------------------------ "assumed resolved"

    async def answer_given(self, chat_id: int, dialog: str, payload: str) -> None:
        """A bot answer awaits feedback: without any, the dialog is assumed resolved after a while."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(f"{keys.PENDING}:data", str(chat_id), f"{dialog}\x1f{payload}")
            pipe.zadd(keys.PENDING, {str(chat_id): self._clock()})
            await pipe.execute()

    async def customer_spoke(self, chat_id: int) -> None:
        """The customer wrote or tapped: whatever he answered, the bot's last answer is not silently resolved."""
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.zrem(keys.PENDING, str(chat_id))
            pipe.hdel(f"{keys.PENDING}:data", str(chat_id))
            await pipe.execute()

    async def due(self, silence_seconds: float) -> list[tuple[int, str, str]]:
        """(chat, dialog, payload) of bot answers followed by ``silence_seconds`` of silence; each returned once."""
        cutoff = self._clock() - silence_seconds
        due = []
        for member in texts(await self._redis.zrangebyscore(keys.PENDING, 0, cutoff, start=0, num=100)):
            if await self._redis.zrem(keys.PENDING, member):  # one process claims it
                raw = optional_text(await self._redis.hget(f"{keys.PENDING}:data", member)) or "\x1f"
                await self._redis.hdel(f"{keys.PENDING}:data", member)
                dialog, payload = raw.split("\x1f", 1)
                due.append((int(member), dialog, payload))
        return due

    # ------------------------------------------------------------------ reading for reports

    async def surveys(self, since: float, until: float | None = None) -> list[Survey]:
        ids = texts(await self._redis.zrangebyscore(keys.INDEX, since, until if until is not None else "+inf"))
        found = []
        for survey_id in ids:
            if (survey := await self.get(survey_id)) is not None:
                found.append(survey)
        return found


def _json(text: str) -> str:
    import json

    return json.dumps(text, ensure_ascii=False)
