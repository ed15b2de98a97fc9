"""aiogram routers of the application, included by the composition root in a fixed order."""
