"""Telegram's text formatting: the HTML, MarkdownV2 and Markdown parse modes turned into plain text and entities.

The parsers follow Telegram's own (tdlib's ``MessageEntity.cpp``) closely enough that a text the emulator accepts is
one Telegram accepts, with the same error descriptions, byte offsets in errors and UTF-16 entity offsets.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Entity",
    "ParseError",
    "UnsupportedParseMode",
    "bot_command_entities",
    "parse_formatted",
    "utf16_len",
]

Entity = dict[str, Any]
UserLookup = Callable[[int], "dict[str, Any] | None"]

_HTML_TAGS = frozenset(
    [
        "a",
        "b",
        "strong",
        "i",
        "em",
        "s",
        "strike",
        "del",
        "u",
        "ins",
        "tg-spoiler",
        "tg-emoji",
        "span",
        "pre",
        "code",
        "blockquote",
    ]
)
_HTML_ENTITY_TYPES = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
}
# tdlib's is_space: the NUL that terminates its C string counts as a space, which `_at` reproduces past the end.
_SPACES = frozenset(" \t\r\n\0\v")
_MARKDOWN_V2_RESERVED = "_*[]()~`>#+-=|{}.!"
_COMMAND = re.compile(r"(?<![\w/])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")
_USER_LINK = re.compile(r"tg://user\?id=(\d+)$")
_NAMED_HTML_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}


class ParseError(Exception):
    """A formatted text Telegram would refuse; ``str(error)`` is the part after "can't parse entities: "."""


class UnsupportedParseMode(Exception):
    pass


def utf16_len(text: str) -> int:
    """Entity offsets and lengths count UTF-16 code units, so an emoji outside the BMP counts as two."""
    return len(text) + sum(1 for ch in text if ord(ch) > 0xFFFF)


def parse_formatted(
    text: str,
    parse_mode: str | None,
    *,
    strict_html: bool = False,
    lookup_user: UserLookup | None = None,
) -> tuple[str, list[Entity]]:
    """The text a user sees and its entities, with surrounding whitespace trimmed the way Telegram trims it."""
    mode = (parse_mode or "").lower()
    entities: list[Entity]
    if not mode:
        plain, entities = text, []
    elif mode == "html":
        plain, entities = _HtmlParser(text, strict=strict_html, lookup_user=lookup_user).parse()
    elif mode == "markdownv2":
        plain, entities = _MarkdownV2Parser(text, lookup_user=lookup_user).parse()
    elif mode == "markdown":
        plain, entities = _parse_markdown(text, lookup_user=lookup_user)
    else:
        raise UnsupportedParseMode(parse_mode)
    return trim_formatted(plain, entities)


def trim_formatted(text: str, entities: list[Entity]) -> tuple[str, list[Entity]]:
    stripped_left = text.lstrip()
    shift = utf16_len(text) - utf16_len(stripped_left)
    result = stripped_left.rstrip()
    total = utf16_len(result)
    trimmed: list[Entity] = []
    for entity in entities:
        start = max(entity["offset"] - shift, 0)
        end = min(entity["offset"] + entity["length"] - shift, total)
        if end > start:
            trimmed.append({**entity, "offset": start, "length": end - start})
    trimmed.sort(key=lambda e: (e["offset"], -e["length"]))
    return result, trimmed


def bot_command_entities(text: str) -> list[Entity]:
    """The ``bot_command`` entities Telegram attaches to a user's text ("/start", "/help@zabota_bot")."""
    return [
        {"type": "bot_command", "offset": utf16_len(text[: m.start()]), "length": utf16_len(m.group())}
        for m in _COMMAND.finditer(text)
    ]


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _link_entity(url: str, offset: int, length: int, lookup_user: UserLookup | None) -> Entity | None:
    if match := _USER_LINK.match(url):
        user = lookup_user(int(match.group(1))) if lookup_user else None
        # Telegram drops a mention of a user the bot cannot see rather than failing the message.
        return {"type": "text_mention", "offset": offset, "length": length, "user": user} if user else None
    if not url:
        return None
    return {"type": "text_link", "offset": offset, "length": length, "url": url}


