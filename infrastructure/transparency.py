"""The transparency log: an RFC 9162 Merkle tree over every stored event in log order, signed tree heads, proofs.

Leaf i is the i-th stored event in notification order; its leaf hash is SHA-256(0x00 || canonical_event(...)).
The tree's complete subtrees are kept in tables beside the read models, appended to like a projector (leaves,
nodes and so the position, in one transaction), so a proof reads about 2 log2(n) stored hashes. Those tables only
serve proofs; `verify_store` recomputes everything from the events.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import queue
import struct
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import BigInteger, Column, Connection, Engine, Integer, LargeBinary, MetaData, Table, func, insert, literal, select, tuple_, union_all
from sqlalchemy.exc import IntegrityError

from infrastructure.merkle import (
    CompactRange,
    Subtree,
    complete_root,
    consistency_path,
    inclusion_path,
    leaf_hash,
    needed_subtrees,
    node_hash,
    tree_root,
)

log = logging.getLogger("medledger.transparency")

APPEND_INTERVAL_SECONDS = 1.0
APPEND_AT_ONCE = 500
"""The tree is appended to at most once a second unless 500 events wait: a round costs five round trips whatever
it appends, and appended event by event under load it cost the projector process more than the projectors."""

metadata = MetaData()

leaves = Table(
    "transparency_leaves",
    metadata,
    Column("leaf_index", BigInteger, primary_key=True, autoincrement=False),
    Column("position", BigInteger, nullable=False, unique=True),
    Column("hash", LargeBinary(32), nullable=False),
)

nodes = Table(
    "transparency_nodes",
    metadata,
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("node_index", BigInteger, primary_key=True, autoincrement=False),
    Column("hash", LargeBinary(32), nullable=False),
)

heads = Table(
    "transparency_heads",
    metadata,
    Column("tree_size", BigInteger, primary_key=True, autoincrement=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("root_hash", LargeBinary(32), nullable=False),
    Column("signature", LargeBinary(64), nullable=False),
)

HEAD_CONTEXT = b"medledger tree head v1\x00"
_HEADER = struct.Struct(">Q16sQI")
_LENGTH = struct.Struct(">I")


def canonical_event(position: int, originator_id: UUID, originator_version: int, topic: str, state: bytes) -> bytes:
    """The bytes a leaf hashes: position (8 bytes), originator id (16), version (8), all unsigned big-endian,
    then the topic's UTF-8 bytes and the stored state, each after its length (4 bytes, unsigned big-endian)."""
    encoded_topic = topic.encode()
    return (
        _HEADER.pack(position, originator_id.bytes, originator_version, len(encoded_topic))
        + encoded_topic
        + _LENGTH.pack(len(state))
        + state
    )


def event_leaf(event: Any) -> bytes:
    """The leaf hash of a stored event as read from the log (anything with the fields of a StoredRow)."""
    return leaf_hash(canonical_event(event.id, event.originator_id, event.originator_version, event.topic, event.state))


