"""Redis keys of the Telegram channel, all in one place.

    zabota:inbox:{bot_id}                   a stream of Telegram updates not yet handled (``bot.telegram.inbox``)
    zabota:inbox:{bot_id}:seen:{update_id}  the update is in the inbox or was: it is stored once
    zabota:inbox:{bot_id}:chat:{chat_id}:last  the number of the chat's last update stored (its order)
    zabota:inbox:{bot_id}:chat:{chat_id}:done  the number of the chat's last update handled
    zabota:inbox:{bot_id}:consumer:{name}   a process serving the inbox is alive (heartbeat with a TTL)
    zabota:update:{bot_id}:{update_id}      "processing" / "done": each Telegram update is handled once
    zabota:update:{bot_id}:{update_id}:steps  side effects of handling it already done (``bot.core.handling``)
    zabota:pace:{bot_id}                    the next free slot of the bot's 30 messages a second (every process)
    zabota:flood:{chat_id}                  messages in the current flood window (counter with a TTL)
    zabota:flood:{chat_id}:warned           the "one moment" reply was sent in this window
"""

from __future__ import annotations

PREFIX = "zabota"


def inbox(bot_id: int) -> str:
    return f"{PREFIX}:inbox:{bot_id}"


def inbox_chat_done(bot_id: int, chat_id: int | str) -> str:
    """Written by the inbox's scripts, which build it (and ``…:last``) from the stream's key."""
    return f"{inbox(bot_id)}:chat:{chat_id}:done"


def inbox_consumer(bot_id: int, consumer: str) -> str:
    return f"{inbox(bot_id)}:consumer:{consumer}"


def update(bot_id: int, update_id: int) -> str:
    return f"{PREFIX}:update:{bot_id}:{update_id}"


def update_steps(bot_id: int, update_id: int) -> str:
    return f"{PREFIX}:update:{bot_id}:{update_id}:steps"


def outgoing_pace(bot_id: int) -> str:
    return f"{PREFIX}:pace:{bot_id}"


def flood(chat_id: int) -> str:
    return f"{PREFIX}:flood:{chat_id}"


def flood_warned(chat_id: int) -> str:
    return f"{PREFIX}:flood:{chat_id}:warned"
