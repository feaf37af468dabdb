"""The reminder worker: emits each due dose once, as a notification on the Redis stream {prefix}:reminders."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

import redis
from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError

from commands.base import Clock
from domain.dosing import Dose
from projections.prescriptions import reminders

log = logging.getLogger("medledger.reminders")

# Claiming the dose and adding the notification happen in one script, so a dose is never sent twice
# (the claim outlives the look-back window) and never claimed without being sent.
EMIT_ONCE = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
    redis.call('XADD', KEYS[2], '*', unpack(ARGV, 2))
    return 1
end
return 0
"""


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def stream_name(prefix: str) -> str:
    return f"{prefix}:reminders"


class ReminderWorker:
    """Every poll, finds the doses due since the look-back and sends those not sent yet."""

    def __init__(
        self, engine: Engine, client: redis.Redis, prefix: str, clock: Clock, poll_seconds: float, lookback: timedelta
    ) -> None:
        self.engine = engine
        self.client = client
        self.prefix = prefix
        self.stream = stream_name(prefix)
        self.clock = clock
        self.poll_seconds = poll_seconds
        # A look-back shorter than two polls would let a dose due between polls fall out of every window.
        self.lookback = max(lookback, timedelta(seconds=2 * poll_seconds))
        self.claim_seconds = int((lookback + timedelta(days=1)).total_seconds())
        self._emit = client.register_script(EMIT_ONCE)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def run_once(self) -> int:
        """Sends the doses due in (now - look-back, now]; answers how many were sent now."""
        now = self.clock()
        with self.engine.connect() as conn:
            due = reminders(conn, None, now - self.lookback, now + timedelta(microseconds=1))
        return sum(self._send(dose) for dose in due)

    def _send(self, dose: Dose) -> int:
        fields: list[str] = ["type", "medication_reminder"]
        for name, value in dose.as_dict().items():
            fields += [name, str(value)]
        claim = f"{self.prefix}:reminder-sent:{dose.key}"
        return int(self._emit(keys=[claim, self.stream], args=[self.claim_seconds, *fields]))

    def forget_mentioning(self, patient_id: str) -> int:
        """Deletes the patient's reminders still in the stream (after their erasure); answers how many."""
        forgotten = 0
        last = "-"
        while batch := self.client.xrange(self.stream, min=last, max="+", count=1000):
            doomed = [entry for entry, fields in batch if _text(fields.get(b"patient_id", fields.get("patient_id"))) == patient_id]
            if doomed:
                forgotten += self.client.xdel(self.stream, *doomed)
            if len(batch) < 1000:
                break
            last = "(" + _text(batch[-1][0])
        return forgotten

    def run_forever(self) -> None:
        while not self._stop.is_set():
            try:
                sent = self.run_once()
                if sent:
                    log.info("sent %d medication reminders", sent)
            except (DBAPIError, redis.RedisError) as error:
                log.warning("reminders paused: %s", error)
            except Exception:
                log.exception("reminder round failed; retrying next round")
            self._stop.wait(self.poll_seconds)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run_forever, name="reminders", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
