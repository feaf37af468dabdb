"""Password hashing (argon2) and JWT access and refresh tokens (HS256)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Literal
from uuid import uuid4

import jwt
from argon2 import PasswordHasher as Argon2Hasher
from argon2.exceptions import InvalidHashError, VerificationError
from argon2.profiles import CHEAPEST, RFC_9106_LOW_MEMORY

from commands.accounts import AccessClaims, Grant
from domain.shared import AuthenticationError, Role

ALGORITHM = "HS256"
ISSUER = "medledger"
TokenType = Literal["access", "refresh"]


class Passwords:
    """Argon2id hashing; the 'fast' profile exists only so the test suite does not spend minutes hashing."""

    def __init__(self, profile: Literal["standard", "fast"] = "standard") -> None:
        self._hasher = Argon2Hasher.from_parameters(CHEAPEST if profile == "fast" else RFC_9106_LOW_MEMORY)

    def hash(self, password: str) -> str:
        return self._hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    def verify_unknown(self, password: str) -> None:
        self.verify(self._unknown_hash, password)

    @cached_property
    def _unknown_hash(self) -> str:
        return self._hasher.hash(uuid4().hex)


class InvalidTokenError(AuthenticationError):
    """Raised when a token is missing, malformed, expired, of the wrong type or signed by someone else."""

    code = "invalid_token"


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int


class Tokens:
    def __init__(self, secret: str, access_lifetime: timedelta) -> None:
        self._secret = secret
        self.access_lifetime = access_lifetime

    def issue(self, grant: Grant, now: datetime) -> TokenPair:
        common = {"iss": ISSUER, "sub": grant.account_id, "sid": grant.session_id, "iat": now}
        access = {
            **common,
            "typ": "access",
            "role": grant.role.value,
            "pid": grant.profile_id,
            "jti": uuid4().hex,
            "exp": now + self.access_lifetime,
        }
        refresh = {**common, "typ": "refresh", "jti": grant.refresh_token_id, "exp": grant.refresh_expires_at}
        return TokenPair(
            access_token=jwt.encode(access, self._secret, algorithm=ALGORITHM),
            refresh_token=jwt.encode(refresh, self._secret, algorithm=ALGORITHM),
            expires_in=int(self.access_lifetime.total_seconds()),
        )

    def decode(self, token: str, expected: TokenType) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[ALGORITHM],
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "sid", "jti", "typ"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidTokenError("The token has expired.") from None
        except jwt.PyJWTError:
            raise InvalidTokenError("The token is not valid.") from None
        if claims.get("typ") != expected:
            raise InvalidTokenError(f"An {expected} token is required here.")
        return claims

    def access_claims(self, token: str) -> AccessClaims:
        claims = self.decode(token, "access")
        try:
            role = Role(claims["role"])
        except (KeyError, ValueError):
            raise InvalidTokenError("The token is not valid.") from None
        return AccessClaims(claims["sub"], role, claims.get("pid"), claims["sid"])
