"""PostgreSQL schemas a test worker has built once and empties for the next test, instead of dropping each one and
building the next from nothing (creating the event store and read-model tables costs a few hundred milliseconds
per test, and more as the catalog fills with dead rows of dropped schemas; emptying them, tens at most).

A schema goes back to the pool only when it is as bootstrap left a new one, bar the rows: its tables, columns,
indexes, constraints, sequences, functions and types compare equal to a schema bootstrap has just built, and the
test left no PostgreSQL connection, thread or child process behind that could still use it. Anything else, and it
is dropped as before. Emptying is TRUNCATE of every table that ever held a row (new, empty files, as a new table
has) and every used sequence restarted. Before lending any, a pool checks once that a schema emptied and built
again holds what a new one does (the same structure and the same number of rows in each table, such as the
projectors' positions bootstrap writes); if not, it lends only new schemas.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from uuid import uuid4

import psycopg

# One row per thing that makes up the schema, with the schema's own name written as <schema>, oid-free so that two
# schemas built alike compare equal; then, apart, the tables that have ever held a row (a new table's file is empty)
# and the sequences that have been used. The schema's things are found through pg_depend (what DROP SCHEMA CASCADE
# would drop: tables, views, sequences, types and functions, with their indexes, constraints and row and array
# types) and read by oid, never by scanning pg_class, which many schemas coming and going leave slow to scan.
_SURVEY = """
WITH ns AS MATERIALIZED (SELECT oid FROM pg_namespace WHERE nspname = %(schema)s),
dep AS MATERIALIZED (
  SELECT classid, objid FROM pg_depend
   WHERE refclassid = 'pg_namespace'::regclass AND refobjid = (SELECT oid FROM ns) AND refobjsubid = 0
),
top AS MATERIALIZED (
  SELECT objid AS oid FROM dep WHERE classid = 'pg_class'::regclass
  UNION
  SELECT t.typrelid FROM pg_type t WHERE t.oid IN (SELECT objid FROM dep WHERE classid = 'pg_type'::regclass) AND t.typrelid <> 0
),
rel AS MATERIALIZED (
  SELECT c.oid, c.relname, c.relkind, c.relpersistence, c.reloptions, c.reltype FROM pg_class c
   WHERE c.oid IN (SELECT oid FROM top UNION SELECT i.indexrelid FROM pg_index i WHERE i.indrelid IN (SELECT oid FROM top))
),
typ AS MATERIALIZED (
  SELECT t.oid, t.typname, t.typtype, t.typarray FROM pg_type t
   WHERE t.oid IN (SELECT objid FROM dep WHERE classid = 'pg_type'::regclass UNION SELECT reltype FROM rel WHERE reltype <> 0)
)
SELECT 'relation', concat_ws(' ', c.relname, c.relkind, c.relpersistence, c.reloptions) FROM rel c
UNION ALL
SELECT 'column', concat_ws(' ', c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull,
                           a.attidentity, a.attgenerated, pg_get_expr(d.adbin, d.adrelid))
  FROM rel c JOIN pg_attribute a ON a.attrelid = c.oid
  LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
 WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'index', pg_get_indexdef(c.oid) FROM rel c WHERE c.relkind IN ('i', 'I')
UNION ALL
SELECT 'constraint', concat_ws(' ', c.relname, k.conname, pg_get_constraintdef(k.oid))
  FROM rel c JOIN pg_constraint k ON k.conrelid = c.oid
UNION ALL
SELECT 'constraint', concat_ws(' ', t.typname, k.conname, pg_get_constraintdef(k.oid))
  FROM typ t JOIN pg_constraint k ON k.conrelid = 0 AND k.contypid = t.oid
UNION ALL
SELECT 'sequence', concat_ws(' ', c.relname, s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin, s.seqmax,
                             s.seqcache, s.seqcycle)
  FROM rel c JOIN pg_sequence s ON s.seqrelid = c.oid
