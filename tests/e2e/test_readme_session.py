"""The README's first session runs as written against `medledger serve`: every value it uses comes from an answer."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from e2e_helpers import PROJECT_ROOT, free_port

JWT_SECRET = "readme-session-secret-long-enough-for-hs256-0123456789"


def first_session() -> str:
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme.split("## A first session", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```\n(.*?)^```", section, flags=re.S | re.M)
    assert len(blocks) == 1, "the first session is one shell block"
    return blocks[0]


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """`medledger serve` on a free port with its demo clinic seeded: its base URL and the printed passwords."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDLEDGER_")}
    env.update(MEDLEDGER_DATA_DIR=str(tmp_path / "data"), MEDLEDGER_JWT_SECRET=JWT_SECRET, MEDLEDGER_PASSWORD_HASHING="fast")
    port, log = free_port(), tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [str(Path(sys.executable).parent / "medledger"), "serve", "--port", str(port)],
            cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=1) as probe:  # one client for every probe: httpx.get builds one each time
            while True:
                assert server.poll() is None, log.read_text()
                assert time.monotonic() < deadline, log.read_text()
                try:
                    if probe.get(f"{base_url}/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.1)
        passwords = dict(re.findall(r"^\s+\w+\s+(\S+@demo\.medledger\.example)\s+(\S+)$", log.read_text(), flags=re.M))
        yield base_url, passwords
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=5)


def test_the_first_session_books_and_reads_its_own_write(demo_server: tuple[str, dict[str, str]]) -> None:
    if shutil.which("curl") is None or shutil.which("bash") is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the README's session needs curl and bash")
        pytest.skip("the README's session needs curl and bash")
    base_url, passwords = demo_server
    script = first_session().replace("localhost:8000", base_url.removeprefix("http://"))

    done = subprocess.run(
        ["bash", "-e", "-c", script],
        input=passwords["patient1@demo.medledger.example"] + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    last = json.loads(_last_json(done.stdout))
    assert last.get("total") == 1, done.stdout
    [booked] = last["items"]
    assert booked["status"] == "booked"


def _last_json(output: str) -> str:
    """The last JSON document in the output (curl prints no newline after an answer)."""
    decoder, position, found = json.JSONDecoder(), 0, ""
    while (start := output.find("{", position)) != -1:
        try:
            _, end = decoder.raw_decode(output, start)
        except ValueError:
            position = start + 1
            continue
        found, position = output[start:end], end
    return found
