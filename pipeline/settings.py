"""The one settings object.

Process settings come from ``SAFEGUARD_*`` environment variables. The partnership's rules (timescales,
ladders, calendar, council) come from ``config/defaults.yaml`` deep-merged with the YAML file named by
``SAFEGUARD_CONFIG`` (and, for ``safeguard run --demo``, ``config/demo.yaml`` in between). Adapters and
rules receive what they need from here; nothing else reads ``os.environ``.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = PROJECT_ROOT / "config"


# Settings whose values are each one whole value, though written as a mapping: a timescale such as
# {working_hours: 2} is replaced by {working_days: 0, at: "17:00"}, not merged with it.
_WHOLE_VALUES = {("timescales",)}


def deep_merge(base: dict[str, Any], override: dict[str, Any], _path: tuple[str, ...] = ()) -> dict[str, Any]:
    """Return ``base`` with ``override`` merged in; mappings merge key by key, anything else replaces (and so does
    each timescale, whatever its form)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict) and _path not in _WHOLE_VALUES:
            merged[key] = deep_merge(merged[key], value, (*_path, str(key)))
        else:
            merged[key] = value
    return merged


class ConfigurationError(ValueError):
    """The process cannot start with this configuration; the message names the file or setting and why. The
    command line prints it as one line (no traceback) and exits 2."""


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        with path.open(encoding="utf-8") as handle:
            loaded = yaml.safe_load(handle) or {}
    except OSError as error:
        raise ConfigurationError(f"{path}: cannot read it ({error.strerror or type(error).__name__})") from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigurationError(f"{path}: not valid YAML{where}") from None
    if not isinstance(loaded, dict):
        raise ConfigurationError(f"{path}: the top level must be a mapping")
    return loaded


# Settings whose keys are the council's own (a school's URN, a recipient role or team code), not names of settings.
_OPEN_MAPPINGS = {("calendar", "school_term_holidays"), ("delivery", "webhooks"), ("delivery", "routes"),
                  ("delivery", "recipient_team")}


def _check_known(given: dict[str, Any], defaults: dict[str, Any], path: tuple[str, ...] = ()) -> None:
    """Refuse a setting config/defaults.yaml does not have (``timescale:`` for ``timescales:``, or
    ``self_harm_acknowledgment``): misspelt, it would be ignored without a word, and the council's timescale or
    ladder would silently stay the default."""
    for key, value in given.items():
        here = (*path, str(key))
        if key not in defaults:
            known = ", ".join(sorted(str(k) for k in defaults))
            raise ConfigurationError(f"{'.'.join(here)}: unknown setting (known here: {known})")
        default = defaults[key]
        if isinstance(value, dict) and isinstance(default, dict) and here not in _OPEN_MAPPINGS \
                and path not in _WHOLE_VALUES:  # a timescale's own form is checked by the rules that read it
            _check_known(value, default, here)


# The sections whose every setting is a number (a count, seconds, bytes) where config/defaults.yaml has a number.
_NUMERIC_SECTIONS = ("runtime", "web")


def _check_shape(rules: dict[str, Any], defaults: dict[str, Any]) -> None:
    """Refuse, by name, what the rules' own checks would meet as a Python error: a section that should be a
    mapping and is not, or a tuning number that is not a number. (Durations, ladders and thresholds are checked
    by the rules that read them.)"""
    for section, default in defaults.items():
        if isinstance(default, dict) and not isinstance(rules.get(section), dict):
            raise ConfigurationError(f"{section}: a mapping of settings, not {type(rules.get(section)).__name__}")
    for section in _NUMERIC_SECTIONS:
        for key, default in defaults[section].items():
            value = rules[section].get(key)
            numeric = isinstance(default, (int, float)) and not isinstance(default, bool)
            if numeric and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise ConfigurationError(f"{section}.{key}: a number, not {value!r}")
            if isinstance(default, dict) and not isinstance(value, dict):
                raise ConfigurationError(f"{section}.{key}: a mapping of settings, not {type(value).__name__}")


def default_rules() -> dict[str, Any]:
    """config/defaults.yaml as read: the rules every council starts from."""
    return _read_yaml(CONFIG_DIR / "defaults.yaml")


class Settings(BaseSettings):
    """Settings for one process. Construct once at start-up and pass down."""

    model_config = SettingsConfigDict(env_prefix="SAFEGUARD_", extra="ignore")

    database_url: str = Field(default=f"sqlite:///{PROJECT_ROOT / 'var' / 'safeguard.db'}")
    kafka_bootstrap: str | None = None
    kafka_group: str = "safeguard-worker"  # the faust app id, i.e. the consumer group
    kafka_topic_prefix: str = ""  # empty in production (topics named as the contract says); tests isolate
    metrics_port: int | None = None  # a worker serves Prometheus metrics here when set
    config: Path | None = None
    demo: bool = False
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    public_url: str = "http://127.0.0.1:8000"
    var_dir: Path | None = None  # outbox messages and topic files; default: beside the SQLite file, else var/
    # Delivery channels beyond the always-on outbox file; each is off until configured.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "safeguarding-notifications@localhost"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = None
    twilio_from: str | None = None
    twilio_base_url: str | None = None  # a local fake in tests; unset means Twilio's own API
    webhook_url: str | None = None  # the signed webhook's endpoint for schools without their own in config
    webhook_secret: str | None = None  # HMAC-SHA256 key for webhooks; no webhook is sent without it
    notify_api_key: str | None = None  # GOV.UK Notify (delivery.email / delivery.sms: notify)
    notify_base_url: str | None = None  # a local fake in tests; unset means Notify's own API
    notify_callback_token: str | None = None  # the bearer token Notify's delivery-status callbacks carry
    callback_url: str | None = None  # where providers call back (default public_url); Twilio signs this URL
    # Argon2id cost of each web password hash (RFC 9106's low-memory profile). Tests lower it so that
    # starting a pipeline with ten users takes milliseconds; a deployment keeps the default.
    argon2_time_cost: int = Field(default=3, ge=1)
    argon2_memory_kib: int = Field(default=65536, ge=32)

    @field_validator("log_level", mode="before")
    @classmethod
    def _level_in_capitals(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @cached_property
    def rules(self) -> dict[str, Any]:
        """The merged rule configuration: defaults, then the demo overlay, then SAFEGUARD_CONFIG."""
        defaults = merged = default_rules()
        calendar_file = CONFIG_DIR / "calendar.yaml"
        if calendar_file.exists():
            merged = deep_merge(merged, _read_yaml(calendar_file))
        if self.demo:
            merged = deep_merge(merged, _read_yaml(CONFIG_DIR / "demo.yaml"))
        if self.config is not None:
            given = _read_yaml(self.config)
            try:
                _check_known(given, defaults)
            except ConfigurationError as error:
                raise ConfigurationError(f"{self.config}: {error}") from None
            merged = deep_merge(merged, given)
        _check_shape(merged, defaults)
        return merged

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")
