"""The API as served, except that read log entries are made but never recorded: bench/chart.py serves the chart
from this beside the real API in the same run, to measure what recording each read costs. Benchmark only."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI

from domain.read_log import ReadRecord
from infrastructure.eventstore import EventStore

_save_soon = EventStore.save_soon


def _without_reads(self: EventStore, *aggregates: Any) -> Callable[[], int | None]:
    return _save_soon(self, *(a for a in aggregates if not isinstance(a, ReadRecord)))


def create_app() -> FastAPI:
    EventStore.save_soon = _without_reads  # type: ignore[method-assign]
    from api.app import create_app as api

    return api()
