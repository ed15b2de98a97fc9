"""Redis keys of the survey package, all in one place.

    zabota:survey:{id}                     one survey: what it is about, when it was sent, the answers (hash)
    zabota:survey:index                    every survey id by the time it was sent (sorted set)
    zabota:survey:dialog:{dialog}          a dialog already surveyed (a ticket, a bot answer): its survey id
    zabota:survey:customer:{chat_id}       when the customer was last surveyed (fatigue), with a TTL
    zabota:survey:nps:{chat_id}            when the customer was last asked the NPS question, with a TTL
    zabota:survey:blocked:{chat_id}        the customer blocked the bot: no surveys until he unblocks it
    zabota:survey:comment:{chat_id}        the survey whose comment the customer's next message is
    zabota:survey:pending                  bot answers awaiting feedback, by time (for "assumed resolved")
    zabota:survey:survey-lease             the process surveying silent answers (lease)
"""

from __future__ import annotations

PREFIX = "zabota:survey"
INDEX = f"{PREFIX}:index"
PENDING = f"{PREFIX}:pending"
TRIGGERS_LEASE = f"{PREFIX}:survey-lease"


def survey(survey_id: str) -> str:
    return f"{PREFIX}:{survey_id}"


def dialog(dialog_key: str) -> str:
    return f"{PREFIX}:dialog:{dialog_key}"


def customer(chat_id: int) -> str:
    return f"{PREFIX}:customer:{chat_id}"


def nps(chat_id: int) -> str:
    return f"{PREFIX}:nps:{chat_id}"


def blocked(chat_id: int) -> str:
    return f"{PREFIX}:blocked:{chat_id}"


def comment(chat_id: int) -> str:
    return f"{PREFIX}:comment:{chat_id}"
