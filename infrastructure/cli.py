"""The `medledger` command: serve the API, run the projector, rebuild read models, create an admin, simulate the gateway."""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import sys
import time
from datetime import time as clock_time
from enum import StrEnum
from pathlib import Path
from typing import Annotated, NoReturn

import typer
import uvicorn
from pydantic import EmailStr, TypeAdapter, ValidationError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, Task, TaskID, TextColumn, TimeElapsedColumn
from rich.text import Text

from commands import accounts, prescriptions, profiles
from commands.base import Actor
from domain.doctors import WeeklyAvailability
from domain.medication_safety import CheckerUnavailableError
from domain.shared import DomainError, Role
from domain.webhooks import EventType
from infrastructure import backfill
from infrastructure.bootstrap import Medledger, bootstrap
from infrastructure.gateway import send, signature_header, simulated_event, unix_now
from infrastructure.projector import RebuildRunningError
from infrastructure.settings import Settings
from infrastructure.transparency import SignedTreeHead, verify_store
from projections.projectors import all_projectors
from projections.shadow import SwapBlockedError

cli = typer.Typer(help="Medledger: event-sourced clinic backend.", no_args_is_help=True, add_completion=False)
OPERATOR = Actor(account_id="operator", role=Role.ADMIN, profile_id=None, correlation_id="cli")

DEMO_DOCTORS = [
    ("Dr Amara Okafor", "Cardiology", "GMC-7012345", "120.00", "Europe/London"),
    ("Dr Lukas Berg", "Dermatology", "GMC-7023456", "90.00", "Europe/London"),
    ("Dr Sofia Marquez", "Paediatrics", "GMC-7034567", "75.00", "Europe/London"),
]
DEMO_PATIENTS = [
    ("Grace Hopper", "1986-12-09", "female", "+44 20 7946 0001"),
    ("Alan Turing", "1992-06-23", "male", "+44 20 7946 0002"),
    ("Ada Lovelace", "1979-12-10", "female", "+44 20 7946 0003"),
]
WORKING_WEEK = {
    day: ((clock_time(9), clock_time(12, 30)), (clock_time(13, 30), clock_time(17)))
    for day in ("mon", "tue", "wed", "thu", "fri")
}


def seed_demo(m: Medledger) -> list[tuple[str, str, str]]:
    """Creates an admin, three doctors with weekly availability and three patients; answers their credentials."""
    svc = m.services
    credentials: list[tuple[str, str, str]] = []

    def open_account(email: str, role: Role, profile: dict) -> str:
        password = secrets.token_urlsafe(12)
        accounts.create_account(svc, accounts.CreateAccount(email, password, role, profile), OPERATOR)
        credentials.append((role.value, email, password))
        account = svc.store.find(accounts.Account, accounts.Account.create_id(email))
        return account.profile_id if account and account.profile_id else ""

    open_account("admin@demo.medledger.example", Role.ADMIN, {})
    for index, (name, specialty, licence, fee, zone) in enumerate(DEMO_DOCTORS, start=1):
        profile = {"name": name, "specialization": specialty, "licence_number": licence, "consultation_fee": fee, "bio": ""}
        doctor_id = open_account(f"doctor{index}@demo.medledger.example", Role.DOCTOR, profile)
        availability = WeeklyAvailability(timezone=zone, slot_minutes=30, periods=WORKING_WEEK)
        profiles.set_availability(svc, profiles.SetAvailability(doctor_id, availability), OPERATOR)
    for index, (name, born, sex, phone) in enumerate(DEMO_PATIENTS, start=1):
        profile = {"full_name": name, "date_of_birth": born, "sex": sex, "phone": phone, "allergies": []}
        open_account(f"patient{index}@demo.medledger.example", Role.PATIENT, profile)
    return credentials


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[int, typer.Option(help="Worker processes")] = 1,
    demo: Annotated[bool, typer.Option(help="Seed the demo clinic when the event store is empty")] = True,
) -> None:
    """Serve the HTTP API (interactive docs at /docs)."""
    settings = Settings()
    m = bootstrap(settings)
    try:
        if demo and m.store.max_position() == 0:
            typer.echo("Seeding the demo clinic. These credentials are shown once:")
            for role, email, password in seed_demo(m):
                typer.echo(f"  {role:8} {email:32} {password}")
    finally:
        m.close()
    where = f"SQLite under {settings.data_dir.resolve()}" if settings.embedded else "PostgreSQL"
    typer.echo(f"Medledger on http://{host}:{port} (docs at /docs), event store: {where}")
    uvicorn.run("api.app:create_app", factory=True, host=host, port=port, workers=workers, log_level="warning")


