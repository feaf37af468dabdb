"""Response bodies of the transparency log: signed tree heads, proofs and the log's public key."""

from __future__ import annotations

from pydantic import BaseModel, Field

Hex = Field(pattern="^[0-9a-f]{64}$", description="A SHA-256 hash, hexadecimal.")


class TreeHeadPublic(BaseModel):
    """A signed tree head: the log's root over its first `tree_size` events, signed with Ed25519 over
    b"medledger tree head v1\\x00" || tree_size (8 bytes) || timestamp (8 bytes), both unsigned big-endian, || root."""

    tree_size: int = Field(description="How many events, from the first in log order, the tree holds.")
    timestamp: int = Field(description="When it was signed: milliseconds since 1970-01-01 UTC.")
    issued_at: str = Field(description="The timestamp in ISO 8601, UTC.")
    root_hash: str = Hex
    signature: str = Field(description="The Ed25519 signature, base64.")


class LoggedEvent(BaseModel):
    """The stored event a leaf hashes, as the store holds it now: recompute its canonical bytes and leaf hash."""

    position: int
    originator_id: str
    originator_version: int
    topic: str
    state: str = Field(description="The stored state bytes, base64.")


class InclusionProofPublic(BaseModel):
    """RFC 9162 inclusion proof of one event in the tree of `tree_size` events."""

    position: int
    leaf_index: int = Field(description="The event's 0-based place among the logged events.")
    tree_size: int
    leaf_hash: str = Hex
    audit_path: list[str] = Field(description="Hashes from the leaf's sibling up to the root's child, hexadecimal.")
    event: LoggedEvent | None = Field(
        description="The event the store holds at this position, if it still holds one; for auditors only (admins read no clinical content)."
    )


class ConsistencyProofPublic(BaseModel):
    """RFC 9162 consistency proof that the tree of `first` events is a prefix of the tree of `second`."""

    first: int
    second: int
    proof: list[str] = Field(description="Hashes, hexadecimal.")


class PublicKeyPublic(BaseModel):
    algorithm: str = Field(description="Ed25519.")
    public_key: str = Field(description="The 32 raw bytes of the public key, base64.")
    public_key_pem: str = Field(description="The same key as SubjectPublicKeyInfo PEM.")
    key_id: str = Field(description="SHA-256 of the raw public key, hexadecimal.")
