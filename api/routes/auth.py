"""Registration, login, token refresh, logout and the caller's own account."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from api.deps import CorrelationId, CurrentActor, CurrentClaims, IdempotencyKey, MedledgerDep, run_command
from api.json_body import StrictJSONRoute
from api.responses import command, errors
from api.schemas import BIRTH_DATE_RULE, CommandResult, LoginRequest, PatientRegister, RefreshRequest, TokenPairPublic
from commands import accounts
from commands.accounts import Grant
from domain.accounts import Account
from domain.shared import Role
from infrastructure.bootstrap import Medledger

router = APIRouter(prefix="/auth", tags=["auth"], route_class=StrictJSONRoute, responses=errors(503))


class Me(BaseModel):
    account_id: str
    email: str | None
    role: Role
    profile_id: str | None


def _tokens(m: Medledger, grant: Grant) -> TokenPairPublic:
    pair = m.tokens.issue(grant, m.services.clock())
    return TokenPairPublic(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        position=grant.position,
    )


@router.post("/register", status_code=201, response_model=CommandResult, responses=command(refusals=(BIRTH_DATE_RULE,)))
def register(body: PatientRegister, m: MedledgerDep, request: Request, correlation: CorrelationId, key: IdempotencyKey = None) -> Response:
    """Register as a patient: creates the account and the patient record."""
    cmd = accounts.RegisterPatient(email=body.email, password=body.password, profile=body.profile.changes())
    return run_command(
        m, request, f"register:{body.email.lower()}", key, body,
        lambda: accounts.register_patient(m.services, cmd, correlation), status_code=201,
    )


@router.post("/login", response_model=TokenPairPublic, responses=errors(401, 403, 429))
def login(body: LoginRequest, m: MedledgerDep, request: Request, correlation: CorrelationId) -> TokenPairPublic:
    """Exchange email and password for a short-lived access token and a refresh token; repeated wrong
    passwords for an email or from an address are answered 429 with Retry-After."""
    address = request.client.host if request.client else "unknown"
    return _tokens(m, accounts.log_in(m.services, accounts.LogIn(body.email, body.password, address), correlation))


@router.post("/refresh", response_model=TokenPairPublic, responses=errors(401, 403, 409, 429))
def refresh(body: RefreshRequest, m: MedledgerDep, correlation: CorrelationId) -> TokenPairPublic:
    """Rotate a refresh token; reusing an old one revokes the whole session."""
    claims = m.tokens.decode(body.refresh_token, "refresh")
    cmd = accounts.RefreshSession(session_id=claims["sid"], token_id=claims["jti"])
    return _tokens(m, accounts.refresh_session(m.services, cmd, correlation))


@router.post("/logout", status_code=204, responses=errors(401, 409, 429))
def logout(claims: CurrentClaims, actor: CurrentActor, m: MedledgerDep) -> Response:
    """Revoke the current session: its access and refresh tokens stop working."""
    accounts.log_out(m.services, claims.session_id, actor)
    return Response(status_code=204)


@router.get("/me", response_model=Me, responses=errors(401))
def me(actor: CurrentActor, m: MedledgerDep) -> Me:
    """The caller's account id, email, role and profile id."""
    account = m.store.find(Account, actor.account_id)
    return Me(account_id=actor.account_id, email=account.email if account else None, role=Role(actor.role), profile_id=actor.profile_id)
