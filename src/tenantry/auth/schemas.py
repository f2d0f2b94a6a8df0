"""Bodies of the token endpoint: OAuth 2 style, as a form or as JSON."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from tenantry.kit.email import Email


class RefreshGrant(BaseModel):
    model_config = ConfigDict(extra="ignore")

    grant_type: Literal["refresh_token"]
    refresh_token: str = Field(min_length=1, max_length=200)


class LogoutRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: str = Field(min_length=1, max_length=200)


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: Email


class LoginVerify(LoginRequest):
    code: str = Field(pattern=r"^\d{6}$")
    tenant_id: str | None = Field(default=None, max_length=40)


class PasswordGrant(BaseModel):
    """OAuth 2's resource-owner password grant; `username` is the email."""

    model_config = ConfigDict(extra="ignore")

    grant_type: Literal["password"]
    username: Email
    password: str = Field(min_length=1, max_length=1000)
    tenant_id: str | None = Field(default=None, max_length=40)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    password: str = Field(min_length=12, max_length=1000)


class AuthorizationCodeGrant(BaseModel):
    """The hosted signup's one-time code for the new owner's tokens (tenantry.signup.handoff)."""

    model_config = ConfigDict(extra="ignore")

    grant_type: Literal["authorization_code"]
    code: str = Field(min_length=1, max_length=200)


class ClientCredentialsGrant(BaseModel):
    """An integration key for an access token: `client_id` is the key's id (optional for
    callers from before it was asked), `client_secret` its secret; `scope` narrows the grant."""

    model_config = ConfigDict(extra="ignore")

    grant_type: Literal["client_credentials"]
    client_secret: str = Field(min_length=1, max_length=200)
    client_id: str | None = Field(default=None, max_length=40)
    scope: str | None = Field(default=None, max_length=500)


class SessionTokens(BaseModel):
    """A user's tokens for one tenant: sign-in, the owner's first session, an accepted invite."""

    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme, not a secret)
    expires_in: int
    tenant_id: str
    user_id: str


class TokenGrantResponse(BaseModel):
    """What `POST /v1/auth/token` answers: a user's tokens, or an integration's access token."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme, not a secret)
    expires_in: int
    refresh_token: str | None = None
    scope: str | None = None
    tenant_id: str | None = None
    user_id: str | None = None


class Claims(BaseModel):
    """The verified claims of an access token."""

    model_config = ConfigDict(extra="allow")

    iss: str
    sub: str
    aud: str
    exp: int
    iat: int
    jti: str
    roles: list[str]
    scope: str
    client_id: str | None = None  # RFC 9068; absent from tokens minted before it
    tenant_id: str | None = None


class Jwks(BaseModel):
    keys: list[dict[str, str]]


class Accepted(BaseModel):
    detail: str


class AuthorizationServerMetadata(BaseModel):
    """RFC 8414: where verifiers and clients find the issuer's endpoints and keys."""

    issuer: str
    token_endpoint: str
    jwks_uri: str
    grant_types_supported: list[str]
    token_endpoint_auth_methods_supported: list[str]
    scopes_supported: list[str]
    response_types_supported: list[str]


class OpenIdConfiguration(AuthorizationServerMetadata):
    """The OpenID Connect discovery fields that apply to a token-only issuer."""

    subject_types_supported: list[str]
    id_token_signing_alg_values_supported: list[str]


class TokenRequest(BaseModel):
    """The token endpoint's parameters, as a form (or a JSON object): which ones a grant
    takes is said with each. Documents the body the endpoint reads itself."""

    grant_type: Literal["client_credentials", "refresh_token", "password", "authorization_code"]
    client_id: str | None = Field(default=None, description="client_credentials: the key's id")
    client_secret: str | None = Field(
        default=None, description="client_credentials: the key (or use HTTP Basic)"
    )
    scope: str | None = Field(default=None, description="client_credentials: narrower scopes")
    refresh_token: str | None = Field(default=None, description="refresh_token")
    username: str | None = Field(default=None, description="password: the email")
    password: str | None = Field(default=None, description="password")
    tenant_id: str | None = Field(default=None, description="password: which tenant")
    code: str | None = Field(
        default=None, description="authorization_code: the hosted signup's hand-off code"
    )
