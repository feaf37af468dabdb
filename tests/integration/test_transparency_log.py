"""The transparency log on SQLite and PostgreSQL: the stored tree equals the recursive definition, proofs verify,
heads are signed; and `medledger verify` catches rows edited directly in the real databases."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from uuid import uuid4

import psycopg
import pytest
from eventsourcing.persistence import StoredEvent
from sqlalchemy import delete
from typer.testing import CliRunner

from infrastructure.bootstrap import Medledger
from infrastructure.cli import cli
from infrastructure.merkle import root_of, verify_consistency, verify_inclusion
from infrastructure.settings import InvalidSecretError, MissingSecretError, Settings
from infrastructure.transparency import SignedTreeHead, event_leaf, heads, leaves, nodes, verify_store
from integration_helpers import environment, open_doctor, open_patient, running, wait_until

from tests.conftest import POSTGRES_URL

pytestmark = pytest.mark.timeout(120)


def seeded(system: Medledger, members: int = 6) -> list[Any]:
    """A clinic of a few members, the whole log appended to the tree; answers the stored events."""
    for _ in range(members // 2):
        open_doctor(system.services)
        open_patient(system.services)
    catch_up(system)
    return list(system.transparency.read_events(None, 100_000, None))


def catch_up(system: Medledger) -> None:
    while system.transparency.append(system.store.max_position()):
        pass


def verified(system: Medledger, *saved: SignedTreeHead):
    return verify_store(system.transparency.read_events, system.write_engine, system.transparency.public_key, saved)


class Rows:
    """The event store's rows, edited as an insider with database access would: with plain SQL."""

    def __init__(self, system: Medledger) -> None:
        self.settings = system.settings
        self.table = system.store.recorder.events_table_name
        self.postgres = not system.settings.embedded

    @contextmanager
    def _cursor(self) -> Iterator[Any]:
        if self.postgres:
            with psycopg.connect(POSTGRES_URL, autocommit=True) as conn:
                conn.execute(f'SET search_path TO "{self.settings.database_schema}"')
                yield conn.cursor()
        else:
            conn = sqlite3.connect(self.settings.data_dir / "events.sqlite")
            try:
                yield conn.cursor()
                conn.commit()
            finally:
                conn.close()

    @property
    def _id(self) -> str:
        return "notification_id" if self.postgres else "rowid"

    @property
    def _mark(self) -> str:
        return "%s" if self.postgres else "?"

    def row(self, position: int) -> tuple[Any, ...]:
        with self._cursor() as cursor:
            cursor.execute(
                f"SELECT originator_id, originator_version, topic, state FROM {self.table} WHERE {self._id} = {self._mark}", (position,)
            )
            return cursor.fetchone()

    def set(self, position: int, originator_id: Any, version: int, topic: str, state: bytes) -> None:
        with self._cursor() as cursor:
            m = self._mark
            cursor.execute(
                f"UPDATE {self.table} SET originator_id = {m}, originator_version = {m}, topic = {m}, state = {m} WHERE {self._id} = {m}",
                (originator_id, version, topic, state, position),
            )

    def flip_a_byte(self, position: int) -> None:
        originator_id, version, topic, state = self.row(position)
        state = bytes(state)
        self.set(position, originator_id, version, topic, state[:-1] + bytes([state[-1] ^ 1]))

    def delete(self, position: int) -> None:
        with self._cursor() as cursor:
            cursor.execute(f"DELETE FROM {self.table} WHERE {self._id} = {self._mark}", (position,))

    def swap(self, first: int, second: int) -> None:
        a, b = self.row(first), self.row(second)
        self.set(first, a[0], a[1] + 1_000_000, a[2], a[3])  # out of the way of the unique (stream, version) key
        self.set(second, *a)
        self.set(first, *b)

    def insert(self, position: int, like: int) -> None:
        _, _, topic, state = self.row(like)
        stream = uuid4() if self.postgres else uuid4().hex
        with self._cursor() as cursor:
            m = self._mark
            cursor.execute(
                f"INSERT INTO {self.table} ({self._id}, originator_id, originator_version, topic, state) VALUES ({m}, {m}, 1, {m}, {m})",
                (position, stream, topic, state),
            )