@cli.command()
def projector() -> None:
    """Run the projectors as their own process, following the event log until stopped."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    m = bootstrap()
    signal.signal(signal.SIGTERM, lambda *_: m.projection.stop())
    typer.echo(f"projector following the event log (pid {os.getpid()})")
    if m.reminders is not None:
        typer.echo(f"sending medication reminders to the Redis stream {m.reminders.stream}")
        m.reminders.start()
    try:
        m.projection.run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        m.close()


@cli.command()
def rebuild(names: Annotated[list[str] | None, typer.Argument(help="Read models to rebuild; all when omitted")] = None) -> None:
    """Rebuild read models from the event store while the service runs; queries use the old tables until the swap."""
    known = [projector.name for projector in all_projectors()]
    unknown = [name for name in names or () if name not in known]
    if unknown:
        raise typer.BadParameter(f"unknown read model {', '.join(unknown)}; choose from {', '.join(known)}", param_hint="NAMES")
    m = bootstrap()
    first_seen: dict[str, float] = {}
    last_seen: dict[str, tuple[float, int]] = {}
    try:
        with Progress(
            TextColumn("{task.description:<14}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("events"),
            EventsPerSecond(),
            TimeElapsedColumn(),
        ) as bar:
            tasks: dict[str, TaskID] = {}

            def advanced(name: str, position: int, frontier: int) -> None:
                if name not in tasks:
                    first_seen[name] = time.monotonic()
                    tasks[name] = bar.add_task(name, total=frontier)
                bar.update(tasks[name], completed=position, total=max(frontier, position))
                last_seen[name] = (time.monotonic(), position)

            rebuilt = m.projection.rebuild(names or (), progress=advanced)
        for name in rebuilt:
            ended, position = last_seen[name]
            seconds = max(ended - first_seen[name], 1e-3)
            typer.echo(
                f"rebuilt {name}: {position:,} events in {seconds:.1f} s ({position / seconds:,.0f} events/s), "
                f"swapped in for the old tables at position {position:,}"
            )
    except (RebuildRunningError, SwapBlockedError) as error:
        typer.echo(str(error), err=True)
        raise typer.Exit(code=1) from None
    finally:
        m.close()


class EventsPerSecond(ProgressColumn):
    """How fast the rebuild reads through the log."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed or (task.completed / task.elapsed if task.elapsed else None)
        return Text(f"{speed:,.0f}/s" if speed else "-/s", style="progress.data.speed")


