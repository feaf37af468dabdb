"""The transparency log over HTTP: auditors and admins read signed heads and proofs, others are refused; the
standalone verifier checks what the API serves, offline."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from e2e_helpers import Clinic, User, expect

ROOT = Path(__file__).resolve().parents[2]
VERIFIER = ROOT / "tools" / "verify_log.py"
pytestmark = pytest.mark.timeout(120)


def logged(clinic: Clinic) -> int:
    """Waits until the projector loop has appended the whole event log to the tree; answers its size."""
    log, end = clinic.medledger.transparency, clinic.latest()
    for _ in range(1000):
        with clinic.medledger.read_engine.connect() as conn:
            size = log.size(conn)
        if size >= end:
            return size
        clinic.medledger.projection.wake()
        time.sleep(0.01)
    raise AssertionError(f"the transparency log did not reach {end}")


def signed(clinic: Clinic, auditor: User, status: int = 201) -> dict[str, Any]:
    logged(clinic)
    return expect(clinic.client.post("/audit/log/heads", headers=auditor.headers), status)


def verifier(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-I", str(VERIFIER), *map(str, args)], capture_output=True, text=True, timeout=60)


def test_only_auditors_and_admins_read_the_log(clinic: Clinic) -> None:
    admin = clinic.admin()
    paths = ["/audit/log/public-key", "/audit/log/heads/latest", "/audit/log/heads", "/audit/log/heads/1",
             "/audit/log/proofs/inclusion?position=1&tree_size=1", "/audit/log/proofs/consistency?first=1&second=1"]
    for path in paths:
        expect(clinic.client.get(path), 401, "not_authenticated")
    expect(clinic.client.post("/audit/log/heads"), 401)
    for role in ("patient", "doctor", "analyst"):
        member = clinic.member(admin, role)
        for path in paths:
            expect(clinic.client.get(path, headers=member.headers), 403, "forbidden")
        expect(clinic.client.post("/audit/log/heads", headers=member.headers), 403, "forbidden")
    for reader in (admin, clinic.staff(admin, "auditor")):
        expect(clinic.client.get("/audit/log/public-key", headers=reader.headers), 200)


def test_heads_are_signed_on_demand_listed_and_found_by_size(clinic: Clinic) -> None:
    admin = clinic.admin()
    auditor = clinic.staff(admin, "auditor")
    first = signed(clinic, auditor)
    assert expect(clinic.client.post("/audit/log/heads", headers=auditor.headers), 200) == first
    assert clinic.read(auditor, "/audit/log/heads/latest") == first
    clinic.patient()
    second = signed(clinic, admin)
    assert second["tree_size"] > first["tree_size"]
    assert clinic.read(auditor, f"/audit/log/heads/{first['tree_size']}") == first
    listed = clinic.read(auditor, "/audit/log/heads", page_size=1)
    assert listed["items"] == [second] and listed["total"] == 2
    assert clinic.read(auditor, "/audit/log/heads", page=2, page_size=1)["items"] == [first]
    expect(clinic.get(auditor, f"/audit/log/heads/{second['tree_size'] + 1}"), 404, "not_found")
    expect(clinic.get(auditor, "/audit/log/heads/latest-one"), 422, "invalid_request", "tree_size")


def test_proofs_are_served_for_what_the_log_holds_and_refused_otherwise(clinic: Clinic) -> None:
    admin = clinic.admin()
    auditor = clinic.staff(admin, "auditor")
    head = signed(clinic, auditor)
    size = head["tree_size"]
    proof = clinic.read(auditor, "/audit/log/proofs/inclusion", position=1, tree_size=size)
    assert proof["leaf_index"] == 0 and proof["event"]["position"] == 1 and len(proof["audit_path"]) >= 1
    clinic.read(auditor, "/audit/log/proofs/consistency", first=1, second=size)

    expect(clinic.get(auditor, "/audit/log/proofs/inclusion", position=clinic.latest() + 100, tree_size=size), 404, "not_found")
    expect(clinic.get(auditor, "/audit/log/proofs/inclusion", position=1, tree_size=size + 100), 404, "not_found")
    expect(clinic.get(auditor, "/audit/log/proofs/consistency", first=1, second=size + 100), 404, "not_found")
    expect(clinic.get(auditor, "/audit/log/proofs/consistency", first=2, second=1), 422, "invalid_input", "first")
    expect(clinic.get(auditor, "/audit/log/proofs/inclusion", position=0, tree_size=size), 422, "invalid_request", "position")
    expect(clinic.get(auditor, "/audit/log/proofs/inclusion", position=1), 422, "invalid_request", "tree_size")


def test_the_standalone_verifier_checks_heads_and_proofs_served_by_the_api(clinic: Clinic, tmp_path: Path) -> None:
    admin = clinic.admin()
    auditor = clinic.staff(admin, "auditor")
    def saved(name: str, value: dict[str, Any]) -> Path:
        (tmp_path / name).write_text(json.dumps(value))
        return tmp_path / name

    key = saved("key.json", clinic.read(auditor, "/audit/log/public-key"))
    old = signed(clinic, auditor)
    old_head = saved("old.json", old)
    clinic.patient()
    new = signed(clinic, auditor)
    new_head = saved("new.json", new)
    inclusion = clinic.read(auditor, "/audit/log/proofs/inclusion", position=2, tree_size=new["tree_size"])
    inclusion_file = saved("inclusion.json", inclusion)
    consistency = saved(
        "consistency.json",
        clinic.read(auditor, "/audit/log/proofs/consistency", first=old["tree_size"], second=new["tree_size"]),
    )

    for args in (
        ("head", "--key", key, new_head),
        ("inclusion", "--key", key, "--head", new_head, "--proof", inclusion_file),
        ("inclusion", "--key", key, "--head", new_head, "--proof", inclusion_file, "--leaf-hash", inclusion["leaf_hash"]),
        ("consistency", "--key", key, "--first", old_head, "--second", new_head, "--proof", consistency),
    ):
        result = verifier(*args)
        assert result.returncode == 0 and result.stdout.startswith("OK"), (args, result.stdout, result.stderr)

    forged_head = saved("forged.json", {**new, "root_hash": old["root_hash"]})
    altered_event = dict(inclusion["event"], originator_version=inclusion["event"]["originator_version"] + 1)
    altered = saved("altered.json", {**inclusion, "event": altered_event})
    for args in (
        ("head", "--key", key, forged_head),
        ("inclusion", "--key", key, "--head", new_head, "--proof", altered),
        ("inclusion", "--key", key, "--head", old_head, "--proof", inclusion_file),
        ("consistency", "--key", key, "--first", new_head, "--second", old_head, "--proof", consistency),
    ):
        result = verifier(*args)
        assert result.returncode == 1 and result.stdout.startswith("FAIL"), (args, result.stdout, result.stderr)


def test_the_standalone_verifier_imports_only_the_standard_library_and_cryptography() -> None:
    tree = ast.parse(VERIFIER.read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert imported - set(sys.stdlib_module_names) == {"cryptography"}


def test_an_events_bytes_go_to_auditors_only_and_their_read_is_logged(clinic: Clinic) -> None:
    admin = clinic.admin()
    auditor = clinic.staff(admin, "auditor")
    patient = clinic.patient()
    notifications = clinic.medledger.store.recorder.select_notifications(start=1, limit=10_000)
    opened = next(n.id for n in notifications if str(n.originator_id) == patient.profile_id)  # the patient's record
    size = signed(clinic, auditor)["tree_size"]

    for_admin = clinic.read(admin, "/audit/log/proofs/inclusion", position=opened, tree_size=size)
    for_auditor = clinic.read(auditor, "/audit/log/proofs/inclusion", position=opened, tree_size=size)

    assert for_admin["event"] is None and for_admin["leaf_hash"] == for_auditor["leaf_hash"]
    assert for_auditor["event"]["position"] == opened
    log = clinic.read(patient, f"/patients/{patient.profile_id}/reads", after=clinic.latest())["items"]
    assert [(r["action"], r["reader_id"], r["basis"]) for r in log if r["shown"] == "history"] == [
        ("transparency proof", auditor.account_id, "audit")
    ]
