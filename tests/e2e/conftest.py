"""HTTP fixtures: a TestClient on the test's own system, and a clinic of set-up steps over it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.app import create_app, serve
from e2e_helpers import Clinic
from infrastructure.bootstrap import Medledger, bootstrap

ClinicFactory = Callable[..., Clinic]


_IDLE_APPS: list[FastAPI] = []


@contextmanager
def app_for(system: Medledger) -> Iterator[FastAPI]:
    """An app serving the system, lent for one test: FastAPI builds each route's models on an app's first
    requests (hundreds of milliseconds), so this worker's apps are reused rather than built per test."""
    app = _IDLE_APPS.pop() if _IDLE_APPS else create_app(system)
    serve(app, system)
    try:
        yield app
    finally:
        _IDLE_APPS.append(app)


@pytest.fixture
def client(medledger: Medledger) -> Iterator[TestClient]:
    with app_for(medledger) as app, TestClient(app) as client:
        yield client


@pytest.fixture
def clinic(client: TestClient, medledger: Medledger, clock) -> Clinic:
    return Clinic(client, medledger, clock)


@pytest.fixture
def clinic_with(backend: str, make_settings, clock) -> Iterator[ClinicFactory]:
    """A clinic on this test's backend with other settings (Redis, read wait); closed after the test."""
    with ExitStack() as stack:

        def start(*, use_redis: bool = False, raise_server_exceptions: bool = True, **overrides: object) -> Clinic:
            system = bootstrap(make_settings(backend, use_redis=use_redis, reuse_schema=True, **overrides), clock=clock)
            stack.callback(system.close)
            system.start_projector()
            app = stack.enter_context(app_for(system))
            client = stack.enter_context(TestClient(app, raise_server_exceptions=raise_server_exceptions))
            return Clinic(client, system, clock)

        yield start


@pytest.fixture
def quiet_projector(caplog: pytest.LogCaptureFixture) -> None:
    """For tests that leave the projector stuck on an event: it logs a traceback per retry, and CPython 3.11
    formatting tracebacks in two threads at once can break pytest's own report (AST recursion depth mismatch)."""
    caplog.set_level(logging.CRITICAL + 1, logger="medledger.projector")