@cli.command()
def reminders(once: Annotated[bool, typer.Option(help="Send what is due now and stop")] = False) -> None:
    """Send due medication reminders to the Redis stream {prefix}:reminders (needs MEDLEDGER_REDIS_URL)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    m = bootstrap()
    try:
        if m.reminders is None:
            typer.echo("reminders need Redis: set MEDLEDGER_REDIS_URL", err=True)
            raise typer.Exit(code=2)
        if once:
            typer.echo(f"sent {m.reminders.run_once()} reminders to {m.reminders.stream}")
            return
        signal.signal(signal.SIGTERM, lambda *_: m.reminders.stop() if m.reminders else None)
        typer.echo(f"sending medication reminders to {m.reminders.stream} (pid {os.getpid()})")
        try:
            m.reminders.run_forever()
        except KeyboardInterrupt:
            pass
    finally:
        m.close()


@cli.command()
def verify(
    head: Annotated[
        list[Path] | None,
        typer.Option("--head", help="A signed tree head (JSON, as GET /audit/log/heads/... answers) saved earlier; repeatable"),
    ] = None,
) -> None:
    """Walk the whole event store, recompute every leaf and the tree's root, and report the first missing, altered,
    reordered or inserted event (exit 1); checks the latest stored signed head and every --head given."""
    saved: list[SignedTreeHead] = []
    for path in head or ():
        try:
            saved.append(SignedTreeHead.from_json(json.loads(path.read_text())))
        except (OSError, ValueError, KeyError, TypeError) as error:
            _refuse(f"{path} is not a signed tree head: {error}")
    m = bootstrap()
    started = time.monotonic()
    try:
        total = m.store.max_position()
        with Progress(
            TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), TextColumn("events"), EventsPerSecond(), TimeElapsedColumn()
        ) as bar:
            task = bar.add_task("verify", total=total)
            report = verify_store(
                m.transparency.read_events,
                m.write_engine,
                m.transparency.public_key,
                saved,
                progress=lambda events: bar.update(task, completed=events, total=max(total, events)),
            )
    finally:
        m.close()
    seconds = max(time.monotonic() - started, 1e-3)
    if report.finding is not None:
        typer.echo(f"TAMPERED ({report.finding.kind}) at position {report.finding.position}: {report.finding.message}", err=True)
        raise typer.Exit(code=1)
    typer.echo(
        f"verified {report.events:,} events in {seconds:.1f} s ({report.events / seconds:,.0f} events/s): "
        f"{report.logged:,} match the transparency log, {report.heads_checked} signed head(s) match; "
        f"root at {report.events:,} events {report.root.hex()}"
    )
    if report.skipped_positions:
        typer.echo(f"{report.skipped_positions:,} notification ids were never used (rolled-back writes skip them)")


@cli.command("recheck-prescriptions")
def recheck_prescriptions() -> None:
    """Re-check active prescriptions against the current interaction table and flag newly found hazards."""
    m = bootstrap()
    try:
        outcome = prescriptions.recheck_prescriptions(m.services, prescriptions.RecheckPrescriptions(), OPERATOR)
        typer.echo(f"table {outcome.id}: {outcome.examined} active prescriptions, {len(outcome.changed)} re-checked")
        if outcome.could_not_check:
            typer.echo(f"could not check (allergies unreadable): {', '.join(outcome.could_not_check)}", err=True)
            raise typer.Exit(code=1)
    except CheckerUnavailableError as error:
        typer.echo(f"nothing re-checked: {error.message}", err=True)
        raise typer.Exit(code=1) from None
    finally:
        m.close()


@cli.command("expire-prescriptions")
def expire_prescriptions() -> None:
    """Expire active prescriptions past the last day they are valid."""
    m = bootstrap()
    try:
        outcome = prescriptions.expire_prescriptions(m.services, prescriptions.ExpirePrescriptions(), OPERATOR)
        typer.echo(f"{outcome.examined} active prescriptions, {len(outcome.changed)} expired")
    finally:
        m.close()


@cli.command("rotate-master-key")
def rotate_master_key() -> None:
    """Re-wrap every patient's data key with MEDLEDGER_MASTER_KEY (the new one), unwrapping with the keys in
    MEDLEDGER_PREVIOUS_MASTER_KEYS; no event is touched. Safe while the service runs (give its processes both keys
    until this has finished, then only the new one)."""
    m = bootstrap()
    try:
        keyring = m.store.app.keyring
        assert keyring is not None
        rewrapped = keyring.rotate(progress=lambda done: typer.echo(f"re-wrapped {done:,} data keys so far"))
        counts = keyring.counts()
    finally:
        m.close()
    by_key = ", ".join(f"{count:,} {'destroyed' if key == 'destroyed' else 'under master key ' + key}" for key, count in sorted(counts.items()))
    typer.echo(f"re-wrapped {rewrapped:,} data keys with master key {keyring.master.current_id}; now {by_key or 'no data keys'}")


@cli.command("backfill-visits")
def backfill_visits() -> None:
    """Record on each patient's care record the access their appointments give, for appointments booked before
    this was recorded with every appointment change (stores written by earlier versions). Safe to run again."""
    m = bootstrap()
    try:
        outcome = backfill.backfill_visits(m, OPERATOR)
        typer.echo(f"{outcome.examined} appointments examined, {outcome.recorded} visits recorded")
    finally:
        m.close()


ADMIN_PASSWORD_VARIABLE = "MEDLEDGER_ADMIN_PASSWORD"
PASSWORD_LENGTHS = range(10, 129)


def _refuse(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


def _admin_password(from_stdin: bool) -> str:
    """From standard input when asked, else the environment, else a prompt at a terminal: never the command line."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            _refuse("no password on standard input: pipe one line in, for example from a secrets file.")
    elif ADMIN_PASSWORD_VARIABLE in os.environ:
        password = os.environ[ADMIN_PASSWORD_VARIABLE]
        if not password:
            _refuse(f"no password: {ADMIN_PASSWORD_VARIABLE} is empty.")
    elif sys.stdin.isatty():
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    else:
        _refuse(
            "no password and no terminal to ask for one: pipe it in with --password-stdin, "
            f"or set {ADMIN_PASSWORD_VARIABLE}."
        )
    if len(password) < PASSWORD_LENGTHS.start:
        _refuse(f"a password has at least {PASSWORD_LENGTHS.start} characters.")
    if len(password) >= PASSWORD_LENGTHS.stop:
        _refuse(f"a password has at most {PASSWORD_LENGTHS.stop - 1} characters.")
    return password


