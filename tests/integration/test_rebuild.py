"""Blue/green rebuilds: built beside the live tables, swapped in under the same names, one at a time per read model."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import func, inspect, select

from commands.appointments import CancelAppointment, cancel_appointment
from infrastructure.bootstrap import Medledger, bootstrap
from infrastructure.projector import RebuildRunningError, UnknownReadModelError
from integration_helpers import (
    ADMIN,
    PROJECTOR_NAMES,
    READ_MODELS,
    book_many,
    midnight_after,
    open_doctor,
    open_patient,
    projector_positions,
    read_model_rows,
    running,
    wait_until,
)
from projections.projectors import AppointmentBook
from projections.shadow import ShadowBuild
from projections.tables import appointments as appointment_rows


@pytest.fixture
def system(backend: str, make_settings, clock) -> Iterator[Medledger]:
    with running(make_settings(backend), clock) as system:
        yield system


def write_history(m: Medledger, days: int = 30) -> list[str]:
    svc = m.services
    doctor = open_doctor(svc)
    patients = [open_patient(svc, f"Patient {n}") for n in range(8)]
    booked = book_many(svc, doctor, patients, midnight_after(svc.clock()), days=days, per_day=10)
    for appointment_id in booked[::7]:
        cancel_appointment(svc, CancelAppointment(appointment_id, "changed plans"), ADMIN)
    return booked


def storage_shape(m: Medledger) -> dict[str, Any]:
    """Every table of the schema, and each read-model table's primary key and indexes by name."""
    inspector = inspect(m.write_engine)
    schema = m.settings.database_schema
    return {
        "tables": sorted(inspector.get_table_names(schema=schema)),
        "read models": {
            name: (
                inspector.get_pk_constraint(name, schema=schema),
                sorted((index["name"], tuple(index["column_names"]), bool(index["unique"])) for index in inspector.get_indexes(name, schema=schema)),
            )
            for name in READ_MODELS
        },
    }


def test_a_rebuild_puts_tables_of_the_same_names_keys_and_indexes_in_place_and_leaves_nothing_behind(system: Medledger) -> None:
    write_history(system)
    system.projection.run_once()
    shape, rows = storage_shape(system), read_model_rows(system.write_engine)

    system.projection.rebuild()
    system.projection.rebuild(["appointments", "care"])

    assert storage_shape(system) == shape
    assert not [name for name in shape["tables"] if "rebuild" in name]
    assert read_model_rows(system.write_engine) == rows
    assert projector_positions(system.write_engine) == {name: system.store.max_position() for name in PROJECTOR_NAMES}


def test_the_live_projector_carries_on_from_the_position_the_swap_carried_over(system: Medledger) -> None:
    write_history(system, days=10)
    system.projection.run_once()
    write_history(system, days=10)
    end = system.store.max_position()
    assert projector_positions(system.write_engine)["appointments"] < end

    system.projection.rebuild(["appointments"])

    assert projector_positions(system.write_engine)["appointments"] == end
    rebuilt = read_model_rows(system.write_engine)["appointments"]
    system.projection.run_once()
    assert read_model_rows(system.write_engine)["appointments"] == rebuilt
    booked_later = write_history(system, days=5)
    system.projection.run_once()
    after = read_model_rows(system.write_engine)
    system.projection.rebuild()
    assert read_model_rows(system.write_engine) == after
    assert set(booked_later) <= {row[0] for row in after["appointments"]}


