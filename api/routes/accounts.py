"""Accounts, for admins: create staff and patient accounts, disable, enable, unlock logins and change staff roles."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy import Connection

from api.deps import CurrentActor, IdempotencyKey, MedledgerDep, Paging, read_models, run_command
from api.json_body import StrictJSONRoute
from api.responses import Refusal, command, errors, query
from api.schemas import BIRTH_DATE_RULE, AccountCreate, AccountPublic, AccountReason, CommandResult, Page, RoleChange
from commands import accounts
from commands.base import RecordNotFoundError, require
from domain.shared import InvalidInputError, Role
from projections import queries

router = APIRouter(prefix="/accounts", tags=["accounts"], route_class=StrictJSONRoute, responses=errors(401, 403, 503))
ReadAccounts = Annotated[Connection, Depends(read_models({"accounts"}))]
PROFILE_RULES = (
    Refusal("body", "a profile that does not match the role: doctor_profile for doctors, patient_profile for patients, none for staff"),
    Refusal("doctor_profile", "a doctor account without doctor_profile"),
    Refusal("patient_profile", "a patient account without patient_profile"),
    BIRTH_DATE_RULE,
)


def _profile_of(body: AccountCreate) -> dict:
    wanted = {Role.DOCTOR: body.doctor_profile, Role.PATIENT: body.patient_profile}.get(body.role)
    other = body.patient_profile if body.role != Role.PATIENT else body.doctor_profile
    if other is not None:
        raise InvalidInputError("Give only the profile that matches the role.", field="body")
    if body.role in (Role.DOCTOR, Role.PATIENT) and wanted is None:
        raise InvalidInputError(f"A {body.role.value} account needs {body.role.value}_profile.", field=f"body.{body.role.value}_profile")
    return wanted.changes() if wanted is not None else {}


@router.post("", status_code=201, response_model=CommandResult, responses=command(refusals=PROFILE_RULES))
def create_account(body: AccountCreate, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Create an account of any role (admins only); doctors and patients need their profile."""
    require(actor.is_(Role.ADMIN), "Only an admin creates accounts for others.")
    cmd = accounts.CreateAccount(email=body.email, password=body.password, role=body.role, profile=_profile_of(body))
    return run_command(m, request, actor.account_id, key, body, lambda: accounts.create_account(m.services, cmd, actor), 201)


@router.get("", response_model=Page[AccountPublic], responses=query())
def list_accounts(
    actor: CurrentActor,
    conn: ReadAccounts,
    paging: Paging,
    role: Role | None = None,
    disabled: Annotated[bool | None, Query()] = None,
) -> queries.Page:
    """List accounts, filtered by role and disabled flag (admins only)."""
    require(actor.is_(Role.ADMIN), "Only an admin lists accounts.")
    return queries.list_accounts(conn, role=role, disabled=disabled, page=paging.page, page_size=paging.page_size)


@router.get("/{account_id}", response_model=AccountPublic, responses=query(404))
def get_account(account_id: str, actor: CurrentActor, conn: ReadAccounts) -> dict:
    """One account (admins, or the account holder)."""
    require(actor.is_(Role.ADMIN) or actor.account_id == account_id, "Only an admin reads other accounts.")
    account = queries.get_account(conn, account_id)
    if account is None:
        raise RecordNotFoundError(f"No account {account_id}.")
    return account


@router.post("/{account_id}/disable", response_model=CommandResult, responses=command(404))
def disable(account_id: str, body: AccountReason, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Disable an account: its tokens stop working and it cannot log in."""
    cmd = accounts.DisableAccount(account_id, body.reason)
    return run_command(m, request, actor.account_id, key, body, lambda: accounts.disable_account(m.services, cmd, actor))


@router.post("/{account_id}/enable", response_model=CommandResult, responses=command(404))
def enable(account_id: str, body: AccountReason, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Enable a disabled account."""
    cmd = accounts.EnableAccount(account_id, body.reason)
    return run_command(m, request, actor.account_id, key, body, lambda: accounts.enable_account(m.services, cmd, actor))


@router.post("/{account_id}/unlock", response_model=CommandResult, responses=command(404))
def unlock(account_id: str, body: AccountReason, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Lift a login lockout and start its progression again (admins only); recorded with who and why."""
    cmd = accounts.UnlockAccount(account_id, body.reason)
    return run_command(m, request, actor.account_id, key, body, lambda: accounts.unlock_account(m.services, cmd, actor))


@router.post("/{account_id}/role", response_model=CommandResult, responses=command(404))
def change_role(account_id: str, body: RoleChange, actor: CurrentActor, m: MedledgerDep, request: Request, key: IdempotencyKey = None) -> Response:
    """Exchange a staff role (admin, auditor, analyst) for another."""
    cmd = accounts.ChangeRole(account_id, body.role, body.reason)
    return run_command(m, request, actor.account_id, key, body, lambda: accounts.change_role(m.services, cmd, actor))
