"""Redis keys of the channel-neutral dialog, all in one place.

    zabota:conv:{chat_id}:log               the conversation log: a list of JSON turns, oldest first
    zabota:conv:{chat_id}:state             the dialog's state of this conversation (JSON)
    zabota:conv:{chat_id}:search:{sid}      one search shown to the customer, for the buttons under it (JSON)
    zabota:kb:unanswered                    a stream of questions the knowledge base could not answer
    zabota:answers:{day}                    the bot's answers of a UTC day (hash: chat:search -> JSON)
    zabota:answers:{day}:outcome            what became of them (hash: chat:search -> helpful | not_helpful | ...)
    zabota:conv:{chat_id}:last-answer       the customer's last answer of the last day ("day|chat:search|at")
"""

from __future__ import annotations

PREFIX = "zabota"


def conversation_log(chat_id: int) -> str:
    return f"{PREFIX}:conv:{chat_id}:log"


def conversation_state(chat_id: int) -> str:
    return f"{PREFIX}:conv:{chat_id}:state"


def search(chat_id: int, search_id: str) -> str:
    return f"{PREFIX}:conv:{chat_id}:search:{search_id}"


UNANSWERED = f"{PREFIX}:kb:unanswered"


def answers(day: str) -> str:
    return f"{PREFIX}:answers:{day}"


def answer_outcomes(day: str) -> str:
    return f"{PREFIX}:answers:{day}:outcome"


def last_answer(chat_id: int) -> str:
    return f"{PREFIX}:conv:{chat_id}:last-answer"
