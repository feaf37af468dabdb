#!/usr/bin/env python3
"""Developer entry point that needs only Python 3.11+: `python3 dev.py run` serves, `python3 dev.py test` tests.

It creates .venv on first use and reinstalls the project whenever pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / "medledger-installed.sha256"
USAGE = """usage: python3 dev.py run [medledger serve options]   serve the API with the demo clinic
       python3 dev.py test [pytest options]          run the whole test suite
       python3 dev.py bench [bench options]          run the booking benchmark (needs PostgreSQL)
       python3 dev.py bench chart [options]          run the patient chart benchmark (needs PostgreSQL)
       python3 dev.py bench session_check [options]  time the per-request token check (PostgreSQL, SQLite, Redis)
       python3 dev.py bench cache [options]          CPU per booking with and without the recorded-state cache (PostgreSQL)
       python3 dev.py bench as_of [options]          as-of latency for records of 1,000 events (SQLite, or PostgreSQL)
       python3 dev.py bench verify [options]         verify rate and proof times over 1,000,000 events (PostgreSQL)
       python3 dev.py bench billing [options]        payments/s over HTTP; statement and receivables at 100,000 invoices (PostgreSQL)
       python3 dev.py medledger ARGS                 any medledger command (projector, rebuild, ...)"""


def ensure_environment() -> None:
    if sys.version_info < (3, 11):
        sys.exit(f"Medledger needs Python 3.11 or newer; this is {sys.version.split()[0]}.")
    if not (BIN / "python").exists() and not (BIN / "python.exe").exists():
        print("creating .venv ...", flush=True)
        venv.create(VENV, with_pip=True)
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if not STAMP.exists() or STAMP.read_text() != wanted:
        print("installing Medledger and its dependencies into .venv ...", flush=True)
        pip = [str(BIN / "python"), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, "--editable", f"{ROOT}[test]"], check=True, cwd=ROOT)
        STAMP.write_text(wanted)


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in {"run", "test", "bench", "medledger"}:
        print(USAGE)
        return 2
    ensure_environment()
    command, rest = argv[0], argv[1:]
    if command == "run":
        args = [str(BIN / "medledger"), "serve", *rest]
    elif command == "test":
        args = [str(BIN / "python"), "-m", "pytest", "-n", "auto", *rest]
    elif command == "bench":
        named = rest[:1] and (ROOT / "bench" / f"{rest[0]}.py").is_file() and rest[0] != "bare_app"
        script, rest = (f"{rest[0]}.py", rest[1:]) if named else ("booking.py", rest)
        args = [str(BIN / "python"), str(ROOT / "bench" / script), *rest]
    else:
        args = [str(BIN / "medledger"), *rest]
    return subprocess.run(args, cwd=ROOT).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
