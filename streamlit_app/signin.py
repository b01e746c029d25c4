"""The app's gate, run by app.py before any page: sign-in, the user's role, or the refusal.

The rules are streamlit_app/access.py's; this module reads their inputs from Streamlit (secrets,
the server address option, ``st.user``) and draws what a user sees when they get no page.
``gate()`` either returns the role to build the navigation for, or stops the script run.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping

import streamlit as st
from streamlit import config as st_config  # the module: its get_option is looked up at call time
from streamlit.errors import StreamlitSecretNotFoundError

from streamlit_app.access import Decision, Mode, Role, decide, role_for, session_expired

_LOG = logging.getLogger(__name__)
ROLE_KEY = "_prrt_role"  # session state: the role the gate gave this run (current_role)
LOCAL_BANNER = (
    ":orange-background[:material/lock_open: **Local mode**: no sign-in, only this machine can connect"
    " (127.0.0.1); you have data manager access.]"
)


def secrets_tables(secrets: Mapping) -> tuple[Mapping | None, Mapping | None]:
    """The ``[auth]`` and ``[prrt_roles]`` tables (None when absent). No secrets file at all is
    no configuration; a secrets file that cannot be read raises (never read as "no sign-in")."""
    try:
        return secrets.get("auth"), secrets.get("prrt_roles")
    except StreamlitSecretNotFoundError as error:
        if getattr(error, "error_id", None) == "no-secrets-found":
            return None, None
        raise


def decision() -> Decision:
    """The mode for this server: its secrets and ``server.address`` (what the app listens on)."""
    try:
        auth, roles = secrets_tables(st.secrets)
    except StreamlitSecretNotFoundError as error:
        _LOG.error("PRRT app refused: a secrets file cannot be read: %s", error)
        return Decision(Mode.REFUSED, "a secrets file cannot be read (the server log says which and why)")
    return decide(auth, roles, st_config.get_option("server.address"))


def current_role() -> Role | None:
    """The role the gate gave the user in this script run, for pages that differ by role."""
    role = st.session_state.get(ROLE_KEY)
    return role if isinstance(role, Role) else None


def gate() -> Role:
    """The signed-in (or local) user's role; anything else is drawn here and the run stops."""
    st.session_state[ROLE_KEY] = None  # set anew on every run: never a previous run's role
    chosen = decision()
    if chosen.mode is Mode.REFUSED:
        _LOG.error("PRRT app refused: %s", chosen.reason)
        st.title("PRRT outcomes")
        st.error(f"The app does not run: {chosen.reason}.", icon=":material/block:")
        st.stop()
    if chosen.mode is Mode.LOCAL:
        st.markdown(LOCAL_BANNER)
        st.session_state[ROLE_KEY] = Role.DATA_MANAGER
        return Role.DATA_MANAGER

    user = st.user
    claims = user.to_dict()
    if not user.is_logged_in:
        _sign_in_page()
    if session_expired(claims, chosen.roles, time.time()):
        _sign_in_page(expired=True)
    role = role_for(claims, chosen.roles)
    _signed_in_sidebar(claims, role)
    if role is None:
        st.title("PRRT outcomes")
        st.warning(
            f"You are signed in as {_who(claims)}, but your account has no role in this app, so it "
            "shows you no data. Ask the data manager to add you to the analysts' or the data "
            "managers' group, then sign out and in again.",
            icon=":material/person_off:",
        )
        st.stop()
    st.session_state[ROLE_KEY] = role
    return role


def _sign_in_page(expired: bool = False) -> None:
    st.title("PRRT outcomes")
    if expired:
        st.info("Your sign-in has expired: sign in again.", icon=":material/schedule:")
    st.write("Outcomes of peptide receptor radionuclide therapy. Sign in with your hospital account.")
    if st.button("Sign in", type="primary", icon=":material/login:"):
        st.login()
    st.stop()


def _who(claims: Mapping) -> str:
    """The user's name from the token, as literal text in Markdown (no links, colours or icons)."""
    for key in ("name", "preferred_username", "email", "upn", "sub"):
        if isinstance(claims.get(key), str) and claims[key].strip():
            return re.sub(r"([\\`*_{}\[\]()#+\-.!|~<>:$&])", r"\\\1", claims[key].strip()[:200])
    return "an unnamed user"


def _signed_in_sidebar(claims: Mapping, role: Role | None) -> None:
    with st.sidebar:
        st.caption(f"Signed in as **{_who(claims)}**" + (f" ({role.label})" if role else " (no role)"))
        if st.button("Sign out", icon=":material/logout:"):
            st.logout()
