"""The web channel: the chat widget a company puts on its website (``widget.js``), and the server side it talks to.

``bot.web.widget`` (the visitor's API and live stream), ``bot.web.chats`` (what each widget shows, in Redis, and
the hand-off's delivery to web visitors), ``bot.web.visitors`` (signed visitor ids, signed site identities),
``bot.web.render`` (the bot's HTML made safe for a browser), ``static/`` (the widget and a test page).
"""