def test_a_second_rebuild_of_a_read_model_being_rebuilt_is_refused_and_another_read_model_may_be_rebuilt_meanwhile(
    system: Medledger, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="medledger.projector")
    write_history(system)
    system.projection.run_once()
    rows = read_model_rows(system.write_engine)
    mid_rebuild, may_finish = threading.Event(), threading.Event()
    outcome: list[Any] = []

    def hold_mid_rebuild(name: str, position: int, frontier: int) -> None:
        if not mid_rebuild.is_set():
            mid_rebuild.set()
            may_finish.wait(timeout=60)

    def first_rebuild() -> None:
        try:
            outcome.append(system.projection.rebuild(["appointments"], progress=hold_mid_rebuild))
        except Exception as error:  # noqa: BLE001 - asserted below
            outcome.append(error)

    other = bootstrap(system.settings, clock=system.services.clock)
    thread = threading.Thread(target=first_rebuild)
    thread.start()
    try:
        assert mid_rebuild.wait(timeout=60), outcome
        with pytest.raises(RebuildRunningError, match="appointments is being rebuilt by another process"):
            other.projection.rebuild(["appointments"])
        with pytest.raises(RebuildRunningError, match="appointments"):
            other.projection.rebuild()
        assert "rebuilt accounts" not in caplog.text, "a refused rebuild of every read model rebuilt some of them first"
        assert other.projection.rebuild(["care"]) == ["care"]
    finally:
        may_finish.set()
        thread.join(timeout=60)
        other.close()

    assert outcome == [["appointments"]]
    assert read_model_rows(system.write_engine) == rows


def test_an_unknown_read_model_is_refused_naming_the_known_ones_and_nothing_is_rebuilt(system: Medledger) -> None:
    write_history(system, days=3)
    system.projection.run_once()
    positions = projector_positions(system.write_engine)

    with pytest.raises(UnknownReadModelError) as refused:
        system.projection.rebuild(["appointments", "appointmentz"])

    assert refused.value.unknown == ["appointmentz"]
    assert refused.value.known == list(PROJECTOR_NAMES)
    assert projector_positions(system.write_engine) == positions


def test_an_interrupted_rebuild_leaves_the_live_tables_serving_and_the_next_one_starts_afresh(system: Medledger) -> None:
    write_history(system)
    system.projection.run_once()
    shape, rows = storage_shape(system), read_model_rows(system.write_engine)

    def interrupt(name: str, position: int, frontier: int) -> None:
        if position > 0:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        system.projection.rebuild(["appointments"], progress=interrupt)
    assert storage_shape(system) == shape
    assert read_model_rows(system.write_engine) == rows

    # A process killed mid-rebuild cleans nothing up: the next rebuild drops what it left.
    left_behind = ShadowBuild(next(p for p in system.projection.projectors if isinstance(p, AppointmentBook)))
    left_behind.create(system.write_engine)
    assert storage_shape(system) != shape

    system.projection.rebuild(["appointments"])

    assert storage_shape(system) == shape
    assert read_model_rows(system.write_engine) == rows


def test_a_swap_waits_for_a_query_reading_the_live_table_without_failing_it(
    make_settings, clock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="medledger.projector")
    with running(make_settings("postgres"), clock) as system:
        booked = write_history(system, days=5)
        system.projection.run_once()
        done: list[Any] = []
        with system.read_engine.connect() as query:
            assert query.execute(select(func.count()).select_from(appointment_rows)).scalar_one() == len(booked)
            rebuild = threading.Thread(target=lambda: done.append(system.projection.rebuild(["appointments"])))
            rebuild.start()
            assert wait_until(lambda: "swapping again" in caplog.text, timeout=60)
            assert not done
            assert query.execute(select(func.count()).select_from(appointment_rows)).scalar_one() == len(booked)
            query.commit()
            rebuild.join(timeout=60)
        assert done == [["appointments"]]
        assert len(read_model_rows(system.write_engine)["appointments"]) == len(booked)


def test_systems_started_at_the_same_moment_on_fresh_storage_all_come_up(backend: str, make_settings) -> None:
    starting = 4
    settings = make_settings(backend, pool_size=2)
    barrier = threading.Barrier(starting)
    started: list[Medledger] = []
    failures: list[str] = []

    def start() -> None:
        barrier.wait(timeout=30)
        try:
            started.append(bootstrap(settings))
        except Exception as error:  # noqa: BLE001 - asserted below
            failures.append(f"{type(error).__name__}: {error}")

    threads = [threading.Thread(target=start) for _ in range(starting)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    try:
        assert failures == []
        assert len(started) == starting
        assert projector_positions(started[0].write_engine) == {name: 0 for name in PROJECTOR_NAMES}
    finally:
        for system in started:
            system.close()
