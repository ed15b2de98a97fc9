"""Knowledge-base answers (a little Markdown) as Telegram HTML, split into messages Telegram accepts.

Everything is HTML-escaped first, so no text from an article can break the markup; then **bold**, links and
list markers are rendered. Long answers are split at paragraph, then line, then word boundaries, each part
under Telegram's 4096-character limit with its tags balanced.
"""

from __future__ import annotations

import html
import re

__all__ = ["TELEGRAM_TEXT_LIMIT", "article_html", "escape", "markdown_to_telegram_html", "split_message"]

TELEGRAM_TEXT_LIMIT = 4096
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^)\s]+)\)")
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__")
_ITALIC = re.compile(r"(?<![*\w])\*(?!\s)([^*\n]+?)(?<!\s)\*(?![*\w])")
_BULLET = re.compile(r"^(\s*)[-*+]\s+", re.MULTILINE)
_TAG = re.compile(r"<(/?)(b|i|a)(?:\s[^>]*)?>")


def escape(text: str) -> str:
    """Plain text (a title, a name, a line of the product's own) safe inside Telegram HTML."""
    return html.escape(text, quote=False)


def article_html(title: str, answer: str, footer: str = "") -> str:
    """An article as a customer sees it, from the bot or sent by an agent: the title in bold, the answer, and an
    optional italic line under it. The one place an article becomes HTML: a title with ``&`` or ``<`` is text."""
    body = f"<b>{escape(title)}</b>\n\n{markdown_to_telegram_html(answer)}"
    return f"{body}\n\n<i>{escape(footer)}</i>" if footer else body


def markdown_to_telegram_html(text: str) -> str:
    """The answer's Markdown rendered with the tags Telegram's HTML mode allows."""
    escaped = html.escape(text.strip(), quote=False)

    def link(match: re.Match[str]) -> str:
        return f'<a href="{html.escape(html.unescape(match.group(2)), quote=True)}">{match.group(1)}</a>'

    escaped = _LINK.sub(link, escaped)
    escaped = _BOLD.sub(lambda m: f"<b>{m.group(1) or m.group(2)}</b>", escaped)
    escaped = _ITALIC.sub(r"<i>\1</i>", escaped)
    escaped = _BULLET.sub(r"\1• ", escaped)
    return re.sub(r"\n{3,}", "\n\n", escaped)


def split_message(text: str, limit: int = TELEGRAM_TEXT_LIMIT) -> list[str]:
    """``text`` in parts of at most ``limit`` characters, cut at the most natural boundary available."""
    parts: list[str] = []
    rest = text.strip()
    while len(rest) > limit:
        cut = _cut_point(rest, limit)
        head, rest = rest[:cut].rstrip(), rest[cut:].lstrip()
        head, carried = _balance(head)
        parts.append(head)
        rest = carried + rest
    if rest:
        parts.append(rest)
    return parts


def _cut_point(text: str, limit: int) -> int:
    window = text[: limit - 16]  # room for closing tags added by _balance
    for separator in ("\n\n", "\n", ". ", " "):
        position = window.rfind(separator)
        if position > limit // 3 and not _inside_tag(window, position):
            return position + len(separator)
    return len(window)


def _inside_tag(text: str, position: int) -> bool:
    return text.rfind("<", 0, position) > text.rfind(">", 0, position)


def _balance(part: str) -> tuple[str, str]:
    """Close tags left open at the end of ``part``; return them re-opened for the next part."""
    stack: list[tuple[str, str]] = []  # (tag name, the opening tag as written)
    for match in _TAG.finditer(part):
        if match.group(1):
            if stack and stack[-1][0] == match.group(2):
                stack.pop()
        else:
            stack.append((match.group(2), match.group(0)))
    closing = "".join(f"</{name}>" for name, _ in reversed(stack))
    reopening = "".join(opening for _, opening in stack)
    return part + closing, reopening
