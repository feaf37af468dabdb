"""A rebuild's own copy of a projector's tables: filled from the log beside the live ones, then swapped in."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy import Column, Connection, Engine, Index, MetaData, Table, delete, insert, text, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import DDLCompiler
from sqlalchemy.sql.ddl import CreateIndex, CreateTable, DropTable, ExecutableDDLElement
from sqlalchemy.sql.elements import BindParameter
from sqlalchemy.sql.visitors import replacement_traverse

from projections.base import Decode, Projector, ReadLog, advance, apply_events, lock_position, read_position
from projections.tables import positions

SUFFIX = "__rebuild"
SWAP_BATCH = 1000
LOCK_NOT_AVAILABLE = "55P03"


class SwapBlockedError(Exception):
    """Raised when the swap waited too long for queries to let go of a live table; nothing was changed."""


class ShadowBuild:
    """A projector's tables under other names, with their own position, rebuilt while the live ones serve.

    Handlers are not told: the statements they run on the live tables are retargeted at the copies.
    """

    def __init__(self, projector: Projector) -> None:
        self.projector = projector
        self.position_name = projector.name + SUFFIX
        metadata = MetaData()
        self.tables = {live: _copy(live, metadata) for live in projector.tables}
        self.indexes = [
            (Index(index.name + SUFFIX, *(self.tables[live].c[c.key] for c in index.columns), unique=index.unique), index)
            for live in projector.tables
            for index in sorted(live.indexes, key=lambda index: str(index.name))
        ]

    def create(self, engine: Engine) -> None:
        """Starts afresh: what an interrupted rebuild left is dropped; empty tables, at position 0."""
        with engine.begin() as conn:
            self._drop(conn)
            for table in self.tables.values():
                conn.execute(CreateTable(table))
            conn.execute(insert(positions).values(name=self.position_name, position=0))

    def discard(self, engine: Engine) -> None:
        with engine.begin() as conn:
            self._drop(conn)

    def position(self, engine: Engine) -> int:
        with engine.connect() as conn:
            return read_position(conn, self.position_name)

    def catch_up(self, engine: Engine, read_log: ReadLog, decode: Decode, frontier: int, batch: int) -> int:
        return advance(engine, self.position_name, self.projector, read_log, decode, frontier, batch, self._retarget)

    def index(self, engine: Engine) -> None:
        """Builds the copies' secondary indexes where the swap can rename them (PostgreSQL).

        SQLite cannot rename an index: there the swap builds them under their live names.
        """
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                for copy, _ in self.indexes:
                    conn.execute(CreateIndex(copy))

    def swap(self, engine: Engine, read_log: ReadLog, decode: Decode, frontier: Callable[[], int], lock_wait_ms: int) -> int:
        """One transaction: holds the live position (the live projector applies nothing meanwhile), applies the
        last events to the copies, puts them in the live tables' place and carries the position over; answers it.

        Queries keep reading the live tables until it commits, then read the copies under the same names. On
        PostgreSQL it waits at most lock_wait_ms for queries to let go of a table, then gives up (SwapBlockedError)
        rather than risk a deadlock with a query that reads two of the tables.
        """
        try:
            with engine.begin() as conn:
                live = lock_position(conn, self.projector.name)
                start = lock_position(conn, self.position_name)
                end = max(live, start, frontier())
                reached = start
                while reached < end:
                    reached = apply_events(self._retarget(conn), self.projector, read_log, decode, reached, end, SWAP_BATCH)
                self._replace_live_tables(conn, lock_wait_ms)
                conn.execute(update(positions).where(positions.c.name == self.projector.name).values(position=end))
                conn.execute(delete(positions).where(positions.c.name == self.position_name))
        except OperationalError as error:
            if getattr(error.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                raise SwapBlockedError(
                    f"the swap of {self.projector.name} waited too long for queries to let go of its tables; nothing changed"
                ) from error
            raise
        return end

    def _replace_live_tables(self, conn: Connection, lock_wait_ms: int) -> None:
        postgres = conn.dialect.name == "postgresql"
        if postgres:
            conn.execute(text(f"SET LOCAL lock_timeout = '{int(lock_wait_ms)}ms'"))
        for live, copy in self.tables.items():
            conn.execute(DropTable(live))
            conn.execute(RenameTable(copy, live.name))
            if postgres:
                conn.execute(RenameIndex(live, f"{copy.name}_pkey", f"{live.name}_pkey"))
        for copy_index, live_index in self.indexes:
            if postgres:
                conn.execute(RenameIndex(live_index.table, str(copy_index.name), str(live_index.name)))
            else:
                conn.execute(CreateIndex(live_index))

    def _drop(self, conn: Connection) -> None:
        for table in self.tables.values():
            conn.execute(DropTable(table, if_exists=True))
        conn.execute(delete(positions).where(positions.c.name == self.position_name))

    def _retarget(self, conn: Connection) -> Connection:
        return RetargetedConnection(conn, self.tables)  # type: ignore[return-value]


class RetargetedConnection:
    """A connection on which a statement naming a live table acts on its copy instead."""

    def __init__(self, conn: Connection, tables: Mapping[Table, Table]) -> None:
        self._conn = conn
        self._tables = tables

    def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
        return self._conn.execute(replacement_traverse(statement, {}, self._copy_of), *args, **kwargs)

    def _copy_of(self, element: Any) -> Any:
        if isinstance(element, BindParameter):
            return element  # values are shared as they are: cloning them is most of a traversal's cost
        if isinstance(element, Table):
            return self._tables.get(element)
        if isinstance(element, Column) and isinstance(element.table, Table) and element.table in self._tables:
            return self._tables[element.table].c[element.key]
        return None

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def _copy(table: Table, metadata: MetaData) -> Table:
    """The table's columns and primary key under the rebuild's name; its indexes come separately."""
    columns = [
        Column(c.name, c.type, key=c.key, primary_key=c.primary_key, nullable=c.nullable, autoincrement=False)
        for c in table.columns
    ]
    return Table(table.name + SUFFIX, metadata, *columns)


class RenameTable(ExecutableDDLElement):
    def __init__(self, table: Table, new_name: str) -> None:
        self.table = table
        self.new_name = new_name


class RenameIndex(ExecutableDDLElement):
    """Renames an index of the table's schema (PostgreSQL)."""

    def __init__(self, table: Table, old_name: str, new_name: str) -> None:
        self.table = table
        self.old_name = old_name
        self.new_name = new_name


@compiles(RenameTable)
def _rename_table(element: RenameTable, compiler: DDLCompiler, **_: Any) -> str:
    preparer = compiler.preparer
    return f"ALTER TABLE {preparer.format_table(element.table)} RENAME TO {preparer.quote(element.new_name)}"


@compiles(RenameIndex)
def _rename_index(element: RenameIndex, compiler: DDLCompiler, **_: Any) -> str:
    preparer = compiler.preparer
    schema = preparer.schema_for_object(element.table)
    old = f"{preparer.quote_schema(schema)}.{preparer.quote(element.old_name)}" if schema else preparer.quote(element.old_name)
    return f"ALTER INDEX {old} RENAME TO {preparer.quote(element.new_name)}"
