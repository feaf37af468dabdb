"""Operations: one JSON log line per request, docs served without internet, Prometheus metrics, liveness and readiness."""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from api.app import create_app
from e2e_helpers import PASSWORD, Clinic, expect, free_port, log_in, open_clinic, running_server
from infrastructure.bootstrap import bootstrap
from outage_helpers import PostgresProxy

SECRET_NAME = "Zebulon Quirkbottom"
SECRET_ALLERGY = "Quinacrine-hypersensitivity"


def request_lines(log_path: Path) -> list[dict[str, Any]]:
    lines = []
    for line in log_path.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and "route" in record:
            lines.append(record)
    return lines


def test_every_request_logs_one_json_line_without_tokens_or_clinical_content(make_settings: Any, tmp_path: Path) -> None:
    settings = make_settings("postgres")
    cast = open_clinic(settings, 1)
    log_path = tmp_path / "server.log"
    sent: dict[str, tuple[str, str, int, str | None]] = {}

    with (
        running_server(settings, 1, log_path) as base_url,
        closing(log_in(base_url, cast.patient_emails[0])) as patient,
        closing(log_in(base_url, cast.admin_email)) as admin,
    ):
        me = patient.get("/auth/me").json()
        admin_id = admin.get("/auth/me").json()["account_id"]
        tokens = [client.headers["Authorization"].removeprefix("Bearer ") for client in (patient, admin)]

        def send(client: httpx.Client, correlation: str, method: str, path: str, route: str, status: int, **kwargs: Any) -> None:
            response = client.request(method, path, headers={"X-Correlation-ID": correlation}, **kwargs)
            assert response.status_code == status, response.text
            authenticated = "Authorization" in client.headers and route != "unmatched"
            user_id = (admin_id if client is admin else me["account_id"]) if authenticated else None
            sent[correlation] = (method, route, status, user_id)

        send(patient, "log-me", "GET", "/auth/me", "/auth/me", 200)
        send(patient, "log-patient", "GET", f"/patients/{me['profile_id']}", "/patients/{patient_id}", 200)
        send(
            patient,
            "log-update",
            "PATCH",
            f"/patients/{me['profile_id']}",
            "/patients/{patient_id}",
            200,
            json={"full_name": SECRET_NAME, "allergies": [SECRET_ALLERGY]},
        )
        send(admin, "log-search", "GET", f"/patients?name={SECRET_NAME.split()[1]}", "/patients", 200)
        send(patient, "log-missing", "GET", "/no/such/route", "unmatched", 404)
        with httpx.Client(base_url=base_url) as anonymous:
            send(anonymous, "log-anonymous", "GET", "/doctors", "/doctors", 401)
            send(anonymous, "log-login", "POST", "/auth/login", "/auth/login", 200, json={"email": cast.patient_emails[0], "password": PASSWORD})
            login = anonymous.post("/auth/login", json={"email": cast.patient_emails[0], "password": PASSWORD}).json()

    lines = request_lines(log_path)
    by_correlation: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_correlation.setdefault(line.get("correlation_id"), []).append(line)
    for correlation, (method, route, status, user_id) in sent.items():
        [line] = by_correlation[correlation]
        assert (line["method"], line["route"], line["status"], line["user_id"]) == (method, route, status, user_id), line
        assert isinstance(line["latency_ms"], (int, float)) and line["latency_ms"] >= 0, line
    text = log_path.read_text()
    for secret in (*tokens, login["access_token"], login["refresh_token"], SECRET_NAME, "Quirkbottom", SECRET_ALLERGY, PASSWORD):
        assert secret not in text


def test_the_docs_page_loads_every_asset_from_the_server_itself(clinic: Clinic) -> None:
    page = clinic.client.get("/docs")

    html = expect(page, 200)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:[a-z]+:)?//""", html, re.IGNORECASE), html
    assert "cdn" not in html.lower()
    assets = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html)
    assert any(asset.endswith(".js") for asset in assets) and any(asset.endswith(".css") for asset in assets), assets
    for asset in assets:
        response = clinic.client.get(asset)
        assert response.status_code == 200 and len(response.content) > 100, asset
    assert expect(clinic.client.get("/openapi.json"), 200)["info"]["title"] == "Medledger"


@pytest.fixture
def paused(backend: str, make_settings: Any, clock: Any) -> Iterator[Clinic]:
    """A clinic whose projector does not run until the test says so."""
    system = bootstrap(make_settings(backend, read_wait_seconds=0.2, ready_max_projector_lag=0), clock=clock)
    with TestClient(create_app(system)) as client:
        yield Clinic(client, system, clock)
    system.close()


def metric_samples(clinic: Clinic) -> dict[str, list[Any]]:
    response = clinic.client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    families: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(response.text):
        families[family.name] = [*families.get(family.name, []), *family.samples]
    return families


