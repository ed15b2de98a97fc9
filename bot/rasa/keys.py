"""Redis keys of the Rasa integration, all in one place.

    zabota:rasa:seq                       numbers given to Rasa conversations (counter)
    zabota:rasa:sender:{sender_id}        the chat id Zabota uses for a Rasa conversation
    zabota:rasa:chat:{chat_id}            the Rasa sender id behind such a chat id
    zabota:rasa:outbox                    what agents and Zabota say to Rasa customers (stream of JSON messages)
    zabota:rasa:outbox:seq                message numbers handed back to the relay (counter)
    zabota:rasa:outbox:pushed             the last outbox entry pushed into Rasa
    zabota:rasa:tickets                   open tickets of Rasa conversations, watched by the bridge (set)
    zabota:rasa:ticket:{id}:seen          Rasa's time of the last customer message passed to the agent
    zabota:rasa:bridge-lease              which ``zabota actions`` process talks to Rasa now
"""

from __future__ import annotations

PREFIX = "zabota:rasa"
SEQUENCE = f"{PREFIX}:seq"
OUTBOX = f"{PREFIX}:outbox"
OUTBOX_SEQUENCE = f"{PREFIX}:outbox:seq"
OUTBOX_PUSHED = f"{PREFIX}:outbox:pushed"
TICKETS = f"{PREFIX}:tickets"
BRIDGE_LEASE = f"{PREFIX}:bridge-lease"


def sender(sender_id: str) -> str:
    return f"{PREFIX}:sender:{sender_id}"


def chat(chat_id: int) -> str:
    return f"{PREFIX}:chat:{chat_id}"


def seen(ticket_id: str) -> str:
    return f"{PREFIX}:ticket:{ticket_id}:seen"