@cli.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Argument(help="The admin's email address")],
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first line of standard input")
    ] = False,
) -> None:
    """Create an admin account (the operator's way in on a new deployment).

    The password is read from standard input with --password-stdin, else from MEDLEDGER_ADMIN_PASSWORD, else
    asked for twice at a terminal; never given on the command line, where other users and shell history see it.
    """
    try:
        address = TypeAdapter(EmailStr).validate_python(email)
    except ValidationError:
        _refuse(f"{email!r} is not a valid email address.")
    password = _admin_password(password_stdin)
    m = bootstrap()
    try:
        outcome = accounts.create_account(m.services, accounts.CreateAccount(address, password, Role.ADMIN), OPERATOR)
        typer.echo(f"admin account {outcome.id} created")
    except DomainError as error:
        typer.echo(f"error: {error.message}", err=True)
        raise typer.Exit(code=1) from None
    finally:
        m.close()


class Spoil(StrEnum):
    NONE = "none"
    WRONG_SECRET = "wrong-secret"
    TAMPERED_BODY = "tampered-body"
    STALE = "stale"
    FUTURE = "future"
    UNSIGNED = "unsigned"


@cli.command("gateway-simulate")
def gateway_simulate(
    invoice_id: Annotated[str, typer.Argument(help="The invoice the payment is for")],
    amount: Annotated[str, typer.Option(help="The amount paid, a decimal string, e.g. 120.00")],
    currency: Annotated[str, typer.Option(help="ISO 4217 code")] = "EUR",
    reference: Annotated[str | None, typer.Option(help="The gateway's payment id (made up when left out)")] = None,
    event_id: Annotated[str | None, typer.Option(help="The gateway's event id (made up when left out)")] = None,
    failed: Annotated[bool, typer.Option("--failed", help="Send payment.failed rather than payment.succeeded")] = False,
    url: Annotated[str, typer.Option(help="The webhook's URL")] = "http://127.0.0.1:8000/billing/gateway/webhook",
    secret: Annotated[
        str | None, typer.Option(envvar="MEDLEDGER_GATEWAY_WEBHOOK_SECRET", help="The shared secret (better from the environment)")
    ] = None,
    spoil: Annotated[Spoil, typer.Option(help="Send it wrongly, to see it refused")] = Spoil.NONE,
    times: Annotated[int, typer.Option(min=1, max=100, help="Send the same delivery this many times (a replay)")] = 1,
) -> None:
    """Act as the payment gateway: sign a payment event for an invoice and POST it to a server's webhook, printing
    each answer (for demos and tests; --spoil and --times show the refusals)."""
    if secret is None and spoil is not Spoil.UNSIGNED:
        _refuse("no secret: set MEDLEDGER_GATEWAY_WEBHOOK_SECRET or pass --secret.")
    kind = EventType.PAYMENT_FAILED if failed else EventType.PAYMENT_SUCCEEDED
    raw = simulated_event(
        kind, invoice_id, reference or f"pay_{secrets.token_hex(8)}", amount, currency, event_id or f"evt_{secrets.token_hex(8)}"
    )
    moment = unix_now() + {Spoil.STALE: -3600, Spoil.FUTURE: 3600}.get(spoil, 0)
    header = None if spoil is Spoil.UNSIGNED else signature_header(
        secrets.token_hex(16) if spoil is Spoil.WRONG_SECRET else secret or "", moment, raw
    )
    sent = raw.replace(b'"amount": "', b'"amount": "1') if spoil is Spoil.TAMPERED_BODY else raw
    typer.echo(raw.decode())
    for _ in range(times):
        try:
            status, answer = send(url, sent, header)
        except OSError as error:
            typer.echo(f"error: {url} cannot be reached: {error}", err=True)
            raise typer.Exit(code=1) from None
        typer.echo(f"HTTP {status} {answer}")


def main() -> None:
    cli()
