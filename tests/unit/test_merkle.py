"""The transparency log's tree math against RFC 9162: roots, audit paths and consistency proofs for small trees."""

from __future__ import annotations

import hashlib

import pytest

from infrastructure.merkle import (
    EMPTY_ROOT,
    CompactRange,
    ProofError,
    complete_root,
    consistency_path,
    inclusion_path,
    leaf_hash,
    needed_subtrees,
    node_hash,
    root_of,
    tree_root,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [leaf_hash(f"event {i}".encode()) for i in range(64)]


def subtrees_of(leaves: list[bytes]):
    def subtree(level: int, index: int) -> bytes:
        width = 1 << level
        assert (index + 1) * width <= len(leaves), "only complete subtrees are looked up"
        return root_of(leaves[index * width : (index + 1) * width])

    return subtree


SUBTREE = subtrees_of(LEAVES)


def flipped(value: bytes) -> bytes:
    return bytes([value[0] ^ 1]) + value[1:]


def test_hashes_are_domain_separated_as_rfc_9162_says() -> None:
    assert leaf_hash(b"x") == hashlib.sha256(b"\x00x").digest()
    assert node_hash(b"a", b"b") == hashlib.sha256(b"\x01ab").digest()
    assert root_of([]) == EMPTY_ROOT == hashlib.sha256(b"").digest()
    assert root_of(LEAVES[:3]) == node_hash(node_hash(LEAVES[0], LEAVES[1]), LEAVES[2])


@pytest.mark.parametrize("size", range(1, 65))
def test_the_root_from_stored_subtrees_and_from_a_walk_equal_the_recursive_definition(size: int) -> None:
    walk = CompactRange()
    for leaf in LEAVES[:size]:
        walk.append(leaf)
    assert tree_root(SUBTREE, size) == walk.root() == root_of(LEAVES[:size])


def test_whole_subtrees_appended_at_once_give_the_same_roots() -> None:
    walk = CompactRange()
    for start in range(0, 64, 8):
        walk.append_subtree(3, complete_root(LEAVES[start : start + 8]))
        assert walk.root() == root_of(LEAVES[: start + 8])
        assert walk.extended(LEAVES[start + 8 : start + 11]).root() == root_of(LEAVES[: min(start + 11, 64)])
    assert complete_root(LEAVES[:16]) == root_of(LEAVES[:16])
    with pytest.raises(ValueError):
        CompactRange().extended(LEAVES[:3]).append_subtree(2, LEAVES[0])


@pytest.mark.parametrize("size", range(1, 65))
def test_every_leaf_has_an_audit_path_that_verifies_and_a_tampered_one_does_not(size: int) -> None:
    root = root_of(LEAVES[:size])
    for index in range(size):
        path = inclusion_path(SUBTREE, index, size)
        assert len(path) <= (size - 1).bit_length()
        assert verify_inclusion(LEAVES[index], index, size, path, root)
        assert not verify_inclusion(flipped(LEAVES[index]), index, size, path, root)
        assert not verify_inclusion(LEAVES[index], index, size, path, flipped(root))
        if path:
            assert not verify_inclusion(LEAVES[index], index, size, [*path[:-1], flipped(path[-1])], root)
            assert not verify_inclusion(LEAVES[index], index, size, path[:-1], root)
            if size > 1:
                assert not verify_inclusion(LEAVES[index], (index + 1) % size, size, path, root)
        assert not verify_inclusion(LEAVES[index], index, size, [*path, LEAVES[0]], root)


@pytest.mark.parametrize("second", range(1, 65))
def test_every_earlier_tree_has_a_consistency_proof_that_verifies_and_a_tampered_one_does_not(second: int) -> None:
    second_root = root_of(LEAVES[:second])
    for first in range(1, second + 1):
        first_root = root_of(LEAVES[:first])
        proof = consistency_path(SUBTREE, first, second)
        assert verify_consistency(first, second, first_root, second_root, proof)
        assert not verify_consistency(first, second, flipped(first_root), second_root, proof)
        assert not verify_consistency(first, second, first_root, flipped(second_root), proof)
        for at in range(len(proof)):
            assert not verify_consistency(first, second, first_root, second_root, [*proof[:at], flipped(proof[at]), *proof[at + 1 :]])
        if first < second:
            other = [leaf_hash(b"forged")] + LEAVES[1:second]
            assert not verify_consistency(first, second, root_of(other[:first]), second_root, proof)


def test_proofs_outside_the_tree_are_refused() -> None:
    with pytest.raises(ProofError):
        inclusion_path(SUBTREE, 5, 5)
    with pytest.raises(ProofError):
        consistency_path(SUBTREE, 6, 5)
    with pytest.raises(ProofError):
        consistency_path(SUBTREE, 0, 5)
    assert not verify_consistency(0, 5, EMPTY_ROOT, root_of(LEAVES[:5]), [])
    assert not verify_inclusion(LEAVES[0], 0, 0, [], EMPTY_ROOT)


def test_a_proof_reads_few_complete_subtrees() -> None:
    wanted = needed_subtrees(lambda subtree: inclusion_path(subtree, 700_001, 1_000_000))
    assert len(wanted) <= 2 * 20
    assert all(((index + 1) << level) <= 1_000_000 for level, index in wanted)
