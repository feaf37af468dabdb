"""Builds the running system from settings: event store, read models, Redis, auth and handlers' services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import redis
from sqlalchemy import Engine

from commands.base import BillingPolicy, Clock, LoginPolicy, Services
from infrastructure import billing_policy
from infrastructure.blobs import SqlBlobs
from infrastructure.blobs import metadata as blob_metadata
from infrastructure.database import create_read_model_engine, exclusive
from infrastructure.encryption import Keyring
from infrastructure.erasure import DataEraser, erasure_approved
from infrastructure.eventstore import Clinic, EventStore
from infrastructure.history import StreamHistory
from infrastructure.idempotency import RedisIdempotency, SqlIdempotency
from infrastructure.idempotency import metadata as idempotency_metadata
from infrastructure.login_attempts import RedisLoginAttempts, SqlLoginAttempts
from infrastructure.login_attempts import metadata as login_attempts_metadata
from infrastructure.metrics import observe_batch
from infrastructure.interactions import FileInteractionTables, ReadModelPrescriptionIndex
from infrastructure.progress import ReadModelProgress
from infrastructure.projector import ProjectionWorker
from infrastructure.reminders import ReminderWorker
from infrastructure.security import Passwords, Tokens
from infrastructure.settings import Settings
from infrastructure.transparency import TransparencyLog
from infrastructure.write_limits import WriteLimits
from projections.erasures import erasure_follower
from projections.projectors import all_projectors


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Medledger:
    settings: Settings
    store: EventStore
    services: Services
    tokens: Tokens
    idempotency: SqlIdempotency | RedisIdempotency
    write_limits: WriteLimits
    write_engine: Engine
    read_engine: Engine
    projection: ProjectionWorker
    progress: ReadModelProgress
    redis: redis.Redis | None
    history: StreamHistory
    transparency: TransparencyLog
    reminders: ReminderWorker | None = None
    drafting: billing_policy.DraftingPolicy | None = None

    def start_projector(self) -> None:
        self.store.after_save.append(self.projection.wake)
        self.projection.after_progress.append(self.progress.wake)
        self.projection.start()
        if self.reminders is not None:
            self.reminders.start()

    def close(self) -> None:
        if self.reminders is not None:
            self.reminders.stop()
        self.projection.stop()
        self.progress.stop()
        self.store.close()
        self.write_engine.dispose()
        self.read_engine.dispose()
        if self.redis is not None:
            self.redis.close()


def bootstrap(settings: Settings | None = None, clock: Clock = utc_now) -> Medledger:
    settings = settings or Settings()
    # Processes started together (the API and the projector in docker-compose) create the schema, the
    # event store's tables, type and function, and the read-model tables one after the other.
    with exclusive(settings, "schema"):
        write_engine = create_read_model_engine(settings)
        keyring = Keyring(write_engine, settings.master_keys, recheck_seconds=settings.keyring_recheck_seconds)
        keyring.create_tables()
        blob_metadata.create_all(write_engine)
        app = Clinic(env=settings.event_store_env(), keyring=keyring)
        store = EventStore(
            app,
            group_commit=settings.group_commit,
            cache_size=settings.aggregate_cache_size,
            save_timeout=settings.storage_timeout_seconds,
            on_batch=observe_batch,
        )
        projection = ProjectionWorker(
            app,
            write_engine,
            all_projectors(),
            settings.projector_poll_seconds,
            rebuild_lock=lambda *names: exclusive(settings, *names, wait=False),
        )
        projection.create_tables()
        transparency = TransparencyLog(
            write_engine,
            store.recorder.stored_rows,
            store.max_position,
            settings.log_signing_private_key,
            settings.log_head_interval_seconds,
        )
        transparency.create_tables()
        projection.followers.append(transparency.run_once)
        idempotency_metadata.create_all(write_engine)
        login_attempts_metadata.create_all(write_engine)
        billing_policy.create_tables(write_engine)
        if settings.billing_policy:
            billing_policy.start_at_end(write_engine, app)
    read_engine = create_read_model_engine(settings, replica=True) if settings.read_database_url else write_engine

    access_lifetime = timedelta(minutes=settings.access_token_minutes)
    idempotency_ttl = timedelta(hours=settings.idempotency_ttl_hours)
    login_window = timedelta(seconds=settings.login_window_seconds)
    bound = {"socket_timeout": settings.storage_timeout_seconds, "socket_connect_timeout": settings.storage_timeout_seconds}
    client = redis.Redis.from_url(settings.redis_url, **bound) if settings.redis_url else None
    if client is not None:
        client.ping()
        idempotency: SqlIdempotency | RedisIdempotency = RedisIdempotency(client, settings.redis_prefix, idempotency_ttl)
        login_attempts: SqlLoginAttempts | RedisLoginAttempts = RedisLoginAttempts(
            client, settings.redis_prefix, login_window, settings.login_address_max_failures
        )
    else:
        idempotency = SqlIdempotency(write_engine, idempotency_ttl)
        login_attempts = SqlLoginAttempts(write_engine, login_window, settings.login_address_max_failures)

    reminders = (
        ReminderWorker(
            read_engine,
            client,
            settings.redis_prefix,
            clock,
            settings.reminder_poll_seconds,
            timedelta(minutes=settings.reminder_lookback_minutes),
        )
        if client is not None
        else None
    )
    blobs = SqlBlobs(write_engine, keyring)
    eraser = DataEraser(keyring, blobs, [idempotency, *([reminders] if reminders is not None else [])])
    projection.followers.append(erasure_follower(write_engine, lambda patient_id: erasure_approved(store, patient_id), eraser.erase, eraser.erased))
    services = Services(
        store=store,
        clock=clock,
        hasher=Passwords(settings.password_hashing),
        login_attempts=login_attempts,
        login_policy=LoginPolicy(
            max_failures=settings.login_max_failures,
            lockouts=tuple(timedelta(minutes=m) for m in settings.login_lockout_minutes),
        ),
        patient_cutoff=timedelta(hours=settings.patient_cancel_cutoff_hours),
        refresh_lifetime=timedelta(days=settings.refresh_token_days),
        post_visit_access=timedelta(hours=settings.post_visit_access_hours),
        blobs=blobs,
        eraser=eraser,
        interactions=FileInteractionTables(settings.interaction_table),
        prescriptions=ReadModelPrescriptionIndex(write_engine),
        prescription_validity=timedelta(days=settings.prescription_valid_days),
        billing=BillingPolicy(
            clinic=settings.clinic_code,
            currency=settings.billing_currency,
            timezone=settings.clinic_timezone,
            payment_terms=timedelta(days=settings.payment_terms_days),
            no_show_fee=settings.no_show_fee,
        ),
    )
    drafting = billing_policy.DraftingPolicy(services, app, write_engine) if settings.billing_policy else None
    if drafting is not None:
        projection.followers.append(drafting.run_once)
    return Medledger(
        settings=settings,
        store=store,
        services=services,
        tokens=Tokens(settings.jwt_key, access_lifetime),
        idempotency=idempotency,
        write_limits=WriteLimits(settings.write_rate_limit, settings.redis_url, settings.redis_prefix),
        write_engine=write_engine,
        read_engine=read_engine,
        projection=projection,
        progress=ReadModelProgress(read_engine, store.max_position, settings.projector_poll_seconds),
        redis=client,
        history=StreamHistory(app),
        transparency=transparency,
        reminders=reminders,
        drafting=drafting,
    )
