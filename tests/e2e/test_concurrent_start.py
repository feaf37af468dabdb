"""The API and the projector started at the same moment on a fresh PostgreSQL schema both come up, as docker-compose starts them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from e2e_helpers import free_port, server_environment

ATTEMPTS = 10
FOLLOWING = "projector following the event log"


def medledger(*args: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [str(Path(sys.executable).parent / "medledger"), *args],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def healthy(probe: httpx.Client, base_url: str) -> bool:
    try:
        return probe.get(f"{base_url}/health").status_code == 200
    except httpx.HTTPError:
        return False


def start_both(settings: Any, folder: Path) -> tuple[bool, bool, str, str]:
    """Starts `medledger serve` and `medledger projector` together; answers whether each came up, and their output."""
    env = {**server_environment(settings), "MEDLEDGER_PROJECTOR": "external", "MEDLEDGER_POOL_SIZE": "2"}
    port = free_port()
    api_log, projector_log = folder / "api.log", folder / "projector.log"
    api = medledger("serve", "--no-demo", "--port", str(port), env=env, log=api_log)
    projector = medledger("projector", env=env, log=projector_log)
    try:
        deadline = time.monotonic() + 60
        api_up = projector_up = False
        # One client for every probe: httpx.get builds a client, and its SSL context, each time (35 ms of CPU every
        # 50 ms, taken from the two processes starting).
        with httpx.Client(timeout=1) as probe:
            while time.monotonic() < deadline and not (api_up and projector_up):
                api_up = api_up or healthy(probe, f"http://127.0.0.1:{port}")
                projector_up = projector_up or FOLLOWING in projector_log.read_text(errors="replace")
                if api.poll() is not None or projector.poll() is not None:
                    break
                time.sleep(0.05)
        alive = api.poll() is None and projector.poll() is None
        return api_up and alive, projector_up and alive, api_log.read_text(errors="replace"), projector_log.read_text(errors="replace")
    finally:
        end(api)
        end(projector)


def test_the_api_and_the_projector_started_together_on_a_fresh_schema_both_come_up(make_settings: Any, tmp_path: Path) -> None:
    failures = []
    for attempt in range(ATTEMPTS):
        folder = tmp_path / f"attempt-{attempt}"
        folder.mkdir()
        api_up, projector_up, api_output, projector_output = start_both(make_settings("postgres"), folder)
        complaints = [line for line in (api_output + projector_output).splitlines() if "Error" in line or "Traceback" in line]
        if not (api_up and projector_up) or complaints:
            failures.append(f"attempt {attempt}: api up {api_up}, projector up {projector_up}: {complaints[-1:]}")

    assert failures == []
