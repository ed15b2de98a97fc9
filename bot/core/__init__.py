"""The channel-neutral heart of the bot: the customer's dialog, his conversation and its state, the texts.

Nothing here imports a channel (Telegram, Rasa, the web): channels turn their own updates into calls of
``CustomerDialog`` and its neutral ``Reply`` objects into their own messages. Hand-off and surveys plug in
through the ports ``HandoffPort`` and ``SurveyPort`` (``bot.core.dialog``).
"""
