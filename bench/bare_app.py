"""The ceiling for the booking benchmark: the same server stack, one INSERT per request and nothing else."""

from __future__ import annotations

import os
from uuid import UUID

from fastapi import FastAPI
from psycopg_pool import ConnectionPool
from pydantic import AwareDatetime, BaseModel


class Body(BaseModel):
    doctor_id: UUID
    patient_id: UUID | None = None
    start: AwareDatetime


def create_app() -> FastAPI:
    table = os.environ["BENCH_BARE_TABLE"]
    pool = ConnectionPool(os.environ["BENCH_BARE_DSN"], min_size=4, max_size=16, open=True)
    app = FastAPI()

    @app.post("/bare", status_code=201)
    def bare(body: Body) -> dict[str, str]:
        with pool.connection() as conn:
            conn.execute(f"INSERT INTO {table} (doctor_id, start) VALUES (%s, %s)", (body.doctor_id, body.start))
        return {"id": str(body.doctor_id)}

    return app