UNION ALL
SELECT 'view', concat_ws(' ', c.relname, pg_get_viewdef(c.oid)) FROM rel c WHERE c.relkind IN ('v', 'm')
UNION ALL
SELECT 'trigger', pg_get_triggerdef(t.oid) FROM rel c JOIN pg_trigger t ON t.tgrelid = c.oid WHERE NOT t.tgisinternal
UNION ALL
SELECT 'function', concat_ws(' ', p.proname, '(' || pg_get_function_identity_arguments(p.oid) || ')', p.prokind,
                             pg_get_function_result(p.oid), p.prosrc)
  FROM pg_proc p WHERE p.oid IN (SELECT objid FROM dep WHERE classid = 'pg_proc'::regclass)
UNION ALL
SELECT 'type', concat_ws(' ', t.typname, t.typtype) FROM typ t
UNION ALL
SELECT 'type', concat_ws(' ', a.typname, a.typtype) FROM typ t JOIN pg_type a ON a.oid = t.typarray
UNION ALL
SELECT 'other', classid::regclass::text FROM dep WHERE classid NOT IN ('pg_class'::regclass, 'pg_type'::regclass, 'pg_proc'::regclass)
UNION ALL
SELECT 'written', c.relname FROM rel c WHERE CASE WHEN c.relkind IN ('r', 'm') THEN pg_relation_size(c.oid) > 0 END
UNION ALL
SELECT 'used', c.relname FROM rel c WHERE CASE WHEN c.relkind = 'S' THEN pg_sequence_last_value(c.oid) IS NOT NULL END
"""

# Every relation and type the schema holds, read the slow way: once, to check that the survey misses none.
_EVERYTHING = """
SELECT 'relation', relname FROM pg_class WHERE relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = %(schema)s)
UNION ALL
SELECT 'type', typname FROM pg_type WHERE typnamespace = (SELECT oid FROM pg_namespace WHERE nspname = %(schema)s)
"""


@dataclass(frozen=True)
class Survey:
    structure: list[tuple[str, str]]  # [] when the schema does not exist
    written: list[str]
    used: list[str]


def survey(conn: psycopg.Connection[Any], schema: str) -> Survey:
    rows = conn.execute(_SURVEY, {"schema": schema}).fetchall()
    structure = sorted((kind, text.replace(schema, "<schema>")) for kind, text in rows if kind not in ("written", "used"))
    return Survey(structure, [name for kind, name in rows if kind == "written"], [name for kind, name in rows if kind == "used"])


def everything(conn: psycopg.Connection[Any], schema: str) -> list[tuple[str, str]]:
    return sorted(conn.execute(_EVERYTHING, {"schema": schema}).fetchall())


def surveyed(found: Survey) -> list[tuple[str, str]]:
    """The relations and types a survey found, by name, as everything() lists them."""
    return sorted((kind, text.split(" ", 1)[0]) for kind, text in found.structure if kind in ("relation", "type"))


def row_counts(conn: psycopg.Connection[Any], schema: str) -> dict[str, int]:
    tables = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (schema,)).fetchall()
    return {name: conn.execute(f'SELECT count(*) FROM "{schema}"."{name}"').fetchone()[0] for (name,) in tables}  # type: ignore[index]


def empty(conn: psycopg.Connection[Any], schema: str, found: Survey) -> None:
    """Every table that ever held a row truncated and every used sequence restarted, in one transaction that waits
    at most a second for locks."""
    with conn.transaction():
        conn.execute("SET LOCAL lock_timeout = '1s'")
        if found.written:
            # CASCADE: a table referencing a truncated one through a foreign key is truncated too (it holds no row).
            conn.execute("TRUNCATE " + ", ".join(f'"{schema}"."{name}"' for name in found.written) + " CASCADE")
        for name in found.used:
            conn.execute(f'ALTER SEQUENCE "{schema}"."{name}" RESTART')


def drop(conn: psycopg.Connection[Any], schema: str) -> None:
    conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


# What a test might leave behind that could still reach its schema.


def _sockets() -> frozenset[str]:
    """This process's open sockets (inodes); Linux only."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return frozenset(inodes)


