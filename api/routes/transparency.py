"""The transparency log, for auditors and admins: signed tree heads, inclusion and consistency proofs, the key."""

from __future__ import annotations

import base64
from contextlib import nullcontext
from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from api.deps import CurrentActor, MedledgerDep, Paging
from api.responses import Refusal, errors
from api.schemas import Page
from api.transparency_schemas import ConsistencyProofPublic, InclusionProofPublic, PublicKeyPublic, TreeHeadPublic
from commands.audit import stored_event_read
from commands.base import Actor, require
from domain.shared import InvalidInputError, NotFoundError, Role
from infrastructure.transparency import NotInLogError, public_key_json

router = APIRouter(prefix="/audit/log", tags=["transparency log"], responses=errors(401, 403, 404, 503))

LARGEST = 2**62
TreeSize = Annotated[int, Query(ge=1, le=LARGEST, description="The size of the tree (a signed head's tree_size).")]
FIRST_AFTER_SECOND = Refusal("first", "a first tree size larger than the second")


def _auditing(actor: Actor) -> None:
    require(actor.is_(Role.AUDITOR, Role.ADMIN), "Only auditors and admins read the transparency log.")


@router.get("/public-key", response_model=PublicKeyPublic)
def public_key(actor: CurrentActor, m: MedledgerDep) -> dict[str, str]:
    """The Ed25519 public key that verifies the log's signed tree heads."""
    _auditing(actor)
    return public_key_json(m.transparency.public_key)


@router.get("/heads/latest", response_model=TreeHeadPublic)
def latest_head(actor: CurrentActor, m: MedledgerDep) -> dict[str, object]:
    """The latest signed tree head (404 until the first is signed)."""
    _auditing(actor)
    with m.read_engine.connect() as conn:
        head = m.transparency.latest_head(conn)
    if head is None:
        raise NotFoundError("No tree head has been signed yet.")
    return head.as_json()


@router.get("/heads/{tree_size}", response_model=TreeHeadPublic)
def head_of_size(actor: CurrentActor, m: MedledgerDep, tree_size: Annotated[int, Path(ge=0, le=LARGEST)]) -> dict[str, object]:
    """The signed tree head of this size."""
    _auditing(actor)
    with m.read_engine.connect() as conn:
        head = m.transparency.head(conn, tree_size)
    if head is None:
        raise NotFoundError(f"No tree head of size {tree_size} has been signed.")
    return head.as_json()


@router.get("/heads", response_model=Page[TreeHeadPublic])
def list_heads(actor: CurrentActor, m: MedledgerDep, paging: Paging) -> dict[str, object]:
    """Signed tree heads, the largest first."""
    _auditing(actor)
    with m.read_engine.connect() as conn:
        found, total = m.transparency.heads(conn, paging.page, paging.page_size)
    return {"items": [head.as_json() for head in found], "total": total, "page": paging.page, "page_size": paging.page_size}


@router.post(
    "/heads",
    status_code=201,
    response_model=TreeHeadPublic,
    responses={200: {"model": TreeHeadPublic, "description": "A head of the tree's current size was signed already: that one."}, **errors(429)},
)
def sign_head(actor: CurrentActor, m: MedledgerDep) -> JSONResponse:
    """Sign a tree head for the log's current size now (201), or answer the one signed for it already (200)."""
    _auditing(actor)
    head, new = m.transparency.sign_head()
    return JSONResponse(head.as_json(), status_code=201 if new else 200)


@router.get("/proofs/inclusion", response_model=InclusionProofPublic)
def inclusion_proof(
    actor: CurrentActor,
    m: MedledgerDep,
    position: Annotated[int, Query(ge=1, le=LARGEST, description="The event's position in the event log.")],
    tree_size: TreeSize,
) -> dict[str, object]:
    """The audit path of the event at this position in the tree of tree_size events (404 if that tree lacks it),
    and for auditors the event as the store holds it (a read of its record, in the read log)."""
    _auditing(actor)
    with m.read_engine.connect() as conn:
        try:
            index, leaf, path = m.transparency.inclusion(conn, position, tree_size)
        except NotInLogError as error:
            raise NotFoundError(f"The transparency log has no such proof: {error}.") from None
    found = [event for event in m.transparency.read_events(position - 1, 1, position) if event.id == position]
    if not actor.is_(Role.AUDITOR):
        found = []  # admins read no clinical content: the proof, without the event's bytes
    with stored_event_read(m.services, m.history, actor, found[0].originator_id) if found else nullcontext():
        event = (
            {
                "position": found[0].id,
                "originator_id": str(found[0].originator_id),
                "originator_version": found[0].originator_version,
                "topic": found[0].topic,
                "state": base64.b64encode(found[0].state).decode(),
            }
            if found
            else None
        )
    return {
        "position": position,
        "leaf_index": index,
        "tree_size": tree_size,
        "leaf_hash": leaf.hex(),
        "audit_path": [node.hex() for node in path],
        "event": event,
    }


@router.get("/proofs/consistency", response_model=ConsistencyProofPublic, responses=errors(refusals=(FIRST_AFTER_SECOND,)))
def consistency_proof(
    actor: CurrentActor,
    m: MedledgerDep,
    first: Annotated[int, Query(ge=1, le=LARGEST, description="The earlier tree size.")],
    second: Annotated[int, Query(ge=1, le=LARGEST, description="The later tree size.")],
) -> dict[str, object]:
    """The proof that the tree of `first` events is a prefix of the tree of `second` (404 beyond the log's size)."""
    _auditing(actor)
    if first > second:
        raise InvalidInputError("The first tree size must not be larger than the second.", field="first")
    with m.read_engine.connect() as conn:
        try:
            proof = m.transparency.consistency(conn, first, second)
        except NotInLogError as error:
            raise NotFoundError(f"The transparency log has no such proof: {error}.") from None
    return {"first": first, "second": second, "proof": [node.hex() for node in proof]}
