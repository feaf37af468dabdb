#!/usr/bin/env python3
"""Checks Medledger's transparency log offline: a signed tree head, an inclusion proof, a consistency proof.

Standard library and the `cryptography` package only; no Medledger code, so an outside auditor can read all of
what they trust here. The inputs are the JSON bodies the API serves under /audit/log/ (saved to files):

  verify_log.py head --key public-key.json head.json
  verify_log.py inclusion --key public-key.json --head head.json --proof inclusion.json [--leaf-hash HEX]
  verify_log.py consistency --key public-key.json --first old-head.json --second new-head.json --proof consistency.json

Exits 0 when everything checks, 1 naming what does not, 2 on unreadable input.

Formats (RFC 9162 hashing, SHA-256):
- leaf hash = SHA-256(0x00 || canonical event); interior = SHA-256(0x01 || left || right);
- canonical event = position (8 bytes) || originator id (16 bytes, the UUID's bytes) || originator version (8 bytes)
  || topic length (4 bytes) || topic (UTF-8) || state length (4 bytes) || state; integers unsigned big-endian;
- a head signs, with Ed25519: b"medledger tree head v1\\x00" || tree_size (8 bytes) || timestamp (8 bytes, ms) || root.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import struct
import sys
import uuid
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import load_pem_public_key

HEAD_CONTEXT = b"medledger tree head v1\x00"


class Unreadable(Exception):
    pass


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def node(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def canonical_event(event: dict[str, Any]) -> bytes:
    topic = event["topic"].encode()
    state = base64.b64decode(event["state"])
    return (
        struct.pack(">Q16sQ", event["position"], uuid.UUID(event["originator_id"]).bytes, event["originator_version"])
        + struct.pack(">I", len(topic)) + topic + struct.pack(">I", len(state)) + state
    )


def leaf_of(event: dict[str, Any]) -> bytes:
    return sha256(b"\x00" + canonical_event(event))


def load_json(path: str) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as error:
        raise Unreadable(f"{path}: {error}") from None


def load_key(path: str) -> Ed25519PublicKey:
    text = Path(path).read_text()
    try:
        if text.lstrip().startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
        else:
            key = Ed25519PublicKey.from_public_bytes(base64.b64decode(json.loads(text)["public_key"]))
    except (ValueError, KeyError) as error:
        raise Unreadable(f"{path}: not an Ed25519 public key ({error})") from None
    if not isinstance(key, Ed25519PublicKey):
        raise Unreadable(f"{path}: not an Ed25519 public key")
    return key


def head_signed(key: Ed25519PublicKey, head: dict[str, Any]) -> bool:
    signed = HEAD_CONTEXT + struct.pack(">QQ", head["tree_size"], head["timestamp"]) + bytes.fromhex(head["root_hash"])
    try:
        key.verify(base64.b64decode(head["signature"]), signed)
    except InvalidSignature:
        return False
    return True


def inclusion_holds(leaf: bytes, index: int, size: int, path: list[bytes], root: bytes) -> bool:
    """RFC 9162 section 2.1.3.2."""
    if not 0 <= index < size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in path:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def consistency_holds(first: int, second: int, first_root: bytes, second_root: bytes, path: list[bytes]) -> bool:
    """RFC 9162 section 2.1.4.2."""
    if not 0 < first <= second:
        return False
    if first == second:
        return not path and first_root == second_root
    if not path:
        return False
    if first & (first - 1) == 0:
        path = [first_root, *path]
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node(c, fr), node(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


def check_head(key: Ed25519PublicKey, path: str) -> dict[str, Any]:
    head = load_json(path)
    if not head_signed(key, head):
        raise Failed(f"the head in {path} (tree size {head.get('tree_size')}) is not signed by this key")
    return head


class Failed(Exception):
    pass


def run(args: argparse.Namespace) -> str:
    key = load_key(args.key)
    if args.command == "head":
        head = check_head(key, args.head)
        return f"head of {head['tree_size']} events, root {head['root_hash']}, signed at {head.get('issued_at', head['timestamp'])}"
    if args.command == "inclusion":
        head = check_head(key, args.head)
        proof = load_json(args.proof)
        if proof["tree_size"] != head["tree_size"]:
            raise Failed(f"the proof is for a tree of {proof['tree_size']} events, the head for {head['tree_size']}")
        leaf = bytes.fromhex(args.leaf_hash) if args.leaf_hash else None
        if leaf is None:
            if not proof.get("event"):
                raise Failed("the proof carries no event: give the leaf hash with --leaf-hash")
            leaf = leaf_of(proof["event"])
            if proof["event"]["position"] != proof["position"]:
                raise Failed("the proof's event is not the one at the proof's position")
        path = [bytes.fromhex(h) for h in proof["audit_path"]]
        if not inclusion_holds(leaf, proof["leaf_index"], proof["tree_size"], path, bytes.fromhex(head["root_hash"])):
            raise Failed(f"the event at position {proof['position']} is not in the signed tree of {head['tree_size']} events as given")
        return f"the event at position {proof['position']} (leaf {proof['leaf_index']}) is in the signed tree of {head['tree_size']} events"
    first, second = check_head(key, args.first), check_head(key, args.second)
    proof = load_json(args.proof)
    if (proof["first"], proof["second"]) != (first["tree_size"], second["tree_size"]):
        raise Failed(f"the proof is from {proof['first']} to {proof['second']} events, the heads {first['tree_size']} and {second['tree_size']}")
    path = [bytes.fromhex(h) for h in proof["proof"]]
    if not consistency_holds(first["tree_size"], second["tree_size"], bytes.fromhex(first["root_hash"]), bytes.fromhex(second["root_hash"]), path):
        raise Failed(f"the tree of {second['tree_size']} events does not extend the tree of {first['tree_size']}: history was rewritten")
    return f"the tree of {second['tree_size']} events extends the tree of {first['tree_size']} unchanged"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    head = commands.add_parser("head", help="check a signed tree head's signature")
    head.add_argument("head")
    inclusion = commands.add_parser("inclusion", help="check that an event is in a signed tree")
    inclusion.add_argument("--head", required=True)
    inclusion.add_argument("--proof", required=True)
    inclusion.add_argument("--leaf-hash", help="the leaf hash, hexadecimal (default: recomputed from the proof's event)")
    consistency = commands.add_parser("consistency", help="check that a later signed tree extends an earlier one")
    consistency.add_argument("--first", required=True)
    consistency.add_argument("--second", required=True)
    consistency.add_argument("--proof", required=True)
    for command in (head, inclusion, consistency):
        command.add_argument("--key", required=True, help="the log's public key: the JSON of /audit/log/public-key, or PEM")
    args = parser.parse_args(argv)
    try:
        print("OK:", run(args))
        return 0
    except Failed as failure:
        print("FAIL:", failure)
        return 1
    except (Unreadable, KeyError, TypeError, ValueError) as error:
        print("unreadable input:", error, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
