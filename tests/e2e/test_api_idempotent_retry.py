"""A command refused only because its record was busy is not remembered under its Idempotency-Key."""

from __future__ import annotations

import json

from starlette.requests import Request

from api.deps import run_command
from commands.base import ConcurrentUpdateError, Outcome


def post_request(path: str) -> Request:
    return Request({"type": "http", "method": "POST", "path": path, "headers": [], "query_string": b""})


def test_a_busy_refusal_is_not_replayed_but_retried_under_the_same_key(medledger):
    attempts = []

    def command() -> Outcome:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConcurrentUpdateError("The record kept changing while this command was saved; try again.")
        return Outcome("record-1", 7)

    first = run_command(medledger, post_request("/things"), "caller", "key-1", None, command)
    second = run_command(medledger, post_request("/things"), "caller", "key-1", None, command)
    third = run_command(medledger, post_request("/things"), "caller", "key-1", None, command)

    assert (first.status_code, json.loads(first.body)["code"]) == (409, "concurrent_update")
    assert (second.status_code, json.loads(second.body)) == (200, {"id": "record-1", "position": 7})
    assert (third.status_code, third.headers.get("idempotent-replayed")) == (200, "true")
    assert len(attempts) == 2
