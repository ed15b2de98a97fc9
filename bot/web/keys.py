"""Redis keys of the web channel (the website chat widget), all in one place.

    zabota:web:secret                     the key visitors' ids are signed with, when WEB_SECRET is not set
    zabota:web:visitors                   the last visitor number given (a counter)
    zabota:web:user:{site user id}        the visitor number of a signed-in user of the website (his conversation)
    zabota:web:profile:{chat_id}          name, language, site user id of a visitor (a hash)
    zabota:web:chat:{chat_id}             what the widget shows: messages and their edits, in order (a stream)
    zabota:web:chat:{chat_id}:seq         the number of the chat's last message
    zabota:web:sent:{chat_id}:{id}        a visitor's message (by the widget's own id) is being handled / was
    zabota:web:rate:{who}:{minute}        messages in this minute from a visitor or an address (counter, TTL)
    zabota:web:file:{id}                  a file a visitor sent: its chat, name, type, size, path in the data folder
    zabota:web:events                     pub/sub: "a chat has something new" to every process serving widgets
    zabota:web:console:signin:{sha256}    a one-time sign-in link's token (hashed) -> the staff member's user id
    zabota:web:console:session:{sha256}   a workplace session (hashed id): user id, CSRF token (12 h)
    zabota:web:console:viewing:{ticket}   who has the ticket open in the workplace now (user id -> last seen)
    zabota:web:console:typing:{ticket}    who is typing a reply to the ticket's customer (user id -> last keystroke)
    zabota:web:console:reindex            the workplace's last reindex: state, progress or result (a hash)
    zabota:web:console:reindex:lock       a reindex started from the workplace is running (one at a time)
"""

from __future__ import annotations

import hashlib

PREFIX = "zabota:web"
SECRET = f"{PREFIX}:secret"
VISITORS = f"{PREFIX}:visitors"
EVENTS = f"{PREFIX}:events"
REINDEX_STATUS = f"{PREFIX}:console:reindex"
REINDEX_LOCK = f"{PREFIX}:console:reindex:lock"


def user(site_user_id: str) -> str:
    return f"{PREFIX}:user:{site_user_id}"


def profile(chat_id: int) -> str:
    return f"{PREFIX}:profile:{chat_id}"


def chat(chat_id: int) -> str:
    return f"{PREFIX}:chat:{chat_id}"


def chat_sequence(chat_id: int) -> str:
    return f"{chat(chat_id)}:seq"


def sent(chat_id: int, client_id: str) -> str:
    return f"{PREFIX}:sent:{chat_id}:{client_id}"


def file(file_id: str) -> str:
    return f"{PREFIX}:file:{file_id}"


def rate(who: str, minute: int) -> str:
    return f"{PREFIX}:rate:{who}:{minute}"


def _hashed(secret: str) -> str:
    """Secrets (sign-in tokens, session ids) are kept only hashed: a copy of Redis signs nobody in."""
    return hashlib.sha256(secret.encode()).hexdigest()


def signin(token: str) -> str:
    return f"{PREFIX}:console:signin:{_hashed(token)}"


def session(session_id: str) -> str:
    return f"{PREFIX}:console:session:{_hashed(session_id)}"


def viewing(ticket_id: str) -> str:
    return f"{PREFIX}:console:viewing:{ticket_id}"


def typing(ticket_id: str) -> str:
    return f"{PREFIX}:console:typing:{ticket_id}"
