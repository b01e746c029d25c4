"""Who may see what: the app's mode (sign-in, local, refused) and a signed-in user's role.

Pure functions of plain data (the ``[auth]`` and ``[prrt_roles]`` tables of secrets.toml as
mappings, the server address, the identity token's claims): no Streamlit here, so the rules
are tested directly (tests/app/test_access.py) and shared by the app (streamlit_app/signin.py)
and the launcher (streamlit_app/serve.py).

- **Sign-in** when ``[auth]`` configures an OpenID Connect provider (Streamlit's ``st.login``):
  the role comes from one claim of the identity token, mapped by ``[prrt_roles]``.
- **Local** when nothing is configured and the server listens on a loopback address only:
  no sign-in, the one local user is a data manager (the demo, a laptop).
- **Refused** otherwise: no sign-in on an address other machines can reach, or a sign-in
  configuration that is incomplete. Nothing is shown but the reason.
"""

from __future__ import annotations

import enum
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

# What Streamlit's st.login needs for its default provider (streamlit/auth_util.py).
AUTH_KEYS = ("redirect_uri", "cookie_secret")
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")
DEFAULT_CLAIM = "groups"
DEFAULT_MAX_SESSION_HOURS = 12.0


class Role(enum.Enum):
    ANALYST = "analyst"  # the outcome pages and the SQL page
    DATA_MANAGER = "data_manager"  # all of those and Data quality

    @property
    def label(self) -> str:
        return {"analyst": "analyst", "data_manager": "data manager"}[self.value]


@dataclass(frozen=True)
class RoleConfig:
    """``[prrt_roles]``: which claim carries the user's groups or roles, and which of its values
    make an analyst or a data manager. Values are compared exactly (case and all)."""

    claim: str = DEFAULT_CLAIM
    analyst: frozenset[str] = frozenset()
    data_manager: frozenset[str] = frozenset()
    max_session_hours: float = DEFAULT_MAX_SESSION_HOURS

    @classmethod
    def from_mapping(cls, table: Mapping | None) -> RoleConfig:
        """The configuration from a ``[prrt_roles]`` table; ValueError naming what is wrong."""
        table = dict(table or {})
        unknown = set(table) - {"claim", "analyst", "data_manager", "max_session_hours"}
        if unknown:
            raise ValueError(f"[prrt_roles] has unknown keys: {', '.join(sorted(unknown))}")
        claim = table.get("claim", DEFAULT_CLAIM)
        if not isinstance(claim, str) or not claim.strip():
            raise ValueError("[prrt_roles] claim must be a claim name, e.g. \"groups\"")
        hours = table.get("max_session_hours", DEFAULT_MAX_SESSION_HOURS)
        if isinstance(hours, bool) or not isinstance(hours, int | float) or hours <= 0:
            raise ValueError("[prrt_roles] max_session_hours must be a positive number")
        config = cls(claim.strip(), _values(table, "analyst"), _values(table, "data_manager"), float(hours))
        if not (config.analyst or config.data_manager):
            raise ValueError("[prrt_roles] maps no claim value to a role: set analyst and/or data_manager")
        if config.analyst & config.data_manager:
            raise ValueError("[prrt_roles] analyst and data_manager share values: "
                             + ", ".join(sorted(config.analyst & config.data_manager)))
        return config


def _values(table: Mapping, key: str) -> frozenset[str]:
    value = table.get(key, ())
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v for v in value):
        raise ValueError(f"[prrt_roles] {key} must be a claim value or a list of them")
    return frozenset(value)


def claim_values(claims: Mapping, claim: str) -> frozenset[str]:
    """The claim's values: a list of strings (Entra, Keycloak) or one string (ADFS with a single
    group). Anything else (missing, numbers, nested objects) gives no values."""
    value = claims.get(claim)
    if isinstance(value, str):
        return frozenset((value,))
    if isinstance(value, list | tuple):
        return frozenset(v for v in value if isinstance(v, str))
    return frozenset()


def role_for(claims: Mapping, config: RoleConfig) -> Role | None:
    """The user's role from their identity token's claims: data manager wins over analyst;
    None (no role, no data) when no value of the claim is mapped."""
    values = claim_values(claims, config.claim)
    if values & config.data_manager:
        return Role.DATA_MANAGER
    if values & config.analyst:
        return Role.ANALYST
    return None


def session_expired(claims: Mapping, config: RoleConfig, now: float) -> bool:
    """Whether the sign-in is older than ``max_session_hours``: Streamlit keeps the identity in a
    cookie for 30 days, so a user removed from a group would keep their role that long. The
    identity token's ``iat`` (issued at, required by OpenID Connect) dates the sign-in; a token
    without one, or from the future, counts as expired (fail closed)."""
    issued = claims.get("iat")
    if isinstance(issued, bool) or not isinstance(issued, int | float):
        return True
    age = now - issued
    return age < -300 or age > config.max_session_hours * 3600  # 5 min of clock skew


def is_loopback(address: str | None) -> bool:
    """Whether only this machine can connect to a server bound to ``address``. Streamlit's default,
    an empty address, listens on every interface: not loopback, as 0.0.0.0 and ::."""
    address = (address or "").strip()
    if address.startswith("[") and address.endswith("]"):
        address = address[1:-1]
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:  # '' or a host name: whatever it resolves to, not known to be loopback
        return False


def auth_problems(auth: Mapping | None) -> list[str]:
    """What the ``[auth]`` table lacks for Streamlit's default provider (empty: complete)."""
    auth = dict(auth or {})
    missing = [key for key in (*AUTH_KEYS, *PROVIDER_KEYS) if not auth.get(key)]
    return [f"[auth] {key} is missing" for key in missing]


class Mode(enum.Enum):
    SIGN_IN = "sign_in"
    LOCAL = "local"
    REFUSED = "refused"


@dataclass(frozen=True)
class Decision:
    mode: Mode
    reason: str = ""  # REFUSED: one line saying why and what to do
    roles: RoleConfig | None = None  # SIGN_IN: the role mapping


def decide(auth: Mapping | None, roles: Mapping | None, server_address: str | None) -> Decision:
    """The app's mode from the ``[auth]`` and ``[prrt_roles]`` tables (None: absent) and the
    address the server listens on."""
    if auth:
        if problems := auth_problems(auth):
            return Decision(Mode.REFUSED, "sign-in is misconfigured: " + "; ".join(problems))
        try:
            return Decision(Mode.SIGN_IN, roles=RoleConfig.from_mapping(roles))
        except ValueError as error:
            return Decision(Mode.REFUSED, f"sign-in is misconfigured: {error}")
    if is_loopback(server_address):
        return Decision(Mode.LOCAL)
    shown = repr(server_address) if server_address else "unset (all interfaces)"
    return Decision(
        Mode.REFUSED,
        f"no sign-in is configured and server.address is {shown}: configure [auth] in "
        ".streamlit/secrets.toml (README, Sign-in) or serve on --server.address 127.0.0.1",
    )