@dataclass(frozen=True)
class SignedTreeHead:
    tree_size: int
    timestamp: int
    """Milliseconds since 1970-01-01 UTC."""
    root_hash: bytes
    signature: bytes

    @staticmethod
    def signed_bytes(tree_size: int, timestamp: int, root_hash: bytes) -> bytes:
        return HEAD_CONTEXT + struct.pack(">QQ", tree_size, timestamp) + root_hash

    @classmethod
    def sign(cls, key: Ed25519PrivateKey, tree_size: int, timestamp: int, root_hash: bytes) -> SignedTreeHead:
        return cls(tree_size, timestamp, root_hash, key.sign(cls.signed_bytes(tree_size, timestamp, root_hash)))

    def signed_by(self, public_key: Ed25519PublicKey) -> bool:
        try:
            public_key.verify(self.signature, self.signed_bytes(self.tree_size, self.timestamp, self.root_hash))
        except InvalidSignature:
            return False
        return True

    def as_json(self) -> dict[str, Any]:
        issued = datetime.fromtimestamp(self.timestamp / 1000, timezone.utc)
        return {
            "tree_size": self.tree_size,
            "timestamp": self.timestamp,
            "issued_at": issued.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "root_hash": self.root_hash.hex(),
            "signature": base64.b64encode(self.signature).decode(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SignedTreeHead:
        return cls(int(data["tree_size"]), int(data["timestamp"]), bytes.fromhex(data["root_hash"]), base64.b64decode(data["signature"]))


def public_key_json(public_key: Ed25519PublicKey) -> dict[str, str]:
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return {
        "algorithm": "Ed25519",
        "public_key": base64.b64encode(raw).decode(),
        "public_key_pem": public_key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode(),
        "key_id": hashlib.sha256(raw).hexdigest(),
    }


class NotInLogError(LookupError):
    """Raised when a proof or head is asked for a position or tree size the log does not hold."""


ReadEvents = Callable[[int | None, int, int | None], Sequence[Any]]
"""Stored events after a position (None: from the first): (after, limit, stop) -> rows in log order."""


class TransparencyLog:
    """Appends the store's new events to the tree, signs heads, and answers proofs from the stored hashes."""

    def __init__(
        self,
        engine: Engine,
        read_events: ReadEvents,
        log_end: Callable[[], int],
        key: Ed25519PrivateKey,
        head_interval_seconds: float,
        now_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        append_interval_seconds: float = APPEND_INTERVAL_SECONDS,
    ) -> None:
        self.engine = engine
        self.read_events = read_events
        self.log_end = log_end
        self.key = key
        self.public_key = key.public_key()
        self.head_interval_seconds = head_interval_seconds
        self.now_ms = now_ms
        self._last_head_check = time.monotonic()  # the first periodic head one interval after start, not racing the first requests
        self._appended_to = 0
        self.append_interval_seconds = append_interval_seconds
        self._last_append = 0.0
        """The last position this process saw in the tree: a round with nothing newer in the store reads nothing."""

    def create_tables(self) -> None:
        metadata.create_all(self.engine)

    # Appending

    def run_once(self, batches: int = 10) -> int:
        """Appends up to `batches` batches of what the store holds beyond the tree (a long catch-up goes on next
        round, so the projectors are not held up) and, when the interval has passed, signs a new head."""
        appended = 0
        frontier = self.log_end()
        pending = frontier - self._appended_to
        due = pending >= APPEND_AT_ONCE or time.monotonic() - self._last_append >= self.append_interval_seconds
        for _ in range(batches if pending > 0 and due else 0):
            step = self.append(frontier)
            if not step:
                break
            appended += step
        if appended:
            self._last_append = time.monotonic()
        if time.monotonic() - self._last_head_check >= self.head_interval_seconds:
            self._last_head_check = time.monotonic()
            with self.engine.connect() as conn:
                size = _size(conn)
                latest = _latest_size(conn)
            if size > (latest or 0):
                self.sign_head()
        return appended

    def append(self, frontier: int, batch: int = 1000) -> int:
        """Appends the next batch of stored events up to frontier, with their subtrees, in one transaction;
        answers how many. Another process that appended them first makes this batch roll back (answers 0)."""
        with self.engine.connect() as conn:
            size, position = _end(conn)
        self._appended_to = position
        if position >= frontier:
            return 0
        events = self.read_events(position, batch, frontier)
        if not events:
            return 0
        hashes = [event_leaf(event) for event in events]
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    insert(leaves),
                    [{"leaf_index": size + i, "position": e.id, "hash": h} for i, (e, h) in enumerate(zip(events, hashes))],
                )
                rows = _new_nodes(conn, size, hashes)
                if rows:
                    conn.execute(insert(nodes), rows)
        except IntegrityError:
            log.info("transparency log: another process appended first; catching up from its end")
            return 0
        return len(events)

    def sign_head(self) -> tuple[SignedTreeHead, bool]:
        """A head for the tree's current size, signed now unless one for that size exists; answers (head, new)."""
        with self.engine.connect() as conn:
            size = _size(conn)
            existing = _head(conn, size)
            if existing is not None:
                return existing, False
            root = tree_root(_subtrees(conn, lambda subtree: tree_root(subtree, size)), size)
        head = SignedTreeHead.sign(self.key, size, self.now_ms(), root)
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(heads).values(tree_size=size, timestamp=head.timestamp, root_hash=root, signature=head.signature))
        except IntegrityError:
            with self.engine.connect() as conn:
                found = _head(conn, size)
            if found is None:
                raise
            return found, False
        return head, True

    # Reading

    def size(self, conn: Connection) -> int:
        return _size(conn)

    def latest_head(self, conn: Connection) -> SignedTreeHead | None:
        return latest_stored_head(conn)

    def head(self, conn: Connection, tree_size: int) -> SignedTreeHead | None:
        return _head(conn, tree_size)

    def heads(self, conn: Connection, page: int, page_size: int) -> tuple[list[SignedTreeHead], int]:
        """Signed heads, newest first, one page of them, and how many there are."""
        total = conn.execute(select(func.count()).select_from(heads)).scalar_one()
        rows = conn.execute(
            select(heads).order_by(heads.c.tree_size.desc()).limit(page_size).offset((page - 1) * page_size)
        ).all()
        return [SignedTreeHead(r.tree_size, r.timestamp, bytes(r.root_hash), bytes(r.signature)) for r in rows], total

    def leaf_index(self, conn: Connection, position: int) -> int | None:
        return conn.execute(select(leaves.c.leaf_index).where(leaves.c.position == position)).scalar_one_or_none()

    def inclusion(self, conn: Connection, position: int, tree_size: int) -> tuple[int, bytes, list[bytes]]:
        """(leaf index, leaf hash, audit path) of the event at `position` in the tree of `tree_size` leaves; a tree
        larger than the log lacks the subtrees of its right edge, so it is refused without counting the leaves."""
        index = self.leaf_index(conn, position)
        if index is None or index >= tree_size:
            raise NotInLogError(f"no event at position {position} in the tree of {tree_size} events")

        def prove(subtree: Subtree) -> list[bytes]:
            return [subtree(0, index), *inclusion_path(subtree, index, tree_size)]

        leaf, *path = prove(_subtrees(conn, prove))
        return index, leaf, path

    def consistency(self, conn: Connection, first: int, second: int) -> list[bytes]:
        if second > _size(conn):
            raise NotInLogError(f"the log holds fewer than {second} events")

        def prove(subtree: Subtree) -> list[bytes]:
            return consistency_path(subtree, first, second)

        return prove(_subtrees(conn, prove))


