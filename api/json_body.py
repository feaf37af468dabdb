"""JSON request bodies read strictly: a key given twice in one object is refused, never silently overwritten."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Coroutine
from email.message import Message
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute

from domain.shared import InvalidInputError


class DuplicateKeyError(InvalidInputError):
    """Raised when an object in a JSON body gives the same key twice (the last copy would silently win)."""

    code = "duplicate_key"


class _Repeated(dict[str, Any]):
    """A JSON object in which some keys came more than once."""

    repeated: list[str]


def _first_repeated(value: Any, path: tuple[str, ...]) -> tuple[str, ...] | None:
    if isinstance(value, _Repeated):
        return (*path, value.repeated[0])
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        found = _first_repeated(child, (*path, str(key)))
        if found is not None:
            return found
    return None


def refuse_duplicate_keys(body: bytes) -> None:
    """DuplicateKeyError naming the first key given twice; a body that is not JSON is left to the usual checks."""
    repeated: list[str] = []

    def as_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found = dict(pairs)
        if len(found) == len(pairs):
            return found
        marked = _Repeated(found)
        marked.repeated = [key for key, count in Counter(key for key, _ in pairs).items() if count > 1]
        repeated.extend(marked.repeated)
        return marked

    try:
        parsed = json.loads(body, object_pairs_hook=as_object)
    except (ValueError, RecursionError):
        return
    if not repeated:
        return
    try:
        path = _first_repeated(parsed, ("body",)) or ("body", repeated[0])
    except RecursionError:
        path = ("body", repeated[0])
    raise DuplicateKeyError(f"The key {path[-1]!r} is given more than once; send each key once.", field=".".join(path))


def _is_json(content_type: str | None) -> bool:
    if not content_type:
        return True
    message = Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json"))


class StrictJSONRoute(APIRoute):
    """A route whose JSON body is refused with 422 duplicate_key when one of its objects repeats a key."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def strict(request: Request) -> Response:
            if request.method in ("POST", "PUT", "PATCH") and _is_json(request.headers.get("content-type")):
                body = await request.body()
                if body:
                    refuse_duplicate_keys(body)
            return await handle(request)

        return strict
