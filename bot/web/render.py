"""The bot's words as the widget shows them: Telegram's HTML subset made safe for a browser.

The dialog core writes articles in Telegram's HTML (``bot.core.formatting``: bold, italics, links, everything
else escaped). A browser would run more than Telegram does, so the widget never gets that HTML as written: it is
parsed here and rebuilt from an allow-list (b, i, u, s, code, pre, blockquote, br, and a with an http(s) or
mailto link), every other tag dropped with its text kept, every attribute but a checked href dropped.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser
from urllib.parse import urlsplit

__all__ = ["safe_html"]

_ALLOWED = {"b", "strong", "i", "em", "u", "s", "code", "pre", "blockquote", "br", "a"}
_SCHEMES = {"http", "https", "mailto", "tg"}


class _Sanitizer(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.open: list[str] = []
        self.skipping = 0  # inside <script> or <style>: their text is not words

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self.skipping += 1
            return
        if tag not in _ALLOWED:
            return
        if tag == "br":
            self.out.append("<br>")
            return
        if tag == "a":
            href = next((value for name, value in attrs if name == "href" and value), "")
            if urlsplit(href.strip()).scheme.lower() not in _SCHEMES:
                return  # a link with no safe address: its words stay, as plain text
            self.out.append(f'<a href="{html.escape(href.strip(), quote=True)}" target="_blank" rel="noopener noreferrer">')
        else:
            self.out.append(f"<{tag}>")
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style"):
            self.skipping = max(0, self.skipping - 1)
            return
        if tag in self.open:
            while self.open:  # close what was left open inside it
                last = self.open.pop()
                self.out.append(f"</{last}>")
                if last == tag:
                    break

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.out.append(html.escape(data, quote=False).replace("\n", "<br>"))


def safe_html(text: str, *, is_html: bool) -> str:
    """``text`` as HTML a browser may show: Telegram HTML rebuilt from the allow-list, plain text escaped."""
    if not is_html:
        return html.escape(text, quote=False).replace("\n", "<br>")
    sanitizer = _Sanitizer()
    sanitizer.feed(text)
    sanitizer.close()
    return "".join(sanitizer.out) + "".join(f"</{tag}>" for tag in reversed(sanitizer.open))