def _connected_to(port: int, inodes: frozenset[str]) -> set[str]:
    """Those of the sockets that are TCP connections to the port (reading every TCP socket of the host: slow)."""
    found = set()
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[9] in inodes and int(fields[2].rsplit(":", 1)[1], 16) == port:
                found.add(fields[9])
    return found


def _children() -> frozenset[int]:
    pids: set[int] = set()
    for task in os.listdir("/proc/self/task"):
        try:
            pids.update(int(pid) for pid in Path(f"/proc/self/task/{task}/children").read_text().split())
        except OSError:
            continue
    return frozenset(pids)


@dataclass(frozen=True)
class Surroundings:
    """This process's sockets, threads and child processes at one moment."""

    sockets: frozenset[str]
    threads: frozenset[threading.Thread]
    children: frozenset[int]

    @classmethod
    def now(cls) -> Surroundings:
        return cls(_sockets(), frozenset(threading.enumerate()), _children())

    def left_since(self, before: Surroundings, port: int) -> list[str]:
        """What is here now that was not before and could still reach PostgreSQL on that port."""
        left = [f"connection {inode}" for inode in _connected_to(port, self.sockets - before.sockets)] if self.sockets - before.sockets else []
        left += [f"thread {thread.name}" for thread in self.threads - before.threads if thread.is_alive()]
        left += [f"process {pid}" for pid in self.children - before.children]
        return left


class SchemaPool:
    """This process's emptied schemas, lent one per test."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.port = urlsplit(url).port or 5432
        self.usable = os.path.isdir("/proc/self/fd") and os.path.exists("/proc/self/net/tcp")
        self.reference: list[tuple[str, str]] | None = None
        self.idle: list[str] = []
        self.lent: dict[str, Surroundings] = {}
        self.reused = 0
        self.dropped: dict[str, int] = {}

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.url, autocommit=True)

    def _prepare(self, build: Callable[[str], None]) -> None:
        """Once: build a schema, note what it is made of, and check that emptying it and building again gives the
        same schema and the same rows as the first build did; if not, this pool lends only new schemas."""
        self.reference = []
        schema = f"test_{uuid4().hex[:16]}"
        with self._connect() as conn:
            try:
                build(schema)
                first, first_rows = survey(conn, schema), row_counts(conn, schema)
                empty(conn, schema, first)
                build(schema)
                again, again_rows = survey(conn, schema), row_counts(conn, schema)
                complete = surveyed(again) == everything(conn, schema)
                if first.structure and first.structure == again.structure and first_rows == again_rows and complete:
                    empty(conn, schema, again)
                    self.reference = first.structure
                    self.idle.append(schema)
                    return
            except Exception:
                pass
            drop(conn, schema)

    def lend(self, build: Callable[[str], None]) -> str:
        """A schema for one test: an emptied one, or a new name when there is none. build(schema) bootstraps the
        system on that schema and closes it again: the first lend checks the pool's way of emptying with it."""
        if self.usable and self.reference is None:
            self._prepare(build)
        schema = self.idle.pop() if self.idle else f"test_{uuid4().hex[:16]}"
        if self.usable and self.reference:
            self.lent[schema] = Surroundings.now()
        return schema

    def give_back(self, schema: str) -> None:
        """After the test: emptied and kept if it is as bootstrap builds it and nothing of the test can reach it; else dropped."""
        before = self.lent.pop(schema, None)
        left = Surroundings.now().left_since(before, self.port) if before is not None else []
        with self._connect() as conn:
            if before is None:
                reason = "pool not in use"
            elif left:
                reason = "left behind: " + left[0].split(" ")[0]
            else:
                found = survey(conn, schema)
                reason = "structure changed" if found.structure != self.reference else None
            if reason is None:
                try:
                    empty(conn, schema, found)
                except psycopg.Error:
                    reason = "could not be emptied"
                else:
                    self.idle.append(schema)
                    self.reused += 1
                    return
            self.dropped[reason] = self.dropped.get(reason, 0) + 1
            drop(conn, schema)

    def close(self) -> None:
        with self._connect() as conn:
            for schema in self.idle:
                drop(conn, schema)
        self.idle.clear()