def value(samples: list[Any], name: str, **labels: str) -> float:
    return sum(s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()))


def test_metrics_expose_latency_command_outcomes_batches_projector_lag_and_read_wait_timeouts(paused: Clinic) -> None:
    clinic = paused
    admin = clinic.admin()
    doctor, patient, other = clinic.doctor(admin), clinic.patient(), clinic.patient()
    before = metric_samples(clinic)
    start = clinic.at(2, 10)

    clinic.booked(patient, doctor, start)
    expect(clinic.book(other, doctor, start), 409, "slot_taken")
    expect(clinic.get(patient, "/appointments", after=clinic.latest()), 503, "read_model_behind")
    behind = metric_samples(clinic)
    clinic.medledger.projection.run_once()
    caught_up = metric_samples(clinic)

    latency = "medledger_http_request_duration_seconds"
    for status in ("201", "409"):
        assert value(caught_up[latency], f"{latency}_count", route="/appointments", method="POST", status=status) >= 1
    commands = "medledger_commands"
    assert value(caught_up[commands], f"{commands}_total", command="POST /appointments", code="ok") - value(
        before.get(commands, []), f"{commands}_total", command="POST /appointments", code="ok"
    ) == 1
    assert value(caught_up[commands], f"{commands}_total", command="POST /appointments", code="slot_taken") - value(
        before.get(commands, []), f"{commands}_total", command="POST /appointments", code="slot_taken"
    ) == 1
    batches = "medledger_group_commit_batch_size"
    assert value(caught_up[batches], f"{batches}_count") > value(before[batches], f"{batches}_count")
    timeouts = "medledger_read_wait_timeouts"
    assert value(caught_up[timeouts], f"{timeouts}_total") - value(before[timeouts], f"{timeouts}_total") >= 1
    latest = clinic.latest()
    assert value(caught_up["medledger_event_log_position"], "medledger_event_log_position") == latest
    assert value(behind["medledger_projector_lag"], "medledger_projector_lag", projector="appointments") > 0
    assert value(caught_up["medledger_projector_position"], "medledger_projector_position", projector="appointments") == latest
    assert value(caught_up["medledger_projector_lag"], "medledger_projector_lag", projector="appointments") == 0


def test_readiness_waits_for_the_projector_and_liveness_does_not(paused: Clinic) -> None:
    clinic = paused
    clinic.patient()

    not_ready = clinic.client.get("/health/ready")
    answer = expect(not_ready, 503, "not_ready")
    assert answer["checks"]["projector_lag"]["ok"] is False
    assert answer["checks"]["storage"]["ok"] is True
    expect(clinic.client.get("/health/live"), 200)

    clinic.medledger.projection.run_once()
    ready = expect(clinic.client.get("/health/ready"), 200)
    assert ready["status"] == "ready"
    assert all(check["ok"] for check in ready["checks"].values())


def test_readiness_fails_at_once_when_postgres_is_away_and_liveness_still_answers(make_settings: Any) -> None:
    with PostgresProxy() as proxy:
        settings = make_settings("postgres", storage_timeout_seconds=2)
        system = bootstrap(settings.model_copy(update={"database_url": proxy.url}))
        system.start_projector()
        try:
            with TestClient(create_app(system)) as client:
                expect(client.get("/health/ready"), 200)
                proxy.stop()
                began = time.monotonic()
                answer = expect(client.get("/health/ready"), 503, "not_ready")
                assert time.monotonic() - began < 2 + 1.5
                assert answer["checks"]["storage"]["ok"] is False
                expect(client.get("/health/live"), 200)
                proxy.start()
                deadline = time.monotonic() + 10
                while client.get("/health/ready").status_code != 200:
                    assert time.monotonic() < deadline, "not ready again after PostgreSQL came back"
                    time.sleep(0.2)
        finally:
            system.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Redis server of this test's own, which the test may stop."""
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis.from_url(url).ping()
            break
        except redis.RedisError:
            assert time.monotonic() < deadline, "private redis-server did not start"
            time.sleep(0.05)
    yield url, server
    server.terminate()
    server.wait(timeout=10)


def test_readiness_fails_when_the_configured_redis_is_down(make_settings: Any, private_redis: tuple[str, subprocess.Popen[bytes]]) -> None:
    url, server = private_redis
    settings = make_settings("sqlite", redis_url=url, redis_prefix="ready", storage_timeout_seconds=2)
    system = bootstrap(settings)
    system.start_projector()
    try:
        with TestClient(create_app(system)) as client:
            expect(client.get("/health/ready"), 200)
            server.terminate()
            server.wait(timeout=10)
            began = time.monotonic()
            answer = expect(client.get("/health/ready"), 503, "not_ready")
            assert time.monotonic() - began < 2 + 1.5
            assert answer["checks"]["redis"]["ok"] is False
            expect(client.get("/health/live"), 200)
    finally:
        system.close()