class _Output:
    """The plain text being built, with its length in UTF-16 code units kept as it grows."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.utf16 = 0
        self.chars = 0

    def append(self, text: str) -> None:
        self.parts.append(text)
        self.utf16 += utf16_len(text)
        self.chars += len(text)

    def text(self) -> str:
        return "".join(self.parts)


@dataclass
class _OpenTag:
    tag: str
    argument: str
    utf16_offset: int
    char_offset: int
    expandable: bool = False


class _HtmlParser:
    def __init__(self, text: str, *, strict: bool, lookup_user: UserLookup | None) -> None:
        self.text = text
        self.strict = strict
        self.lookup_user = lookup_user
        self.i = 0
        self.out = _Output()
        self.entities: list[Entity] = []
        self.stack: list[_OpenTag] = []

    def _at(self, index: int) -> str:
        return self.text[index] if index < len(self.text) else "\0"

    def _offset(self, index: int) -> int:
        return _byte_offset(self.text, index)

    def parse(self) -> tuple[str, list[Entity]]:
        text = self.text
        while self.i < len(text):
            ch = text[self.i]
            if ch == "&":
                decoded = self._decode_entity()
                if decoded is not None:
                    self.out.append(decoded)
                    continue
                if self.strict:
                    raise ParseError(f'Unescaped "&" at byte offset {self._offset(self.i)}; write it as &amp;')
            if ch != "<":
                if self.strict and ch == ">":
                    raise ParseError(f'Unescaped ">" at byte offset {self._offset(self.i)}; write it as &gt;')
                self.out.append(ch)
                self.i += 1
                continue
            if self._at(self.i + 1) == "/":
                self._end_tag()
            else:
                self._start_tag()
        if self.stack:
            raise ParseError(f'Can\'t find end tag corresponding to start tag "{self.stack[-1].tag}"')
        return self.out.text(), _strip_code_languages(self.entities)

    def _decode_entity(self) -> str | None:
        """Decodes the character reference at ``self.i`` and moves past it; None leaves a bare '&' in place."""
        text, pos = self.text, self.i
        end = pos + 1
        if self._at(end) == "#":
            end += 1
            value = 0
            if self._at(end) == "x":
                end += 1
                while self._at(end) in "0123456789abcdefABCDEF":
                    value = value * 16 + int(text[end], 16)
                    end += 1
                    if value >= 0x10FFFF:
                        return None
            else:
                while self._at(end).isdigit() and self._at(end).isascii():
                    value = value * 10 + int(text[end])
                    end += 1
                    if value >= 0x10FFFF:
                        return None
            if value == 0 or end - pos >= 10 or 0xD800 <= value <= 0xDFFF:
                return None
            decoded = chr(value)
        else:
            while self._at(end).isascii() and self._at(end).isalpha():
                end += 1
            named = _NAMED_HTML_ENTITIES.get(text[pos + 1 : end])
            if named is None:
                return None
            decoded = named
        self.i = end + 1 if self._at(end) == ";" else end
        return decoded

    def _start_tag(self) -> None:
        text = self.text
        begin = self.i
        i = begin + 1
        while self._at(i) not in _SPACES and self._at(i) != ">":
            i += 1
        if i >= len(text):
            raise ParseError(f"Unclosed start tag at byte offset {self._offset(begin)}")
        tag = text[begin + 1 : i].lower()
        if tag not in _HTML_TAGS:
            raise ParseError(f'Unsupported start tag "{tag}" at byte offset {self._offset(begin)}')
        argument = ""
        expandable = False
        while self._at(i) != ">":
            while i < len(text) and text[i] in _SPACES:
                i += 1
            if self._at(i) == ">":
                break
            name_begin = i
            while self._at(i) not in _SPACES and self._at(i) not in "=>":
                i += 1
            name = text[name_begin:i]
            if not name:
                raise ParseError(f'Empty attribute name in the tag "{tag}" at byte offset {self._offset(begin)}')
            while i < len(text) and text[i] in _SPACES:
                i += 1
            if self._at(i) != "=":
                if tag == "blockquote" and name == "expandable":
                    expandable = True
                    continue
                raise ParseError(
                    f'Expected equal sign in declaration of an attribute of the tag "{tag}" '
                    f"at byte offset {self._offset(begin)}"
                )
            i += 1
            while i < len(text) and text[i] in _SPACES:
                i += 1
            if i >= len(text):
                raise ParseError(f'Unclosed start tag "{tag}" at byte offset {self._offset(begin)}')
            if text[i] not in "'\"":
                token_begin = i
                while self._at(i).isascii() and (self._at(i).isalnum() or self._at(i) in ".-"):
                    i += 1
                value = text[token_begin:i].lower()
                if self._at(i) not in _SPACES and self._at(i) != ">":
                    raise ParseError(f"Unexpected end of name token at byte offset {self._offset(token_begin)}")
            else:
                quote = text[i]
                i += 1
                chars: list[str] = []
                while i < len(text) and text[i] != quote:
                    if text[i] == "&":
                        self.i = i
                        decoded = self._decode_entity()
                        if decoded is not None:
                            chars.append(decoded)
                            i = self.i
                            continue
                    chars.append(text[i])
                    i += 1
                if self._at(i) == quote:
                    i += 1
                value = "".join(chars)
            if i >= len(text):
                raise ParseError(f"Unclosed start tag at byte offset {self._offset(begin)}")
            if tag == "a" and name == "href":
                argument = value
            elif tag == "code" and name == "class" and value.startswith("language-"):
                argument = value[len("language-") :]
            elif tag == "span" and name == "class" and value.startswith("tg-"):
                argument = value[len("tg-") :]
            elif tag == "tg-emoji" and name == "emoji-id":
                argument = value
            elif tag == "blockquote" and name == "expandable":
                expandable = True
        if tag == "span" and argument != "spoiler":
            raise ParseError(f'Tag "span" must have class "tg-spoiler" at byte offset {self._offset(begin)}')
        self.i = i + 1
        self.stack.append(_OpenTag(tag, argument, self.out.utf16, self.out.chars, expandable))

    def _end_tag(self) -> None:
        text = self.text
        begin = self.i
        if not self.stack:
            raise ParseError(f"Unexpected end tag at byte offset {self._offset(begin)}")
        i = begin + 2
        while self._at(i) not in _SPACES and self._at(i) != ">":
            i += 1
        end_name = text[begin + 2 : i]
        while i < len(text) and text[i] in _SPACES:
            i += 1
        if self._at(i) != ">":
            raise ParseError(f"Unclosed end tag at byte offset {self._offset(begin)}")
        self.i = i + 1
        open_tag = self.stack.pop()
        if end_name and end_name != open_tag.tag:
            raise ParseError(
                f'Unmatched end tag at byte offset {self._offset(begin)}, expected "</{open_tag.tag}>", '
                f'found "</{end_name}>"'
            )
        self._close(open_tag)

    def _close(self, tag: _OpenTag) -> None:
        offset = tag.utf16_offset
        length = self.out.utf16 - offset
        if length == 0:
            return
        last = self.entities[-1] if self.entities else None
        same_span = last is not None and last["offset"] == offset and last["length"] == length
        if tag.tag in _HTML_ENTITY_TYPES:
            self.entities.append({"type": _HTML_ENTITY_TYPES[tag.tag], "offset": offset, "length": length})
        elif tag.tag == "tg-emoji":
            if not tag.argument.isdigit():
                raise ParseError("Invalid custom emoji identifier specified")
            self.entities.append(
                {"type": "custom_emoji", "offset": offset, "length": length, "custom_emoji_id": tag.argument}
            )
        elif tag.tag == "a":
            url = tag.argument or self.out.text()[tag.char_offset :]
            entity = _link_entity(url, offset, length, self.lookup_user)
            if entity:
                self.entities.append(entity)
        elif tag.tag == "pre":
            if last is not None and same_span and last["type"] == "code":
                # <pre><code class="language-x">...</code></pre> is one pre entity with a language.
                self.entities[-1] = {"type": "pre", "offset": offset, "length": length}
                if last.get("language"):
                    self.entities[-1]["language"] = last["language"]
            else:
                self.entities.append({"type": "pre", "offset": offset, "length": length})
        elif tag.tag == "code":
            if last is not None and same_span and last["type"] == "pre":
                if tag.argument:
                    last["language"] = tag.argument
            else:
                entity = {"type": "code", "offset": offset, "length": length}
                if tag.argument:
                    entity["language"] = tag.argument
                self.entities.append(entity)
        elif tag.tag == "blockquote":
            kind = "expandable_blockquote" if tag.expandable else "blockquote"
            self.entities.append({"type": kind, "offset": offset, "length": length})


def _strip_code_languages(entities: list[Entity]) -> list[Entity]:
    # A language is only meaningful on pre; a lone <code class="language-x"> is plain code in the Bot API.
    return [{k: v for k, v in e.items() if k != "language"} if e["type"] == "code" else e for e in entities]


_MD2_TYPE_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "text_link": "TextUrl",
    "code": "Code",
    "pre": "Pre",
    "pre_code": "PreCode",
    "custom_emoji": "CustomEmoji",
}


@dataclass
class _OpenMarkdown:
    kind: str
    argument: str
    utf16_offset: int
    byte_index: int
    char_offset: int


class _MarkdownV2Parser:
    def __init__(self, text: str, *, lookup_user: UserLookup | None) -> None:
        self.text = text
        self.lookup_user = lookup_user
        self.out = _Output()
        self.entities: list[Entity] = []
        self.stack: list[_OpenMarkdown] = []
        self.quote: tuple[int, bool] | None = None  # (utf16 offset, expandable) of the open blockquote

    def _at(self, index: int) -> str:
        return self.text[index] if index < len(self.text) else "\0"

    def _reserved(self, ch: str) -> ParseError:
        return ParseError(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")

    def _in_code(self) -> bool:
        return bool(self.stack) and self.stack[-1].kind in ("code", "pre", "pre_code")

    def parse(self) -> tuple[str, list[Entity]]:
        text = self.text
        i = 0
        line_start = True
        while i < len(text):
            if line_start:
                line_start = False
                if not self._in_code():
                    i = self._line_start(i)
                    if i >= len(text):
                        break
            ch = text[i]
            nxt = self._at(i + 1)
            if ch == "\\" and nxt != "\0" and 0 < ord(nxt) <= 126:
                self.out.append(nxt)
                i += 2
                continue
            if ch == "\n":
                line_start = True
            if self.quote is not None and self.quote[1] and ch == "|" and nxt == "|" and self._at(i + 2) in "\n\0":
                i += 2  # "||" at the end of an expandable blockquote's line marks where the collapsed part ends
                continue
            reserved = "`" if self._in_code() else _MARKDOWN_V2_RESERVED
            if ch not in reserved:
                self.out.append(ch)
                i += 1
                continue
            i = self._end_entity(i) if self._is_end(i) else self._begin_entity(i)
        if self.stack:
            top = self.stack[-1]
            raise ParseError(f"Can't find end of {_MD2_TYPE_NAMES[top.kind]} entity at byte offset {top.byte_index}")
        self._close_quote(self.out.utf16)
        return self.out.text(), self.entities

    def _line_start(self, i: int) -> int:
        text = self.text
        if text.startswith("**>", i) or text.startswith(">", i):
            expandable = text.startswith("**>", i)
            if self.quote is None:
                self.quote = (self.out.utf16, expandable)
            return i + (3 if expandable else 1)
        if self.quote is not None:
            # The quote ended with the previous line; its closing newline is not part of it.
            self._close_quote(self.out.utf16 - 1)
        return i

    def _close_quote(self, end: int) -> None:
        if self.quote is None:
            return
        offset, expandable = self.quote
        self.quote = None
        if end > offset:
            kind = "expandable_blockquote" if expandable else "blockquote"
            self.entities.append({"type": kind, "offset": offset, "length": end - offset})

    def _is_end(self, i: int) -> bool:
        if not self.stack:
            return False
        ch, nxt = self.text[i], self._at(i + 1)
        kind = self.stack[-1].kind
        return {
            "bold": ch == "*",
            "italic": ch == "_" and nxt != "_",
            "code": ch == "`",
            "pre": ch == "`" and nxt == "`" and self._at(i + 2) == "`",
            "pre_code": ch == "`" and nxt == "`" and self._at(i + 2) == "`",
            "text_link": ch == "]",
            "underline": ch == "_" and nxt == "_",
            "strikethrough": ch == "~",
            "spoiler": ch == "|" and nxt == "|",
            "custom_emoji": ch == "]",
        }[kind]

    def _begin_entity(self, i: int) -> int:
        text = self.text
        ch, nxt = text[i], self._at(i + 1)
        begin = i
        argument = ""
        if ch == "_":
            kind = "underline" if nxt == "_" else "italic"
            i += 2 if nxt == "_" else 1
        elif ch == "*":
            kind, i = "bold", i + 1
        elif ch == "~":
            kind, i = "strikethrough", i + 1
        elif ch == "|" and nxt == "|":
            kind, i = "spoiler", i + 2
        elif ch == "[":
            kind, i = "text_link", i + 1
        elif ch == "!" and nxt == "[":
            kind, i = "custom_emoji", i + 2
        elif ch == "`" and nxt == "`" and self._at(i + 2) == "`":
            i += 3
            kind = "pre"
            language_end = i
            while self._at(language_end) not in _SPACES and self._at(language_end) != "`":
                language_end += 1
            if i != language_end and language_end < len(text) and text[language_end] != "`":
                kind, argument = "pre_code", text[i:language_end]
                i = language_end
            i = _skip_one_newline(text, i)
        elif ch == "`":
            kind, i = "code", i + 1
        else:
            raise self._reserved(ch)
        self.stack.append(_OpenMarkdown(kind, argument, self.out.utf16, _byte_offset(text, begin), self.out.chars))
        return i

    def _end_entity(self, i: int) -> int:
        top = self.stack.pop()
        offset, length = top.utf16_offset, self.out.utf16 - top.utf16_offset
        entity: Entity | None = None
        if top.kind in ("bold", "italic", "strikethrough", "code"):
            i += 1
            entity = {"type": top.kind, "offset": offset, "length": length}
        elif top.kind in ("underline", "spoiler"):
            i += 2
            entity = {"type": top.kind, "offset": offset, "length": length}
        elif top.kind in ("pre", "pre_code"):
            i += 3
            entity = {"type": "pre", "offset": offset, "length": length}
            if top.argument:
                entity["language"] = top.argument
        elif top.kind == "text_link":
            if self._at(i + 1) != "(":
                url = self.out.text()[top.char_offset :]
                i += 1
            else:
                url, i = self._read_url(i + 2)
            entity = _link_entity(url, offset, length, self.lookup_user)
        else:
            if self._at(i + 1) != "(":
                raise ParseError("Custom emoji entity must contain a tg://emoji URL")
            url, i = self._read_url(i + 2)
            match = re.fullmatch(r"tg://emoji\?id=(\d+)", url)
            if not match:
                raise ParseError("Custom emoji URL must have an emoji identifier")
            entity = {"type": "custom_emoji", "offset": offset, "length": length, "custom_emoji_id": match.group(1)}
        if entity is not None and length > 0:
            self.entities.append(entity)
        return i

    def _read_url(self, i: int) -> tuple[str, int]:
        text = self.text
        begin = i
        chars: list[str] = []
        while i < len(text) and text[i] != ")":
            nxt = self._at(i + 1)
            if text[i] == "\\" and nxt != "\0" and 0 < ord(nxt) <= 126:
                chars.append(nxt)
                i += 2
                continue
            chars.append(text[i])
            i += 1
        if i >= len(text):
            raise ParseError(f"Can't find end of a URL at byte offset {_byte_offset(text, begin)}")
        return "".join(chars), i + 1


def _skip_one_newline(text: str, i: int) -> int:
    at = text[i] if i < len(text) else ""
    if at in ("\n", "\r"):
        after = text[i + 1] if i + 1 < len(text) else ""
        return i + 2 if after in ("\n", "\r") and after != at else i + 1
    return i


def _parse_markdown(text: str, *, lookup_user: UserLookup | None) -> tuple[str, list[Entity]]:
    """The legacy "Markdown" mode: *bold*, _italic_, `code`, ```pre```, [text](url); no nesting."""
    out = _Output()
    entities: list[Entity] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "_*`[":
            out.append(text[i + 1])
            i += 2
            continue
        if ch not in "_*`[":
            out.append(ch)
            i += 1
            continue
        begin = i
        end_char = "]" if ch == "[" else ch
        i += 1
        is_pre = False
        language = ""
        if ch == "`" and text.startswith("``", i):
            i += 2
            is_pre = True
            language_end = i
            while language_end < len(text) and text[language_end] not in _SPACES and text[language_end] != "`":
                language_end += 1
            if i != language_end and language_end < len(text) and text[language_end] != "`":
                language, i = text[i:language_end], language_end
            i = _skip_one_newline(text, i)
        offset, char_offset = out.utf16, out.chars
        while i < len(text) and (text[i] != end_char or (is_pre and not text.startswith("``", i + 1))):
            out.append(text[i])
            i += 1
        if i >= len(text):
            raise ParseError(f"Can't find end of the entity starting at byte offset {_byte_offset(text, begin)}")
        length = out.utf16 - offset
        if ch == "[":
            if i + 1 < len(text) and text[i + 1] == "(":
                url_end = text.find(")", i + 2)
                url = text[i + 2 : url_end] if url_end >= 0 else text[i + 2 :]
                i = url_end if url_end >= 0 else len(text) - 1
            else:
                url = out.text()[char_offset:]
        i += 3 if is_pre else 1
        if length == 0:
            continue
        if ch == "[":
            entity = _link_entity(url, offset, length, lookup_user)
            if entity:
                entities.append(entity)
        elif ch == "`":
            entity = {"type": "pre" if is_pre else "code", "offset": offset, "length": length}
            if language:
                entity["language"] = language
            entities.append(entity)
        else:
            entities.append({"type": "bold" if ch == "*" else "italic", "offset": offset, "length": length})
    return out.text(), entities
