"""The shipped drug interaction table (or the file MEDLEDGER_INTERACTION_TABLE names), read and validated; and the index of active prescriptions."""

from __future__ import annotations

import json
import threading
from importlib import resources
from pathlib import Path

from sqlalchemy import Engine, select

from domain.medication_safety import CheckerUnavailableError, InteractionTable, InvalidTableError
from domain.prescription import ACTIVE, Status
from projections.clinical_tables import prescriptions


def shipped_table() -> Path:
    return Path(str(resources.files("infrastructure") / "reference" / "drug_interactions.json"))


class FileInteractionTables:
    """Reads the table file when it changes (so an updated table is used without a restart); never passes silently."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or shipped_table()
        self._lock = threading.Lock()
        self._loaded: tuple[tuple[int, int], InteractionTable] | None = None

    def current(self) -> InteractionTable:
        try:
            stat = self.path.stat()
        except OSError as error:
            raise CheckerUnavailableError(f"The interaction table cannot be read: {error.strerror or error}.") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if self._loaded is not None and self._loaded[0] == stamp:
                return self._loaded[1]
            try:
                table = InteractionTable.from_dict(json.loads(self.path.read_text(encoding="utf-8")))
            except OSError as error:
                raise CheckerUnavailableError(f"The interaction table cannot be read: {error.strerror or error}.") from None
            except InvalidTableError as error:
                raise CheckerUnavailableError(f"The interaction table is malformed: {error}.") from None
            except (ValueError, RecursionError) as error:
                raise CheckerUnavailableError(f"The interaction table is not valid JSON: {error}.") from None
            self._loaded = (stamp, table)
            return table


class ReadModelPrescriptionIndex:
    """Prescriptions that are or may by now be active, as the read model knows them.

    Drafts are included because the read model may not yet show that one was issued moments ago; the
    sweeps decide on each aggregate, so a lagging row is harmless.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def active(self) -> list[str]:
        statuses = [s.value for s in (Status.DRAFT, *ACTIVE)]
        query = select(prescriptions.c.id).where(prescriptions.c.status.in_(statuses)).order_by(prescriptions.c.id)
        with self.engine.connect() as conn:
            return list(conn.execute(query).scalars())
