"""Bot API request parameters: read from any body Telegram accepts, then typed and validated one by one.

aiogram sends ``multipart/form-data`` with complex values as JSON strings; people with curl send JSON, url-encoded
forms or query strings. Files arrive as form parts, referenced by name or as ``attach://<part>``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import aiohttp
from multidict import CIMultiDictProxy

from bot.emulator._errors import bad_request

__all__ = ["Params", "UploadedFile", "read_body"]


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    content: bytes
    content_type: str | None


async def read_body(headers: CIMultiDictProxy[str], content: aiohttp.StreamReader) -> dict[str, Any]:
    """The parameters in an HTTP body (a request to the emulator, or a webhook's reply to it)."""
    content_type = headers.get("Content-Type", "").split(";")[0].strip().lower()
    if content_type == "multipart/form-data":
        values: dict[str, Any] = {}
        reader = aiohttp.MultipartReader(headers, content)
        async for part in reader:
            if not isinstance(part, aiohttp.BodyPartReader) or not part.name:
                continue
            if part.filename is not None:
                values[part.name] = UploadedFile(
                    part.filename, bytes(await part.read()), part.headers.get("Content-Type")
                )
            else:
                values[part.name] = await part.text()
        return values
    raw = await content.read()
    if not raw.strip():
        return {}
    if content_type == "application/json":
        try:
            decoded = json.loads(raw)
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise bad_request("can't parse JSON encoded request") from error
        if not isinstance(decoded, dict):
            raise bad_request("can't parse JSON encoded request")
        return decoded
    return dict(parse_qsl(raw.decode("utf-8", errors="replace"), keep_blank_values=True))


class Params:
    """Typed access to one request's parameters, failing with Telegram's own 400 descriptions."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.values = dict(values)

    def has(self, name: str) -> bool:
        return self.values.get(name) not in (None, "")

    def text(self, name: str, *, required: bool = False) -> str | None:
        value = self.values.get(name)
        if value in (None, ""):
            if required:
                raise bad_request(f"{name} is empty")
            return None
        if isinstance(value, (dict, list, UploadedFile)):
            raise bad_request(f"wrong parameter {name} in request")
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def integer(self, name: str, *, required: bool = False) -> int | None:
        value = self.values.get(name)
        if value in (None, ""):
            if required:
                raise bad_request(f"{name} is empty")
            return None
        if isinstance(value, bool):
            raise bad_request(f"wrong parameter {name} in request")
        if isinstance(value, int):
            return value
        try:
            return int(str(value).strip())
        except ValueError as error:
            raise bad_request(f"wrong parameter {name} in request") from error

    def required_integer(self, name: str) -> int:
        value = self.integer(name, required=True)
        assert value is not None
        return value

    def number(self, name: str, *, required: bool = False) -> float | None:
        value = self.values.get(name)
        if value in (None, ""):
            if required:
                raise bad_request(f"{name} is empty")
            return None
        try:
            return float(value)
        except (TypeError, ValueError) as error:
            raise bad_request(f"wrong parameter {name} in request") from error

    def flag(self, name: str) -> bool:
        value = self.values.get(name)
        if isinstance(value, bool):
            return value
        if value in (None, ""):
            return False
        return str(value).strip().lower() in ("true", "1", "yes")

    def json_value(self, name: str, *, error: str | None = None) -> Any:
        """A complex value: JSON text from a form, or the value itself from a JSON body."""
        value = self.values.get(name)
        if value in (None, ""):
            return None
        if isinstance(value, str):
            try:
                return json.loads(value)
            except json.JSONDecodeError as decode_error:
                raise bad_request(error or f"can't parse {name} JSON object") from decode_error
        return value

    def chat_id(self, name: str = "chat_id") -> int | str:
        value = self.values.get(name)
        if value in (None, ""):
            raise bad_request(f"{name} is empty")
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        text = str(value).strip()
        if text.startswith("@"):
            return text
        try:
            return int(text)
        except ValueError as error:
            raise bad_request("chat not found") from error

    def file(self, name: str) -> UploadedFile | str | None:
        """An uploaded file (directly or via ``attach://``), or a file_id / URL string."""
        value = self.values.get(name)
        if isinstance(value, str) and value.startswith("attach://"):
            attached = self.values.get(value[len("attach://") :])
            if not isinstance(attached, UploadedFile):
                raise bad_request(f"file {value} not found in the request")
            return attached
        if isinstance(value, UploadedFile):
            return value
        return value if value not in (None, "") else None

    def for_log(self) -> dict[str, Any]:
        """The parameters as a test wants to read them back: files shown by name and size, JSON decoded."""
        shown: dict[str, Any] = {}
        attached = {
            v[len("attach://") :] for v in self.values.values() if isinstance(v, str) and v.startswith("attach://")
        }
        for key, value in self.values.items():
            if key in attached:
                continue
            if isinstance(value, str) and value.startswith("attach://"):
                value = self.values.get(value[len("attach://") :], value)
            if isinstance(value, UploadedFile):
                shown[key] = f"<file {value.filename}, {len(value.content)} bytes>"
            elif isinstance(value, str) and value[:1] in ("{", "["):
                try:
                    shown[key] = json.loads(value)
                except json.JSONDecodeError:
                    shown[key] = value
            else:
                shown[key] = value
        return shown
