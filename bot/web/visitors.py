"""Who is writing in the widget: an anonymous visitor with a signed id kept in his browser, or a signed-in user
of the company's website whose id the site signed.

A visitor's token is ``<number>.<signature>``: his number in the web channel (``bot.core.channels``) signed
with the channel's secret, so changing the number gives a token that is refused, and no visitor can read another
one's conversation. A website that knows its user passes his id with ``HMAC-SHA256(WEB_IDENTITY_SECRET, id)``
(hex): the same user gets the same conversation, with his earlier tickets, on every device; a forged or
unsigned identity is refused.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

import redis.asyncio as aioredis

from bot.core.channels import Channel, chat_id_in, number_in
from bot.core.redis_values import fields_of, text_map
from bot.web import keys

__all__ = ["ForgedIdentity", "Visitor", "Visitors", "identity_hash"]


class ForgedIdentity(ValueError):
    """A signed identity whose signature does not match (or signed identities are not enabled)."""


def identity_hash(secret: str, user_id: str) -> str:
    """What the website puts in ``data-user-hash``: hex HMAC-SHA256 of the user's id with the shared secret."""
    return hmac.new(secret.encode(), user_id.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Visitor:
    chat_id: int
    token: str
    name: str
    lang: str = ""
    site_user_id: str = ""


class Visitors:
    def __init__(self, redis: aioredis.Redis, secret: str = "", identity_secret: str = "") -> None:
        self._redis = redis
        self._secret = secret.encode()
        self.identity_secret = identity_secret

    async def ready(self) -> None:
        """The signing key: WEB_SECRET, or one made once and shared by every process through Redis."""
        if not self._secret:
            await self._redis.set(keys.SECRET, secrets.token_hex(32), nx=True)
            self._secret = str(await self._redis.get(keys.SECRET)).encode()

    def _sign(self, number: int) -> str:
        digest = hmac.new(self._secret, f"web:{number}".encode(), hashlib.sha256).hexdigest()[:32]
        return f"{number}.{digest}"

    def chat_of(self, token: str) -> int | None:
        """The chat a token stands for; None when it was not signed here (forged, or from another deployment)."""
        number, _, _ = token.partition(".")
        if not number.isdigit() or not self._secret:
            return None
        if not hmac.compare_digest(self._sign(int(number)), token):
            return None
        return chat_id_in(Channel.WEB, int(number))

    async def visitor(self, chat_id: int) -> Visitor:
        profile = text_map(await self._redis.hgetall(keys.profile(chat_id)))
        number = number_in(chat_id)
        return Visitor(chat_id, self._sign(number), profile.get("name", ""), profile.get("lang", ""),
                       profile.get("user", ""))

    async def new(self, lang: str = "") -> Visitor:
        number = int(await self._redis.incr(keys.VISITORS))
        chat_id = chat_id_in(Channel.WEB, number)
        await self._redis.hset(keys.profile(chat_id), mapping={"lang": lang})
        return await self.visitor(chat_id)

    async def signed_in(self, user_id: str, signature: str, name: str = "", lang: str = "") -> Visitor:
        """The website's own user, his id signed by the website: his conversation, the same on every device."""
        if not self.identity_secret or not user_id:
            raise ForgedIdentity("signed identities are not enabled (WEB_IDENTITY_SECRET is not set)")
        if not hmac.compare_digest(identity_hash(self.identity_secret, user_id), signature.strip().lower()):
            raise ForgedIdentity("the user's signature does not match: data-user-hash must be the hex "
                                 "HMAC-SHA256 of data-user-id with WEB_IDENTITY_SECRET")
        number = int(await self._redis.incr(keys.VISITORS))
        if not await self._redis.set(keys.user(user_id), str(number), nx=True):
            number = int(str(await self._redis.get(keys.user(user_id))))
        chat_id = chat_id_in(Channel.WEB, number)
        profile = {"user": user_id, **({"name": name[:100]} if name else {}), **({"lang": lang} if lang else {})}
        await self._redis.hset(keys.profile(chat_id), mapping=fields_of(profile))
        return await self.visitor(chat_id)

    async def remember_language(self, chat_id: int, lang: str) -> None:
        await self._redis.hset(keys.profile(chat_id), "lang", lang)
