"""Settings read from MEDLEDGER_* environment variables (see the README for each one)."""

from __future__ import annotations

import base64
import binascii
import math
import os
import sys
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, load_pem_private_key
from limits import parse_many
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from domain.money import MINOR_UNITS
from infrastructure.encryption import MasterKeys

DEVELOPMENT_JWT_SECRET = "medledger-embedded-development-secret-do-not-use-in-production"


class MissingSecretError(RuntimeError):
    """Raised when a production deployment starts without MEDLEDGER_JWT_SECRET, MEDLEDGER_LOG_SIGNING_KEY or MEDLEDGER_MASTER_KEY."""


class InvalidSecretError(ValueError):
    """Raised when a key from the environment is not in its form (MEDLEDGER_LOG_SIGNING_KEY, MEDLEDGER_MASTER_KEY)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDLEDGER_", extra="ignore")

    data_dir: Path = Path("data")
    database_url: str | None = None
    read_database_url: str | None = None
    database_schema: str | None = None
    redis_url: str | None = None
    redis_prefix: str = "medledger"
    jwt_secret: SecretStr | None = None
    log_signing_key: SecretStr | None = None
    log_head_interval_seconds: float = Field(60.0, gt=0)
    master_key: SecretStr | None = None
    previous_master_keys: SecretStr | None = None
    keyring_recheck_seconds: float = Field(1.0, gt=0)
    access_token_minutes: int = 15
    refresh_token_days: int = 14
    patient_cancel_cutoff_hours: int = 24
    post_visit_access_hours: int = 24
    projector: Literal["inprocess", "external"] = "inprocess"
    projector_poll_seconds: float = 0.05
    read_wait_seconds: float = 2.0
    password_hashing: Literal["standard", "fast"] = "standard"
    group_commit: bool = True
    aggregate_cache_size: int = 20_000
    pool_size: int = 10
    idempotency_ttl_hours: int = 24
    interaction_table: Path | None = None
    prescription_valid_days: int = 30
    reminder_poll_seconds: float = 30.0
    reminder_lookback_minutes: int = 60
    attachment_max_bytes: int = 10 * 1024 * 1024
    login_max_failures: int = Field(5, ge=1)
    login_window_seconds: int = Field(900, ge=1)
    login_address_max_failures: int = Field(50, ge=1)
    login_lockout_minutes: tuple[int, ...] = (1, 5, 15, 60)
    write_rate_limit: str = "120/minute"
    clinic_code: str = Field("main", pattern=r"^[a-z0-9-]{1,32}$")
    billing_currency: str = "EUR"
    clinic_timezone: str = "UTC"
    payment_terms_days: int = Field(30, ge=0, le=365)
    no_show_fee: Decimal | None = Field(None, ge=0, le=100_000, decimal_places=2)
    billing_policy: bool = True
    gateway_webhook_secret: SecretStr | None = None
    gateway_tolerance_seconds: int = Field(300, ge=1, le=3600)

    @field_validator("billing_currency")
    @classmethod
    def _currency_is_iso(cls, code: str) -> str:
        if code not in MINOR_UNITS:
            raise ValueError("give an ISO 4217 currency code, e.g. EUR")
        return code

    @field_validator("clinic_timezone")
    @classmethod
    def _zone_exists(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("give an IANA time zone, e.g. Europe/Berlin") from None
        return name

    @field_validator("login_lockout_minutes")
    @classmethod
    def _lockouts_are_positive(cls, minutes: tuple[int, ...]) -> tuple[int, ...]:
        if not minutes or min(minutes) < 1:
            raise ValueError("give one or more lockout durations, in whole minutes, each at least 1")
        return minutes

    @field_validator("write_rate_limit")
    @classmethod
    def _rate_is_understood(cls, rate: str) -> str:
        parse_many(rate)  # raises ValueError on anything but "N/second|minute|hour|day" items, ";"-separated
        return rate
    storage_timeout_seconds: float = 5.0
    ready_max_projector_lag: int = 1000
    clinic_name: str = Field("Medledger Clinic", min_length=1, max_length=200)
    clinic_address: str = Field("1 Example Street, 10115 Berlin, Germany", max_length=500)
    clinic_tax_id: str = Field("DE000000000", max_length=50)

    @property
    def embedded(self) -> bool:
        return not self.database_url

    @cached_property
    def jwt_key(self) -> str:
        if self.jwt_secret is not None:
            return self.jwt_secret.get_secret_value()
        if not self.embedded:
            raise MissingSecretError("MEDLEDGER_JWT_SECRET must be set when MEDLEDGER_DATABASE_URL is set.")
        print(
            "WARNING: MEDLEDGER_JWT_SECRET is not set; using the embedded development secret. "
            "Never run like this outside a developer's machine.",
            file=sys.stderr,
        )
        return DEVELOPMENT_JWT_SECRET

    @cached_property
    def log_signing_private_key(self) -> Ed25519PrivateKey:
        """The transparency log's Ed25519 signing key: from the environment, or in embedded mode a key made once
        and kept under the data directory."""
        if self.log_signing_key is not None:
            return parse_signing_key(self.log_signing_key.get_secret_value())
        if not self.embedded:
            raise MissingSecretError(
                "MEDLEDGER_LOG_SIGNING_KEY must be set when MEDLEDGER_DATABASE_URL is set "
                "(an Ed25519 private key: PEM, or its 32 raw bytes in base64)."
            )
        path = self.data_dir / "log-signing-key.pem"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            pem = Ed25519PrivateKey.generate().private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption())
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "wb") as file:
                file.write(pem)
        print(
            f"WARNING: MEDLEDGER_LOG_SIGNING_KEY is not set; signing tree heads with the development key kept in {path}. "
            "Never run like this outside a developer's machine.",
            file=sys.stderr,
        )
        return parse_signing_key(path.read_text())

    @cached_property
    def master_keys(self) -> MasterKeys:
        """The master key that wraps patients' data keys (and earlier ones that still unwrap, during a rotation):
        from the environment, or in embedded mode a key made once and kept under the data directory."""
        previous = tuple(
            parse_master_key(part, "MEDLEDGER_PREVIOUS_MASTER_KEYS")
            for part in (self.previous_master_keys.get_secret_value() if self.previous_master_keys else "").split(",")
            if part.strip()
        )
        if self.master_key is not None:
            return MasterKeys(parse_master_key(self.master_key.get_secret_value(), "MEDLEDGER_MASTER_KEY"), previous)
        if not self.embedded:
            raise MissingSecretError(
                "MEDLEDGER_MASTER_KEY must be set when MEDLEDGER_DATABASE_URL is set (32 random bytes in base64: "
                "python3 -c 'import os,base64; print(base64.b64encode(os.urandom(32)).decode())')."
            )
        path = self.data_dir / "master-key"
        if not path.exists():
            self.data_dir.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(base64.b64encode(os.urandom(32)).decode())
        print(
            f"WARNING: MEDLEDGER_MASTER_KEY is not set; wrapping patients' data keys with the development key kept in "
            f"{path}. Never run like this outside a developer's machine.",
            file=sys.stderr,
        )
        return MasterKeys(parse_master_key(path.read_text(), str(path)), previous)

    @property
    def storage_timeout_whole_seconds(self) -> int:
        return max(1, math.ceil(self.storage_timeout_seconds))

    def postgres_connect_args(self, application_name: str = "medledger") -> dict[str, object]:
        """libpq parameters that bound every wait on PostgreSQL: connecting, a lock, a peer that went silent."""
        bound_ms = int(self.storage_timeout_seconds * 1000)
        return {
            "connect_timeout": self.storage_timeout_whole_seconds,
            "application_name": application_name,
            "tcp_user_timeout": bound_ms,
            "keepalives": 1,
            "keepalives_idle": self.storage_timeout_whole_seconds,
            "keepalives_interval": 1,
            "keepalives_count": 3,
            "options": f"-c lock_timeout={bound_ms}",
        }

    def event_store_env(self) -> dict[str, str]:
        if self.embedded:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return {
                "PERSISTENCE_MODULE": "eventsourcing.sqlite",
                "SQLITE_DBNAME": str(self.data_dir / "events.sqlite"),
                "SQLITE_LOCK_TIMEOUT": "10",
                "APPLICATION_RECORDER_TOPIC": "infrastructure.recorders:ClinicSQLiteRecorder",
            }
        url = urlsplit(self.database_url)
        env = {
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": url.path.lstrip("/") or "postgres",
            "POSTGRES_HOST": url.hostname or "127.0.0.1",
            "POSTGRES_PORT": str(url.port or 5432),
            "POSTGRES_USER": unquote(url.username or "postgres"),
            "POSTGRES_PASSWORD": unquote(url.password or ""),
            "POSTGRES_POOL_SIZE": str(self.pool_size),
            "POSTGRES_MAX_OVERFLOW": str(self.pool_size),
            # The library reads these as whole seconds; its CONNECT_TIMEOUT is how long to wait for a pooled connection.
            "POSTGRES_CONNECT_TIMEOUT": str(self.storage_timeout_whole_seconds),
            "POSTGRES_LOCK_TIMEOUT": str(self.storage_timeout_whole_seconds),
            "POSTGRES_IDLE_IN_TRANSACTION_SESSION_TIMEOUT": str(self.storage_timeout_whole_seconds),
            "APPLICATION_RECORDER_TOPIC": "infrastructure.recorders:ClinicPostgresRecorder",
        }
        if self.database_schema:
            env["POSTGRES_SCHEMA"] = self.database_schema
        return env

    def sqlalchemy_url(self, *, replica: bool = False) -> str:
        if self.embedded:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            return f"sqlite:///{self.data_dir / 'readmodels.sqlite'}"
        url = (self.read_database_url if replica and self.read_database_url else self.database_url) or ""
        scheme, rest = url.split("://", 1)
        return f"postgresql+psycopg://{rest}" if scheme in {"postgres", "postgresql"} else url


def parse_master_key(text: str, name: str) -> bytes:
    """A master key: 32 bytes in base64."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (ValueError, binascii.Error):
        raw = b""
    if len(raw) != 32:
        raise InvalidSecretError(f"{name} is not a master key (32 random bytes in base64).")
    return raw


def parse_signing_key(text: str) -> Ed25519PrivateKey:
    """An Ed25519 private key from PEM (PKCS#8) or from its 32 raw bytes in base64."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_private_key(text.encode(), password=None)
            if isinstance(key, Ed25519PrivateKey):
                return key
        else:
            raw = base64.b64decode(text, validate=True)
            if len(raw) == 32:
                return Ed25519PrivateKey.from_private_bytes(raw)
    except (ValueError, TypeError, binascii.Error):
        pass
    raise InvalidSecretError("MEDLEDGER_LOG_SIGNING_KEY is not an Ed25519 private key (PEM, or 32 bytes in base64).")
