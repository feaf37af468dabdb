"""Operations: liveness, readiness (storage, Redis, projector lag) and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import anyio
import anyio.to_thread
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import select

from api.deps import MedledgerDep
from infrastructure.bootstrap import Medledger
from infrastructure.metrics import Progress, exposition
from projections.tables import positions

router = APIRouter(tags=["operations"])
T = TypeVar("T")


class CheckFailedError(Exception):
    """Raised when a readiness check fails or does not answer within the storage bound."""


async def bounded(m: Medledger, check: Callable[[], T]) -> T:
    """Runs a blocking check in a thread, giving up (and leaving the thread behind) after the storage bound."""
    with anyio.move_on_after(m.settings.storage_timeout_seconds):
        try:
            return await anyio.to_thread.run_sync(check, abandon_on_cancel=True)
        except Exception as error:  # noqa: BLE001 - any failure means "not ready", with its reason
            raise CheckFailedError(f"{type(error).__name__}: {str(error)[:200]}") from error
    raise CheckFailedError(f"no answer within {m.settings.storage_timeout_seconds:g}s")


def read_progress(m: Medledger) -> Progress:
    log_end = m.store.max_position()
    with m.read_engine.connect() as conn:
        reached = dict(conn.execute(select(positions.c.name, positions.c.position)).all())
    return Progress(log_end, {p.name: reached.get(p.name, 0) for p in m.projection.projectors}, m.progress.waiting)


@router.get("/health/live")
async def live() -> dict[str, str]:
    """Liveness: the process answers (nothing else is checked, so a storage outage never restarts it)."""
    return {"status": "alive"}


@router.get("/health/ready", responses={503: {"description": "Not ready: storage, Redis or the projectors are not"}})
async def ready(m: MedledgerDep) -> JSONResponse:
    """Readiness: the event store and read models answer, Redis answers (when configured), and no projector is
    more than MEDLEDGER_READY_MAX_PROJECTOR_LAG events behind the log."""
    checks: dict[str, dict[str, Any]] = {}
    try:
        progress = await bounded(m, lambda: read_progress(m))
    except CheckFailedError as error:
        checks["storage"] = {"ok": False, "reason": str(error)}
        checks["projector_lag"] = {"ok": False, "reason": "storage is not answering"}
    else:
        lag = {name: max(progress.log_end - reached, 0) for name, reached in progress.projectors.items()}
        checks["storage"] = {"ok": True, "event_store_position": progress.log_end}
        checks["projector_lag"] = {
            "ok": max(lag.values(), default=0) <= m.settings.ready_max_projector_lag,
            "lag": lag,
            "max_allowed": m.settings.ready_max_projector_lag,
        }
    if m.redis is None:
        checks["redis"] = {"ok": True, "configured": False}
    else:
        client = m.redis
        try:
            await bounded(m, client.ping)
            checks["redis"] = {"ok": True, "configured": True}
        except CheckFailedError as error:
            checks["redis"] = {"ok": False, "configured": True, "reason": str(error)}
    failing = sorted(name for name, check in checks.items() if not check["ok"])
    if failing:
        body = {"code": "not_ready", "message": f"Not ready: {', '.join(failing)}.", "status": "not_ready", "checks": checks}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})
    return JSONResponse({"status": "ready", "checks": checks})


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
async def metrics(m: MedledgerDep) -> Response:
    """Prometheus metrics: request latency, command outcomes, group-commit batches, projector positions and lag,
    read-wait timeouts."""
    try:
        progress: Progress | None = await bounded(m, lambda: read_progress(m))
    except CheckFailedError:
        progress = None
    return Response(exposition(progress), media_type=CONTENT_TYPE_LATEST)
