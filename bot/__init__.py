"""The bot: its channel-neutral core (``bot.core``), its channels (``bot.telegram``, ``bot.rasa``), the
composition root (``bot.factory``), settings and the ``zabota`` command."""
