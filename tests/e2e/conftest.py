"""HTTP fixtures: a TestClient on the test's own system, and a clinic of set-up steps over it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from e2e_helpers import Clinic
from infrastructure.bootstrap import Medledger, bootstrap

ClinicFactory = Callable[..., Clinic]


@pytest.fixture
def client(medledger: Medledger) -> Iterator[TestClient]:
    with TestClient(create_app(medledger)) as client:
        yield client


@pytest.fixture
def clinic(client: TestClient, medledger: Medledger, clock) -> Clinic:
    return Clinic(client, medledger, clock)


@pytest.fixture
def clinic_with(backend: str, make_settings, clock) -> Iterator[ClinicFactory]:
    """A clinic on this test's backend with other settings (Redis, read wait); closed after the test."""
    with ExitStack() as stack:

        def start(*, use_redis: bool = False, raise_server_exceptions: bool = True, **overrides: object) -> Clinic:
            system = bootstrap(make_settings(backend, use_redis=use_redis, **overrides), clock=clock)
            stack.callback(system.close)
            system.start_projector()
            client = stack.enter_context(TestClient(create_app(system), raise_server_exceptions=raise_server_exceptions))
            return Clinic(client, system, clock)

        yield start


@pytest.fixture
def quiet_projector(caplog: pytest.LogCaptureFixture) -> None:
    """For tests that leave the projector stuck on an event: it logs a traceback per retry, and CPython 3.11
    formatting tracebacks in two threads at once can break pytest's own report (AST recursion depth mismatch)."""
    caplog.set_level(logging.CRITICAL + 1, logger="medledger.projector")
