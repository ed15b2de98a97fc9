"""The Telegram application: settings, the composition root, routers and the ``zabota`` command."""