def test_the_stored_tree_is_the_rfc_9162_tree_of_the_events_and_its_proofs_verify(backend: str, make_settings, clock) -> None:
    with running(make_settings(backend, pool_size=2), clock) as system:
        events = seeded(system)
        leaf_hashes = [event_leaf(event) for event in events]
        log = system.transparency
        head, new = log.sign_head()
        assert new and head.tree_size == len(events) and head.root_hash == root_of(leaf_hashes)
        assert head.signed_by(log.public_key)
        assert log.sign_head() == (head, False)

        with system.read_engine.connect() as conn:
            for size in (1, 2, 3, len(events) - 1, len(events)):
                root = root_of(leaf_hashes[:size])
                for index in {0, size // 2, size - 1}:
                    found_index, leaf, path = log.inclusion(conn, events[index].id, size)
                    assert (found_index, leaf) == (index, leaf_hashes[index])
                    assert verify_inclusion(leaf, index, size, path, root)
                for first in range(1, size + 1):
                    proof = log.consistency(conn, first, size)
                    assert verify_consistency(first, size, root_of(leaf_hashes[:first]), root, proof)


def test_appending_again_is_exactly_once_and_new_events_extend_the_same_tree(backend: str, make_settings, clock) -> None:
    with running(make_settings(backend, pool_size=2), clock) as system:
        seeded(system, members=2)
        log = system.transparency
        first, _ = log.sign_head()
        assert log.append(system.store.max_position()) == 0
        open_patient(system.services)
        assert log.run_once() > 0
        second, _ = log.sign_head()
        events = list(log.read_events(None, 100_000, None))
        assert second.tree_size == len(events) > first.tree_size
        assert second.root_hash == root_of([event_leaf(event) for event in events])
        with system.read_engine.connect() as conn:
            proof = log.consistency(conn, first.tree_size, second.tree_size)
        assert verify_consistency(first.tree_size, second.tree_size, first.root_hash, second.root_hash, proof)


def test_the_projector_loop_keeps_the_log_and_signs_heads_periodically(backend: str, make_settings, clock) -> None:
    with running(make_settings(backend, pool_size=2, log_head_interval_seconds=0.01), clock) as system:
        system.start_projector()
        open_patient(system.services)
        end = system.store.max_position()
        assert wait_until(lambda: _latest_size(system) == end, timeout=10)


def _latest_size(system: Medledger) -> int:
    with system.read_engine.connect() as conn:
        head = system.transparency.latest_head(conn)
    return head.tree_size if head else 0


def test_a_clean_store_verifies(backend: str, make_settings, clock) -> None:
    with running(make_settings(backend, pool_size=2), clock) as system:
        events = seeded(system)
        head, _ = system.transparency.sign_head()
        open_patient(system.services)  # not yet in the tree: recomputed all the same
        report = verified(system, head)
        assert report.clean, report.finding
        assert report.events == len(events) + 2 and report.logged == len(events) and report.heads_checked == 1


@pytest.mark.parametrize(
    ("tamper", "kind", "at"),
    [
        (lambda rows, events: rows.flip_a_byte(events[4].id), "altered", 4),
        (lambda rows, events: rows.delete(events[4].id), "missing", 4),
        (lambda rows, events: rows.swap(events[3].id, events[5].id), "altered", 3),
        (lambda rows, events: rows.insert(0, events[1].id), "inserted", None),
        (lambda rows, events: rows.delete(events[-1].id), "missing", -1),
    ],
    ids=["flip-a-byte", "delete-a-row", "swap-two-rows", "insert-a-row", "delete-the-last-row"],
)
def test_an_edited_row_is_caught(backend: str, make_settings, clock, tamper, kind: str, at: int | None) -> None:
    with running(make_settings(backend, pool_size=2), clock) as system:
        events = seeded(system)
        tamper(Rows(system), events)
        report = verified(system)
        assert report.finding is not None and report.finding.kind == kind, report.finding
        assert report.finding.position == (0 if at is None else events[at].id)


def test_in_a_store_of_several_chunks_the_first_edited_row_is_named(backend: str, make_settings, clock) -> None:
    with running(make_settings(backend, pool_size=2), clock) as system:
        streams = [uuid4() for _ in range(7)]
        stored = [StoredEvent(streams[n % 7], n // 7 + 1, "bench.Event", f"state {n}".encode()) for n in range(3000)]
        system.store.recorder.insert_events(stored)
        catch_up(system)
        events = list(system.transparency.read_events(None, 100_000, None))
        assert verified(system).logged == 3000
        rows = Rows(system)
        rows.flip_a_byte(events[2500].id)
        rows.flip_a_byte(events[1500].id)
        report = verified(system)
        assert (report.finding.kind, report.finding.position) == ("altered", events[1500].id), report.finding
        rows.delete(events[1100].id)
        report = verified(system)
        assert (report.finding.kind, report.finding.position) == ("missing", events[1100].id), report.finding
        assert report.logged == 1024 + 76


def test_a_rewrite_with_every_stored_hash_recomputed_is_caught_only_by_a_head_saved_before(
    backend: str, make_settings, clock, tmp_path: Path
) -> None:
    settings = make_settings(backend, pool_size=2)
    with running(settings, clock) as system:
        events = seeded(system)
        saved = tmp_path / "head.json"
        saved.write_text(json.dumps(system.transparency.sign_head()[0].as_json()))

        Rows(system).flip_a_byte(events[2].id)
        with system.write_engine.begin() as conn:
            for table in (heads, nodes, leaves):
                conn.execute(delete(table))
        catch_up(system)
        system.transparency.sign_head()  # the insider holds the signing key too

        assert verified(system).clean
        runner = CliRunner()
        clean = runner.invoke(cli, ["verify"], env=environment(settings))
        caught = runner.invoke(cli, ["verify", "--head", str(saved)], env=environment(settings))

    assert clean.exit_code == 0, clean.output
    assert f"verified {len(events):,} events" in clean.output
    assert caught.exit_code == 1, caught.output
    assert "TAMPERED (root_mismatch)" in caught.output


def test_verify_exits_1_naming_the_first_bad_event(backend: str, make_settings, clock) -> None:
    settings = make_settings(backend, pool_size=2)
    with running(settings, clock) as system:
        events = seeded(system)
        Rows(system).flip_a_byte(events[3].id)
        Rows(system).delete(events[5].id)
        result = CliRunner().invoke(cli, ["verify"], env=environment(settings))
    assert result.exit_code == 1
    assert f"TAMPERED (altered) at position {events[3].id}" in result.output


def test_a_head_signed_by_another_key_is_refused(backend: str, make_settings, clock, tmp_path: Path) -> None:
    settings = make_settings(backend, pool_size=2)
    with running(settings, clock) as system:
        seeded(system, members=2)
        head, _ = system.transparency.sign_head()
        forged = tmp_path / "forged.json"
        forged.write_text(json.dumps({**head.as_json(), "timestamp": head.timestamp + 1}))
        result = CliRunner().invoke(cli, ["verify", "--head", str(forged)], env=environment(settings))
    assert result.exit_code == 1
    assert "bad_signature" in result.output


def test_without_a_signing_key_postgres_refuses_to_start_and_the_embedded_mode_makes_one(make_settings, capsys) -> None:
    with pytest.raises(MissingSecretError, match="MEDLEDGER_LOG_SIGNING_KEY"):
        make_settings("postgres", log_signing_key=None).log_signing_private_key  # noqa: B018

    embedded = make_settings("sqlite", log_signing_key=None)
    key = embedded.log_signing_private_key
    assert "WARNING: MEDLEDGER_LOG_SIGNING_KEY is not set" in capsys.readouterr().err
    again = Settings(data_dir=embedded.data_dir).log_signing_private_key
    assert again.public_key() == key.public_key()
    assert (embedded.data_dir / "log-signing-key.pem").stat().st_mode & 0o077 == 0

    pem = (embedded.data_dir / "log-signing-key.pem").read_text()
    assert make_settings("sqlite", log_signing_key=pem).log_signing_private_key.public_key() == key.public_key()
    for wrong in ("not a key", "AAEC", pem.replace("PRIVATE", "PUBLIC")):
        with pytest.raises(InvalidSecretError, match="MEDLEDGER_LOG_SIGNING_KEY"):
            make_settings("sqlite", log_signing_key=wrong).log_signing_private_key  # noqa: B018