def _end(conn: Connection) -> tuple[int, int]:
    """(leaves in the tree, position of the last)."""
    row = conn.execute(select(leaves.c.leaf_index, leaves.c.position).order_by(leaves.c.leaf_index.desc()).limit(1)).first()
    return (0, 0) if row is None else (row.leaf_index + 1, row.position)


def _size(conn: Connection) -> int:
    return _end(conn)[0]


def _latest_size(conn: Connection) -> int | None:
    return conn.execute(select(func.max(heads.c.tree_size))).scalar_one_or_none()


def _head(conn: Connection, tree_size: int) -> SignedTreeHead | None:
    row = conn.execute(select(heads).where(heads.c.tree_size == tree_size)).first()
    return None if row is None else SignedTreeHead(row.tree_size, row.timestamp, bytes(row.root_hash), bytes(row.signature))


def _subtrees(conn: Connection, prove: Callable[[Subtree], object]) -> Subtree:
    """The stored complete subtrees a proof reads, fetched in one query per table."""
    wanted = needed_subtrees(prove)
    found = _fetch(conn, list(wanted))
    missing = wanted - found.keys()
    if missing:
        raise NotInLogError(f"the log's stored subtrees lack {sorted(missing)[:3]}")
    return lambda level, index: found[(level, index)]


def _new_nodes(conn: Connection, size: int, hashes: list[bytes]) -> list[dict[str, Any]]:
    """The complete subtrees that appending `hashes` at leaf `size` completes, level by level; each one's left
    sibling from before the batch (one per level at most: the tree's right edge) is read in one query."""
    levels = (size + len(hashes)).bit_length()
    edge = [(level, (size >> level) - 1) for level in range(levels) if (size >> level) & 1]
    known: dict[tuple[int, int], bytes] = {}
    if edge:
        known = _fetch(conn, edge)
        if len(known) != len(edge):
            raise NotInLogError(f"the log's stored right edge lacks {sorted(set(edge) - known.keys())[:3]}")
    rows: list[dict[str, Any]] = []
    level, first, current = 0, size, hashes
    while current:
        parents: list[bytes] = []
        start = first
        if start & 1:
            current = [known[(level, start - 1)], *current]
            start -= 1
        for i in range(0, len(current) - 1, 2):
            parents.append(node_hash(current[i], current[i + 1]))
        level, first, current = level + 1, start >> 1, parents
        rows.extend({"level": level, "node_index": first + i, "hash": h} for i, h in enumerate(parents))
    return rows


