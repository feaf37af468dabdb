"""The FastAPI application: routers, error mapping, correlation ids and the system's lifetime."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi_offline import FastAPIOffline
from sqlalchemy import select

from api import errors, responses
from api.deps import CorrelationIdMiddleware, MedledgerDep, UploadLimitMiddleware
from api.observability import RequestLogMiddleware, configure_request_log
from api.routes import (
    accounts,
    appointments,
    audit,
    auth,
    billing,
    billing_reads,
    care,
    chart,
    consultations,
    doctors,
    erasure,
    gateway,
    operations,
    patients,
    prescriptions,
    reads,
    transparency,
)
from infrastructure.bootstrap import Medledger, bootstrap
from projections.tables import positions


def serve(app: FastAPI, system: Medledger) -> None:
    """Points the app at a system, forgetting what it kept for the one before (an app builds each route's
    models on its first requests, so tests lend one app to one system after another)."""
    app.state.medledger = system
    if hasattr(app.state, "read_gates"):
        del app.state.read_gates


def create_app(medledger: Medledger | None = None) -> FastAPI:
    """Builds the API; without a system given, it bootstraps one from the environment at start-up."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if medledger is not None:
            yield
            return
        system = bootstrap()
        if system.settings.projector == "inprocess":
            system.start_projector()
        serve(app, system)
        try:
            yield
        finally:
            system.close()

    configure_request_log()
    # Swagger UI and ReDoc assets are served from the installed package: /docs works without internet.
    app = FastAPIOffline(
        title="Medledger",
        version="0.1.0",
        description="Event-sourced clinic backend: every change is an immutable event.",
        lifespan=lifespan,
    )
    if medledger is not None:
        serve(app, medledger)
    app.add_middleware(UploadLimitMiddleware)
    app.add_middleware(CorrelationIdMiddleware)
    app.add_middleware(RequestLogMiddleware)
    errors.install(app)
    routers = (
        operations, auth, accounts, doctors, patients, chart, appointments, care, consultations, prescriptions, billing, billing_reads,
        gateway, audit, reads, transparency, erasure,
    )  # fmt: skip
    for router in (module.router for module in routers):
        app.include_router(router)

    @app.get("/health", tags=["operations"], responses=responses.errors(503))
    def health(m: MedledgerDep) -> dict[str, Any]:
        """How far each read model has applied the event log (see /health/live and /health/ready for probes)."""
        with m.read_engine.connect() as conn:
            reached = dict(conn.execute(select(positions.c.name, positions.c.position)).all())
        return {"status": "ok", "event_store_position": m.store.max_position(), "read_models": reached}

    return app
