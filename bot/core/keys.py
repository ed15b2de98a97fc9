"""Redis keys of the channel-neutral dialog, all in one place.

    zabota:conv:{chat_id}:log               the conversation log: a list of JSON turns, oldest first
    zabota:conv:{chat_id}:state             the dialog's state of this conversation (JSON)
    zabota:conv:{chat_id}:search:{sid}      one search shown to the customer, for the buttons under it (JSON)
    zabota:kb:unanswered                    a stream of questions the knowledge base could not answer
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
