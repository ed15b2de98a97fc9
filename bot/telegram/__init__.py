"""The Telegram channel: routers, middlewares, the durable inbox of updates, the paced sender, the runner.

It turns Telegram updates into calls of the core (``bot.core``), of the hand-off desk and of the surveys, and
their neutral replies into Telegram messages.
"""
