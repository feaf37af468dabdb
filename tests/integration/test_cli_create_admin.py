"""`medledger create-admin` in a script: the password from standard input or the environment, never the command line."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from commands.accounts import LogIn, log_in
from domain.accounts import Account, InvalidCredentialsError
from infrastructure.bootstrap import bootstrap
from infrastructure.cli import cli
from infrastructure.settings import Settings

PASSWORD = "correct-horse-battery"
EMAIL = "admin@clinic.example.org"


def medledger_command() -> str:
    command = Path(sys.executable).parent / "medledger"
    assert command.exists(), "the medledger console script is not installed beside this Python"
    return str(command)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def env(data_dir: Path) -> dict[str, str]:
    """An embedded SQLite clinic in the test's own folder; no MEDLEDGER_* from the caller's shell."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("MEDLEDGER_")}
    return {**clean, "MEDLEDGER_DATA_DIR": str(data_dir), "MEDLEDGER_PASSWORD_HASHING": "fast"}


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """The installed script in its own session: no controlling terminal, as under cron, CI or docker exec without -t."""
    return subprocess.run(
        [medledger_command(), "create-admin", *args],
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )


def admin_logs_in(data_dir: Path, password: str = PASSWORD, email: str = EMAIL) -> bool:
    system = bootstrap(Settings(data_dir=data_dir, password_hashing="fast"))
    try:
        account = system.store.find(Account, Account.create_id(email))
        if account is None:
            return False
        assert account.role == "admin"
        try:
            log_in(system.services, LogIn(email, password), "test")
        except InvalidCredentialsError:
            return False
        return True
    finally:
        system.close()


def no_account(data_dir: Path, email: str = EMAIL) -> bool:
    if not data_dir.exists():
        return True
    system = bootstrap(Settings(data_dir=data_dir, password_hashing="fast"))
    try:
        return system.store.find(Account, Account.create_id(email)) is None
    finally:
        system.close()


def test_the_password_is_read_from_standard_input(env: dict[str, str], data_dir: Path) -> None:
    done = run(env, EMAIL, "--password-stdin", stdin=f"{PASSWORD}\nignored second line\n")

    assert done.returncode == 0, done.stderr
    assert "created" in done.stdout and PASSWORD not in done.stdout + done.stderr
    assert admin_logs_in(data_dir)


def test_the_password_is_taken_from_the_environment(env: dict[str, str], data_dir: Path) -> None:
    done = run({**env, "MEDLEDGER_ADMIN_PASSWORD": PASSWORD}, EMAIL)

    assert done.returncode == 0, done.stderr
    assert admin_logs_in(data_dir)


def test_without_a_password_or_a_terminal_it_exits_2_at_once_with_the_ways_to_give_one(env: dict[str, str], data_dir: Path) -> None:
    waiting = subprocess.Popen(
        [medledger_command(), "create-admin", EMAIL],
        stdin=subprocess.PIPE,  # open and silent: a prompt would wait on it for ever
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = _wait_without_closing(waiting, 60)
    finally:
        if waiting.poll() is None:
            waiting.kill()
            waiting.wait()

    assert waiting.returncode == 2, (out, err)
    assert "--password-stdin" in err and "MEDLEDGER_ADMIN_PASSWORD" in err
    assert no_account(data_dir)


def _wait_without_closing(process: subprocess.Popen[str], seconds: float) -> tuple[str, str]:
    deadline = time.monotonic() + seconds
    while process.poll() is None:
        assert time.monotonic() < deadline, "create-admin waited for a password nobody can type"
        time.sleep(0.05)
    assert process.stdout is not None and process.stderr is not None
    return process.stdout.read(), process.stderr.read()


def test_a_password_on_the_command_line_is_refused(env: dict[str, str], data_dir: Path) -> None:
    done = run(env, EMAIL, "--password", PASSWORD)

    assert done.returncode == 2
    assert no_account(data_dir)


def test_at_a_terminal_it_prompts_twice_without_echo(env: dict[str, str], data_dir: Path) -> None:
    controller, terminal = pty.openpty()
    prompting = subprocess.Popen(
        [medledger_command(), "create-admin", EMAIL], stdin=terminal, stdout=terminal, stderr=terminal, env=env, start_new_session=True
    )
    os.close(terminal)
    shown = b""
    try:
        for _ in range(2):
            shown += _read_until(controller, b": ")
            os.write(controller, f"{PASSWORD}\n".encode())
        assert prompting.wait(timeout=120) == 0
        shown += _read_rest(controller)
    finally:
        if prompting.poll() is None:
            prompting.kill()
            prompting.wait()
        os.close(controller)

    assert PASSWORD.encode() not in shown
    assert admin_logs_in(data_dir)


def _read_until(fd: int, marker: bytes, seconds: float = 60) -> bytes:
    deadline, seen = time.monotonic() + seconds, b""
    while marker not in seen:
        assert time.monotonic() < deadline, seen
        seen += os.read(fd, 1024)
    return seen


def _read_rest(fd: int) -> bytes:
    seen = b""
    try:
        while chunk := os.read(fd, 1024):
            seen += chunk
    except OSError:
        pass
    return seen


runner = CliRunner()


def invoke(env: dict[str, str], *args: str, stdin: str = "") -> tuple[int, str]:
    """In this process, with the test's MEDLEDGER_* settings only (the caller's are unset for the call)."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("MEDLEDGER_")}
    ours = {k: v for k, v in env.items() if k.startswith("MEDLEDGER_")}
    result = runner.invoke(cli, ["create-admin", *args], input=stdin, env={**unset, **ours})
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("email", "stdin", "says"),
    [
        (EMAIL, "\n", "no password"),
        (EMAIL, "", "no password"),
        (EMAIL, "too-short\n", "at least 10 characters"),
        (EMAIL, "x" * 129 + "\n", "at most 128 characters"),
        ("not-an-email", f"{PASSWORD}\n", "not a valid email address"),
    ],
)
def test_bad_input_exits_2_with_the_reason_and_creates_nothing(env: dict[str, str], data_dir: Path, email: str, stdin: str, says: str) -> None:
    code, output = invoke(env, email, "--password-stdin", stdin=stdin)

    assert code == 2, output
    assert says in output
    assert no_account(data_dir, EMAIL)


def test_an_email_already_taken_exits_1_with_the_reason(env: dict[str, str], data_dir: Path) -> None:
    assert invoke(env, EMAIL, "--password-stdin", stdin=f"{PASSWORD}\n")[0] == 0

    code, output = invoke(env, EMAIL, "--password-stdin", stdin="another-password-1\n")

    assert code == 1 and "already exists" in output
    assert admin_logs_in(data_dir)
