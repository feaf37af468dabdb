"""Two uvicorn workers on one PostgreSQL store: what one worker revokes, every worker refuses at once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from e2e_helpers import log_in, open_clinic, running_server

REVOCATIONS = ["disable", "logout"] * 2
PROBES = 12


@pytest.mark.parametrize("use_redis", [False, True], ids=["without-redis", "with-redis"])
def test_every_worker_refuses_a_disabled_account_or_a_logged_out_session_at_once(
    request: pytest.FixtureRequest, make_settings: Any, tmp_path: Path, use_redis: bool
) -> None:
    settings = make_settings("postgres", use_redis=use_redis)
    cast = open_clinic(settings, len(REVOCATIONS))
    accepted_after_revocation: list[tuple[str, int]] = []

    with (
        running_server(settings, 2, tmp_path / "uvicorn.log") as base_url,
        ThreadPoolExecutor(PROBES) as pool,
        httpx.Client(base_url=base_url, limits=httpx.Limits(max_keepalive_connections=0), timeout=30) as prober,
        closing(log_in(base_url, cast.admin_email)) as admin,
    ):
        for revocation, email in zip(REVOCATIONS, cast.patient_emails):
            with closing(log_in(base_url, email)) as patient:
                account_id = patient.get("/auth/me").json()["account_id"]

                def probe(_: int, token: str = patient.headers["Authorization"]) -> int:
                    return prober.get("/auth/me", headers={"Authorization": token}).status_code

                assert set(pool.map(probe, range(PROBES))) == {200}
                if revocation == "disable":
                    assert admin.post(f"/accounts/{account_id}/disable", json={"reason": "left the clinic"}).status_code == 200
                else:
                    assert patient.post("/auth/logout").status_code == 204
                accepted_after_revocation += [(revocation, status) for status in pool.map(probe, range(PROBES)) if status != 401]

    assert accepted_after_revocation == []
