"""Merkle tree hashes and proofs of RFC 9162 (Certificate Transparency v2), over subtree hashes looked up by the caller."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Sequence

Subtree = Callable[[int, int], bytes]
"""The hash of a complete subtree: (level, index) -> MTH of leaves [index * 2**level, (index + 1) * 2**level)."""

EMPTY_ROOT = hashlib.sha256(b"").digest()


class ProofError(ValueError):
    """Raised when a proof is asked for a leaf or tree size the tree does not hold, or sizes out of order."""


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def root_of(leaves: Sequence[bytes]) -> bytes:
    """MTH(D[n]) over leaf hashes, recursively as RFC 9162 defines it (for tests and small trees)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return node_hash(root_of(leaves[:k]), root_of(leaves[k:]))


def range_hash(subtree: Subtree, start: int, end: int) -> bytes:
    """MTH of leaves [start, end) where start is aligned to the subtree the range falls in, as in every RFC 9162
    recursion: a complete subtree is looked up, the ragged right edge is hashed from complete ones."""
    n = end - start
    if n & (n - 1) == 0:
        level = n.bit_length() - 1
        return subtree(level, start >> level)
    k = split(n)
    return node_hash(subtree((k.bit_length() - 1), start // k), range_hash(subtree, start + k, end))


def tree_root(subtree: Subtree, size: int) -> bytes:
    return range_hash(subtree, 0, size) if size else EMPTY_ROOT


def inclusion_path(subtree: Subtree, index: int, size: int) -> list[bytes]:
    """PATH(m, D[n]) of RFC 9162 section 2.1.3.1: the audit path of leaf `index` in the tree of `size` leaves."""
    if not 0 <= index < size:
        raise ProofError(f"leaf {index} is not in a tree of {size} leaves")
    path: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split(end - start)
        if index < start + k:
            path.append(range_hash(subtree, start + k, end))
            end = start + k
        else:
            path.append(range_hash(subtree, start, start + k))
            start += k
    return path[::-1]


def consistency_path(subtree: Subtree, first: int, second: int) -> list[bytes]:
    """PROOF(m, D[n]) of RFC 9162 section 2.1.4.1: shows that the tree of `first` leaves is a prefix of `second`."""
    if not 0 < first <= second:
        raise ProofError(f"no consistency proof from {first} leaves to {second}")
    path: list[bytes] = []
    start, m, n, whole = 0, first, second, True
    while m != n:
        k = split(n)
        if m <= k:
            path.append(range_hash(subtree, start + k, start + n))
            n = k
        else:
            path.append(range_hash(subtree, start, start + k))
            start, m, n, whole = start + k, m - k, n - k, False
    if not whole:
        path.append(range_hash(subtree, start, start + m))
    return path[::-1]


def needed_subtrees(prove: Callable[[Subtree], object]) -> set[tuple[int, int]]:
    """The complete subtrees a proof reads, found by running it on placeholders: fetch them in one query."""
    wanted: set[tuple[int, int]] = set()

    def record(level: int, index: int) -> bytes:
        wanted.add((level, index))
        return EMPTY_ROOT

    prove(record)
    return wanted


def verify_inclusion(leaf: bytes, index: int, size: int, path: Iterable[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(first: int, second: int, first_root: bytes, second_root: bytes, path: Sequence[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if not 0 < first <= second:
        return False
    if first == second:
        return not path and first_root == second_root
    if not path:
        return False
    proof = list(path)
    if first & (first - 1) == 0:
        proof.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


def complete_root(leaves: Sequence[bytes]) -> bytes:
    """The root of a complete subtree (a power-of-two count of leaf hashes), a level at a time."""
    level = list(leaves)
    sha256 = hashlib.sha256
    while len(level) > 1:
        level = [sha256(b"\x01" + left + right).digest() for left, right in zip(level[::2], level[1::2])]
    return level[0]


class CompactRange:
    """The roots of the complete subtrees of a growing tree's leaves (at most one per level): appends a leaf, or a
    whole aligned complete subtree, in amortised O(1) and gives the root at any size, so a walk of the whole log
    needs no stored hash."""

    def __init__(self) -> None:
        self.size = 0
        self._stack: list[bytes] = []

    def append(self, leaf: bytes) -> None:
        self.append_subtree(0, leaf)

    def append_subtree(self, level: int, root: bytes) -> None:
        """Appends 2**level leaves at once, given their root; the tree's size must be a multiple of 2**level."""
        if self.size & ((1 << level) - 1):
            raise ValueError(f"a subtree of 2**{level} leaves cannot follow {self.size} leaves")
        self._stack.append(root)
        self.size += 1 << level
        count = self.size >> level
        while not count & 1:
            right = self._stack.pop()
            self._stack[-1] = node_hash(self._stack[-1], right)
            count >>= 1

    def extended(self, leaves: Iterable[bytes]) -> CompactRange:
        """A copy with these leaves appended."""
        copy = CompactRange()
        copy.size, copy._stack = self.size, list(self._stack)
        for leaf in leaves:
            copy.append(leaf)
        return copy

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        hashes = iter(reversed(self._stack))
        r = next(hashes)
        for left in hashes:
            r = node_hash(left, r)
        return r
