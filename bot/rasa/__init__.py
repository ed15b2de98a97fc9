"""Zabota for teams that run a Rasa assistant: knowledge-base answers, hand-off to agents and surveys as actions.

``bot.rasa.actions`` has the custom actions, ``bot.rasa.server`` the action server (run by ``bot.runner`` for ``zabota actions``) and
``bot.rasa.bridge`` the hand-off through Rasa's HTTP API; those need rasa-sdk. This package's own namespace
holds only what the Telegram bot's relay uses as well: how Rasa conversations are known and reached.
"""

from bot.rasa.channel import OutboxMessage, RasaConversations, RasaOutbox, is_rasa_chat

__all__ = ["OutboxMessage", "RasaConversations", "RasaOutbox", "is_rasa_chat"]
