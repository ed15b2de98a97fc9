"""Files visitors send from the widget: checked, kept in the data folder every process shares, served back only to
their visitor and to staff, always as a download (``Content-Disposition: attachment``, no sniffing).

A file's type is read off its first bytes, not taken from the browser: pictures (PNG, JPEG, GIF, WebP), PDF and
plain UTF-8 text; anything else, or anything larger than WEB_MAX_UPLOAD_MB, is refused with a message that says
what is accepted.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote

import redis.asyncio as aioredis
from aiohttp import web

from bot.core.redis_values import fields_of, text_map
from bot.web import keys

__all__ = ["StoredFile", "UnacceptableFile", "WebFiles"]

_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png", ".png"),
    (b"\xff\xd8\xff", "image/jpeg", ".jpg"),
    (b"GIF87a", "image/gif", ".gif"),
    (b"GIF89a", "image/gif", ".gif"),
    (b"%PDF-", "application/pdf", ".pdf"),
)
_UNSAFE_NAME = re.compile(r"[^\w.\- ()]+", re.UNICODE)


class UnacceptableFile(ValueError):
    """Too large, or of a type the widget does not take."""


@dataclass(frozen=True)
class StoredFile:
    id: str
    chat_id: int
    name: str
    content_type: str
    size: int
    path: Path

    @property
    def kind(self) -> str:
        """As the hand-off names media: photo or document."""
        return "photo" if self.content_type.startswith("image/") else "document"

    def to_event(self) -> dict[str, object]:
        return {"id": self.id, "name": self.name, "type": self.content_type, "size": self.size}

    def response(self) -> web.FileResponse:
        return web.FileResponse(self.path, headers={
            "Content-Type": self.content_type,
            "Content-Disposition": f"attachment; filename*=UTF-8''{_quoted(self.name)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, max-age=3600",
        })


def _quoted(name: str) -> str:
    return quote(name, safe="")


def sniff(data: bytes) -> tuple[str, str] | None:
    """(content type, extension) read off the file's first bytes; None for a type that is not accepted."""
    for signature, content_type, extension in _SIGNATURES:
        if data.startswith(signature):
            return content_type, extension
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp", ".webp"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return ("text/plain; charset=utf-8", ".txt") if "\x00" not in text else None


class WebFiles:
    def __init__(self, redis: aioredis.Redis, folder: Path, *, max_bytes: int, retention_days: int = 90) -> None:
        self._redis = redis
        self.folder = folder
        self.max_bytes = max_bytes
        self._ttl = retention_days * 86400

    async def save(self, chat_id: int, name: str, data: bytes) -> StoredFile:
        if len(data) > self.max_bytes:
            raise UnacceptableFile("too_large")
        sniffed = sniff(data)
        if sniffed is None or not data:
            raise UnacceptableFile("wrong_type")
        content_type, extension = sniffed
        file_id = secrets.token_urlsafe(12)
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{file_id}{extension}"
        path.write_bytes(data)
        # some clients percent-encode a name's non-ASCII letters (browsers send them as they are)
        clean = _UNSAFE_NAME.sub("_", Path(unquote(name)).name).strip()[:100] or f"file{extension}"
        stored = StoredFile(file_id, chat_id, clean, content_type, len(data), path)
        await self._redis.hset(keys.file(file_id), mapping=fields_of({
            "chat": str(chat_id), "name": clean, "type": content_type, "size": str(len(data)), "path": str(path),
        }))
        await self._redis.expire(keys.file(file_id), self._ttl)
        return stored

    async def get(self, file_id: str) -> StoredFile | None:
        data = text_map(await self._redis.hgetall(keys.file(file_id)))
        if not data or not Path(data["path"]).is_file():
            return None
        return StoredFile(file_id, int(data["chat"]), data["name"], data["type"], int(data["size"]), Path(data["path"]))
