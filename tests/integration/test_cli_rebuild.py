"""`medledger rebuild`: a progress bar with events per second, what it did, and exit 2 naming the read models for a typo."""

from __future__ import annotations

from typer.testing import CliRunner

from infrastructure.cli import cli
from integration_helpers import PROJECTOR_NAMES, book_many, environment, midnight_after, open_doctor, open_patient, projector_positions, read_model_rows, running


def test_an_unknown_read_model_exits_2_listing_the_valid_ones_and_touches_nothing(backend: str, make_settings, clock) -> None:
    settings = make_settings(backend)
    with running(settings, clock) as system:
        positions = projector_positions(system.write_engine)

        result = CliRunner().invoke(cli, ["rebuild", "appointments", "apointments"], env=environment(settings))

        assert result.exit_code == 2, result.output
        assert "apointments" in result.output
        assert all(name in result.output for name in PROJECTOR_NAMES), result.output
        assert projector_positions(system.write_engine) == positions


def test_a_rebuild_shows_its_progress_in_events_per_second_and_says_what_it_did(backend: str, make_settings, clock) -> None:
    settings = make_settings(backend)
    with running(settings, clock) as system:
        svc = system.services
        book_many(svc, open_doctor(svc), [open_patient(svc) for _ in range(4)], midnight_after(svc.clock()), days=40, per_day=10)
        system.projection.run_once()
        rows, end = read_model_rows(system.write_engine), system.store.max_position()

        result = CliRunner().invoke(cli, ["rebuild", "appointments", "patients"], env=environment(settings))

        assert result.exit_code == 0, result.output
        progress = [line for line in result.output.splitlines() if line.startswith(("appointments", "patients"))]
        assert len(progress) == 2, result.output
        assert all(f"{end}/{end} events" in line and "/s" in line for line in progress), result.output
        assert f"rebuilt appointments: {end:,} events in" in result.output
        assert f"swapped in for the old tables at position {end:,}" in result.output
        assert read_model_rows(system.write_engine) == rows
