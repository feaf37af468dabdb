"""Prometheus metrics of this process: request latency, command outcomes, group-commit batches, read waits."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from prometheus_client.metrics_core import Metric

LATENCY_BUCKETS = (0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 500)


@dataclass(frozen=True)
class Metrics:
    requests: Histogram
    commands: Counter
    batches: Histogram
    read_wait_timeouts: Counter


@cache
def metrics() -> Metrics:
    """The process's metrics, registered with prometheus_client on first use (never at import)."""
    return Metrics(
        requests=Histogram(
            "medledger_http_request_duration_seconds",
            "Time to answer an HTTP request, by route template, method and status.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
        ),
        commands=Counter(
            "medledger_commands",
            "Commands answered, by command and outcome code (ok, replayed, or the error's code).",
            ["command", "code"],
        ),
        batches=Histogram(
            "medledger_group_commit_batch_size",
            "Commands recorded together in one group-commit transaction.",
            buckets=BATCH_BUCKETS,
        ),
        read_wait_timeouts=Counter(
            "medledger_read_wait_timeouts",
            "Queries with ?after= whose read models did not reach the position in time (answered 503).",
        ),
    )


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    metrics().requests.labels(route, method, str(status)).observe(seconds)


def count_command(command: str, code: str) -> None:
    metrics().commands.labels(command, code).inc()


def observe_batch(size: int) -> None:
    """Called by the group committer for every transaction it records."""
    metrics().batches.observe(size)


def count_read_wait_timeout() -> None:
    metrics().read_wait_timeouts.inc()


@dataclass(frozen=True)
class Progress:
    """Where the event log ends and how far each projector has applied it, read at scrape time."""

    log_end: int
    projectors: Mapping[str, int]
    waiting: int


class _ProgressCollector(Collector):
    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily("medledger_storage_up", "1 when the event store and read models answered this scrape.")
        up.add_metric([], 0 if self.progress is None else 1)
        yield up
        if self.progress is None:
            return
        end = GaugeMetricFamily("medledger_event_log_position", "Position of the last event in the log.")
        end.add_metric([], self.progress.log_end)
        yield end
        position = GaugeMetricFamily("medledger_projector_position", "Log position each projector has applied.", labels=["projector"])
        lag = GaugeMetricFamily("medledger_projector_lag", "Events in the log a projector has not applied yet.", labels=["projector"])
        for name, reached in sorted(self.progress.projectors.items()):
            position.add_metric([name], reached)
            lag.add_metric([name], max(self.progress.log_end - reached, 0))
        yield position
        yield lag
        waiting = GaugeMetricFamily("medledger_read_waits_in_progress", "Queries waiting for their read models (?after=).")
        waiting.add_metric([], self.progress.waiting)
        yield waiting


def exposition(progress: Progress | None) -> bytes:
    """The Prometheus text format: this process's metrics (all workers' with PROMETHEUS_MULTIPROC_DIR) and progress."""
    metrics()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = REGISTRY
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(_ProgressCollector(progress))
    return generate_latest(registry) + generate_latest(scrape)
