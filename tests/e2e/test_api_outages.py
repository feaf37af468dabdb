"""PostgreSQL away or restarted: every request answers 503 with Retry-After within the storage bound, never hangs,
never 500; the service recovers by itself, and a restart fails no request.

PostgreSQL is reached through a relay the test cuts (tests/e2e/outage_helpers.py); the shared server is never stopped.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from e2e_helpers import Clinic, User, expect, iso, position
from infrastructure.bootstrap import Medledger, bootstrap
from outage_helpers import PostgresProxy
from tests.conftest import POSTGRES_URL

STORAGE_TIMEOUT = 2.0
SLACK = 1.5
# Each test sends about twenty requests that should each end within the bound: far longer means requests hang.
pytestmark = pytest.mark.timeout(240)


@dataclass
class Site:
    """A clinic whose API reaches PostgreSQL only through the relay."""

    clinic: Clinic
    proxy: PostgresProxy
    admin: User
    doctor: User
    patient: User
    appointment_id: str

    def queries(self) -> dict[str, Callable[[], httpx.Response]]:
        c, patient, admin, doctor = self.clinic, self.patient, self.admin, self.doctor
        return {
            "doctors": lambda: c.get(patient, "/doctors"),
            "slots": lambda: c.get(patient, f"/doctors/{doctor.profile_id}/slots", **{"from": iso(c.at(3, 0).date())}),
            "appointments": lambda: c.get(patient, "/appointments"),
            "appointment": lambda: c.get(patient, f"/appointments/{self.appointment_id}"),
            "patient": lambda: c.get(admin, f"/patients/{patient.profile_id}"),
            "accounts": lambda: c.get(admin, "/accounts"),
            "me": lambda: c.get(patient, "/auth/me"),
        }

    def commands(self) -> dict[str, Callable[[], httpx.Response]]:
        c, patient, doctor = self.clinic, self.patient, self.doctor
        hours = iter(range(6, 22))
        return {
            "book": lambda: c.book(patient, doctor, c.at(4, next(hours))),
            "book with a key": lambda: c.client.post(
                "/appointments",
                headers={**patient.headers, "Idempotency-Key": f"k-{time.monotonic_ns()}"},
                json={"doctor_id": doctor.profile_id, "start": iso(c.at(5, next(hours)))},
            ),
            "confirm": lambda: c.act(doctor, self.appointment_id, "confirm"),
            "update profile": lambda: c.client.patch(f"/doctors/{doctor.profile_id}", headers=doctor.headers, json={"bio": "Hearts."}),
            "register": lambda: c.register(),
            "login": lambda: c.client.post("/auth/login", json={"email": patient.email, "password": patient.password}),
        }


@pytest.fixture
def open_site(make_settings: Any, clock: Any, caplog: pytest.LogCaptureFixture) -> Iterator[Callable[..., Site]]:
    caplog.set_level(logging.CRITICAL + 1, logger="medledger")
    with ExitStack() as stack:

        def open_site(*, use_redis: bool, projector: str = "inprocess", pool_size: int = 5) -> Site:
            proxy = stack.enter_context(PostgresProxy())
            settings = make_settings(
                "postgres", use_redis=use_redis, storage_timeout_seconds=STORAGE_TIMEOUT, projector=projector, pool_size=pool_size
            )
            settings = settings.model_copy(update={"database_url": proxy.url})
            system = bootstrap(settings, clock=clock)
            stack.callback(system.close)
            if projector == "inprocess":
                system.start_projector()
            else:
                stack.enter_context(external_projector(settings.model_copy(update={"database_url": POSTGRES_URL, "pool_size": 2})))
            client = stack.enter_context(TestClient(create_app(system), raise_server_exceptions=False))
            stack.callback(proxy.start)  # on the way out, first let requests that are still hanging finish
            clinic = Clinic(client, system, clock)
            admin = clinic.admin()
            doctor, patient = clinic.doctor(admin), clinic.patient()
            booked = clinic.booked(patient, doctor, clinic.at(3, 10))
            clinic.read(patient, "/appointments", after=position(booked))
            return Site(clinic, proxy, admin, doctor, patient, booked["id"])

        yield open_site


class external_projector:
    """The projectors as another process would run them: their own system, straight to PostgreSQL."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self.system: Medledger | None = None

    def __enter__(self) -> Medledger:
        self.system = bootstrap(self.settings)
        self.system.projection.start()
        return self.system

    def __exit__(self, *_: object) -> None:
        assert self.system is not None
        self.system.close()


def timed(request: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    began = time.monotonic()
    response = request()
    return response, time.monotonic() - began


def unavailable_answers(requests: dict[str, Callable[[], httpx.Response]]) -> list[str]:
    """Every request that did not answer 503 service_unavailable with Retry-After within the bound."""
    wrong = []
    for name, request in requests.items():
        response, took = timed(request)
        answer = response.json() if response.headers.get("content-type", "").startswith("application/json") else response.text
        if (
            response.status_code != 503
            or "retry-after" not in response.headers
            or not isinstance(answer, dict)
            or answer.get("code") != "service_unavailable"
            or took > STORAGE_TIMEOUT + SLACK
        ):
            wrong.append(f"{name}: {response.status_code} after {took:.1f}s {str(answer)[:160]}")
    return wrong


def failed_answers(requests: dict[str, Callable[[], httpx.Response]]) -> list[str]:
    wrong = []
    for name, request in requests.items():
        response = request()
        if response.status_code >= 500:
            wrong.append(f"{name}: {response.status_code} {response.text[:160]}")
    return wrong


OUTAGES = [(True, False), (False, False), (True, True)]
OUTAGE_IDS = ["stopped-redis", "stopped-no-redis", "hanging-redis"]


@pytest.mark.parametrize(("use_redis", "silent"), OUTAGES, ids=OUTAGE_IDS)
def test_queries_answer_503_within_the_bound_while_postgres_is_away_then_recover(open_site: Any, use_redis: bool, silent: bool) -> None:
    site = open_site(use_redis=use_redis)

    site.proxy.stop(silent=silent)
    during = unavailable_answers(site.queries())
    site.proxy.start()
    after = failed_answers(site.queries())

    assert during == []
    assert after == []


@pytest.mark.parametrize(("use_redis", "silent"), OUTAGES, ids=OUTAGE_IDS)
def test_commands_answer_503_within_the_bound_while_postgres_is_away_then_recover(open_site: Any, use_redis: bool, silent: bool) -> None:
    site = open_site(use_redis=use_redis)

    site.proxy.stop(silent=silent)
    during = unavailable_answers(site.commands())
    site.proxy.start()
    after = failed_answers(site.commands())

    assert during == []
    assert after == []
    booked = site.clinic.booked(site.patient, site.doctor, site.clinic.at(6, 9))
    expect(site.clinic.get(site.patient, f"/appointments/{booked['id']}", after=position(booked)), 200)


@pytest.mark.parametrize("use_redis", [True, False], ids=["redis", "no-redis"])
def test_a_postgres_restart_fails_no_request_with_the_external_projector(open_site: Any, use_redis: bool) -> None:
    site = open_site(use_redis=use_redis, projector="external", pool_size=10)  # the default: more pooled connections than retries
    assert failed_answers({**site.queries(), **site.commands()}) == []

    terminated = site.proxy.terminate_backends()
    assert terminated > 0
    failures = failed_answers({**site.queries(), **site.commands()})

    assert failures == []