def _fetch(conn: Connection, keys: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
    """The stored hashes of these complete subtrees (level 0: leaves), in one round trip."""
    at_leaves = [index for level, index in keys if level == 0]
    above = [key for key in keys if key[0] > 0]
    parts = []
    if at_leaves:
        parts.append(select(literal(0).label("level"), leaves.c.leaf_index, leaves.c.hash).where(leaves.c.leaf_index.in_(at_leaves)))
    if above:
        parts.append(select(nodes.c.level, nodes.c.node_index, nodes.c.hash).where(tuple_(nodes.c.level, nodes.c.node_index).in_(above)))
    if not parts:
        return {}
    query = parts[0] if len(parts) == 1 else union_all(*parts)
    return {(level, index): bytes(hashed) for level, index, hashed in conn.execute(query)}


# Verifying


@dataclass(frozen=True)
class Finding:
    """The first thing found wrong in the store, at a position of the log."""

    kind: str
    position: int
    message: str


@dataclass
class VerifyReport:
    events: int = 0
    logged: int = 0
    root: bytes = b""
    heads_checked: int = 0
    finding: Finding | None = None
    skipped_positions: int = 0
    """Notification ids never used by a stored event (PostgreSQL skips those of a rolled-back write)."""

    @property
    def clean(self) -> bool:
        return self.finding is None


VERIFY_PAGE = 10_000


def verify_store(
    read_events: ReadEvents,
    engine: Engine,
    public_key: Ed25519PublicKey,
    saved_heads: Sequence[SignedTreeHead] = (),
    progress: Callable[[int], None] = lambda events: None,
) -> VerifyReport:
    """Walks every stored event in log order, recomputing its leaf and the tree's root, and finds the first:

    - event logged once and gone now (missing), or present now at a position the log never had (inserted);
    - event whose leaf differs from the one logged when it was appended (altered, or swapped with another);
    - event whose stream version does not follow the one before it (a gap, a duplicate, a reordering);
    - signed head (each one given, and the latest the log holds) whose signature fails, or whose root differs
      from the root recomputed from the events at its size.

    The stored leaves only say where a difference is; the heads say whether there is one, since an insider who
    rewrites events can rewrite the stored hashes too, but cannot sign a head with the earlier root.
    """
    with engine.connect() as conn:
        stored_latest = latest_stored_head(conn)
    heads_to_check = sorted({*saved_heads, *([stored_latest] if stored_latest else [])}, key=lambda head: head.tree_size)
    for head in heads_to_check:
        if not head.signed_by(public_key):
            finding = Finding("bad_signature", 0, f"the head of size {head.tree_size} is not signed by this log's key")
            return VerifyReport(finding=finding)
    stop = threading.Event()
    try:
        return _Walk(engine, heads_to_check).run(_ahead(_event_pages(read_events), stop), progress)
    finally:
        stop.set()


CHUNK_LEVEL = 10
CHUNK = 1 << CHUNK_LEVEL


class _Walk:
    """One pass over the stored events, a chunk of 1,024 leaves at a time: a chunk whose recomputed root equals
    the logged subtree's is as logged (one stored hash read per 1,024 events); any other is compared with the
    logged leaves one by one, to name the first event that differs."""

    def __init__(self, engine: Engine, heads_to_check: list[SignedTreeHead]) -> None:
        self.engine = engine
        self.report = VerifyReport()
        self.pending = heads_to_check
        self.tree = CompactRange()
        self.streams: dict[UUID, int] = {}
        self.previous = 0
        self.chunk: list[tuple[int, bytes]] = []
        self.chunk_start = 0
        self.stored_roots: dict[int, bytes] = {}
        with engine.connect() as conn:
            self.logged_size = _size(conn)

    def run(self, pages: Iterator[Sequence[Any]], progress: Callable[[int], None]) -> VerifyReport:
        report, streams, chunk = self.report, self.streams, self.chunk
        report.finding = self._check_heads()
        for page in pages:
            if report.finding is not None:
                break
            for event in page:
                position = event.id
                chunk.append((position, event_leaf(event)))
                version = streams.get(event.originator_id, 0) + 1
                if event.originator_version != version:
                    report.finding = self._settle() or _version_finding(event, version - 1)
                    break
                streams[event.originator_id] = version
                report.skipped_positions += position - self.previous - 1
                self.previous = position
                report.events += 1
                if len(chunk) == CHUNK and (finding := self._settle()):
                    report.finding = finding
                    break
                if self.pending and (finding := self._check_heads()):
                    report.finding = self._settle() or finding
                    break
            progress(report.events)
        if report.finding is None:
            report.finding = self._settle() or self._missing_at_end()
        report.root = self.tree.extended(leaf for _, leaf in self.chunk).root()
        return report

    def _settle(self) -> Finding | None:
        """Compares the chunk with the log, and if it is complete adds it to the tree and starts the next one;
        answers the first difference."""
        chunk, start = list(self.chunk), self.chunk_start
        if not chunk:
            return None
        if len(chunk) == CHUNK:
            root = complete_root([leaf for _, leaf in chunk])
            self.tree.append_subtree(CHUNK_LEVEL, root)
            self.chunk.clear()
            self.chunk_start += CHUNK
            if start + CHUNK <= self.logged_size and self._stored_root(start >> CHUNK_LEVEL) == root:
                self.report.logged += CHUNK
                return None
        with self.engine.connect() as conn:
            recorded = _recorded_leaves(conn, start, start + len(chunk))
        for expected, (position, leaf) in zip(recorded, chunk):
            if finding := _against_log(expected, position, leaf):
                return finding
            self.report.logged += 1
        return None

    def _stored_root(self, chunk_index: int) -> bytes | None:
        if chunk_index not in self.stored_roots:
            with self.engine.connect() as conn:
                rows = conn.execute(
                    select(nodes.c.node_index, nodes.c.hash).where(
                        nodes.c.level == CHUNK_LEVEL, nodes.c.node_index >= chunk_index, nodes.c.node_index < chunk_index + 1000
                    )
                )
                self.stored_roots = {index: bytes(hashed) for index, hashed in rows}
        return self.stored_roots.get(chunk_index)

    def _missing_at_end(self) -> Finding | None:
        walked = self.chunk_start + len(self.chunk)
        if walked < self.logged_size:
            with self.engine.connect() as conn:
                recorded = _recorded_leaves(conn, walked, walked + 1)
            if recorded:
                position = recorded[0][0]
                return Finding("missing", position, f"the event logged at position {position} is missing")
        if self.pending:
            return Finding(
                "missing",
                self.previous,
                f"the store holds {walked:,} events, fewer than the {self.pending[0].tree_size:,} of a signed head",
            )
        return None

    def _check_heads(self) -> Finding | None:
        walked = self.chunk_start + len(self.chunk)
        while self.pending and self.pending[0].tree_size == walked:
            head = self.pending.pop(0)
            self.report.heads_checked += 1
            if self.tree.extended(leaf for _, leaf in self.chunk).root() != head.root_hash:
                return Finding(
                    "root_mismatch",
                    self.previous,
                    f"the first {head.tree_size:,} events hash to a root other than the head signed at "
                    f"{head.as_json()['issued_at']}: events up to position {self.previous} were altered, removed, "
                    "inserted or reordered since",
                )
        return None


def _recorded_leaves(conn: Connection, start: int, end: int) -> list[tuple[int, bytes]]:
    """(position, leaf hash) of the logged leaves [start, end), in order."""
    rows = conn.execute(
        select(leaves.c.position, leaves.c.hash).where(leaves.c.leaf_index >= start, leaves.c.leaf_index < end).order_by(leaves.c.leaf_index)
    )
    return [(position, bytes(hashed)) for position, hashed in rows]


def _against_log(expected: tuple[int, bytes], position: int, leaf: bytes) -> Finding | None:
    logged_position, logged_leaf = expected
    if logged_position < position:
        return Finding("missing", logged_position, f"the event logged at position {logged_position} is missing")
    if logged_position > position:
        return Finding("inserted", position, f"the event at position {position} was never logged: inserted")
    if logged_leaf != leaf:
        return Finding("altered", position, f"the event at position {position} differs from the one logged: altered or swapped")
    return None


def _event_pages(read_events: ReadEvents) -> Iterator[Sequence[Any]]:
    after: int | None = None
    while page := read_events(after, VERIFY_PAGE, None):
        yield page
        after = page[-1].id


def _ahead(pages: Iterator[Any], stop: threading.Event, depth: int = 2) -> Iterator[Any]:
    """The pages, read by a thread of their own up to `depth` ahead: the database sends the next page while this
    thread hashes the last one."""
    ready: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=depth)

    def produce() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        ready.put(("page", page), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            ready.put(("end", None))
        except BaseException as error:  # noqa: BLE001 - handed to the reader, who raises it
            ready.put(("error", error))

    threading.Thread(target=produce, name="verify-read-ahead", daemon=True).start()
    while True:
        kind, value = ready.get()
        if kind == "end":
            return
        if kind == "error":
            raise value
        yield value


def _version_finding(event: Any, before: int) -> Finding:
    stream = event.originator_id
    if event.originator_version <= before:
        kind, what = "reordered", f"repeats or goes back from version {before}: duplicated or reordered"
    else:
        kind, what = "missing", f"skips from version {before}: versions in between are missing"
    return Finding(kind, event.id, f"the event at position {event.id} (stream {stream}, version {event.originator_version}) {what}")


def latest_stored_head(conn: Connection) -> SignedTreeHead | None:
    size = _latest_size(conn)
    return None if size is None else _head(conn, size)
