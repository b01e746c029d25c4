"""streamlit_app/access.py: roles from identity-token claims, the address check, the app's mode,
and the launcher (streamlit_app/serve.py) refusing before Streamlit starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from streamlit_app.access import (
    Mode,
    Role,
    RoleConfig,
    auth_problems,
    claim_values,
    decide,
    is_loopback,
    role_for,
    session_expired,
)
from tests.conftest import REPO

ROLES = RoleConfig.from_mapping({"claim": "groups", "analyst": ["prrt-analysts", "oncology-research"],
                                 "data_manager": "prrt-data-managers"})
AUTH = {"redirect_uri": "https://prrt.example/oauth2callback", "cookie_secret": "s" * 48, "client_id": "prrt",
        "client_secret": "c", "server_metadata_url": "https://idp.example/.well-known/openid-configuration"}


# --- roles ------------------------------------------------------------------------------


@pytest.mark.parametrize(("claims", "role"), [
    ({"groups": ["prrt-analysts"]}, Role.ANALYST),
    ({"groups": ["other", "oncology-research"]}, Role.ANALYST),
    ({"groups": ["prrt-data-managers"]}, Role.DATA_MANAGER),
    ({"groups": "prrt-analysts"}, Role.ANALYST),  # ADFS: one group is a string, not a list
    ({"groups": "prrt-data-managers"}, Role.DATA_MANAGER),
    ({"groups": ["prrt-analysts", "prrt-data-managers"]}, Role.DATA_MANAGER),  # both: the wider role
    ({"groups": ["prrt-data-managers", "prrt-analysts"]}, Role.DATA_MANAGER),
    ({"groups": ["nursing", "radiology"]}, None),  # unknown values
    ({"groups": []}, None),
    ({"groups": ""}, None),
    ({}, None),  # missing claim
    ({"groups": None}, None),
    ({"roles": ["prrt-data-managers"]}, None),  # the right value in another claim
    ({"groups": ["PRRT-Analysts", " prrt-analysts"]}, None),  # exact comparison
    ({"groups": "prrt-analysts prrt-data-managers"}, None),  # a string is one value, not a list
    ({"groups": [1, {"name": "prrt-analysts"}, ["prrt-analysts"]]}, None),  # non-strings are ignored
    ({"groups": [1, "prrt-analysts"]}, Role.ANALYST),
    ({"groups": {"prrt-analysts": True}}, None),
])
def test_role_from_the_claim(claims, role):
    assert role_for(claims, ROLES) is role


def test_the_claim_name_is_configuration():
    entra_app_roles = RoleConfig.from_mapping({"claim": "roles", "analyst": "PRRT.Analyst",
                                               "data_manager": ["PRRT.DataManager"]})
    assert role_for({"roles": ["PRRT.DataManager"], "groups": ["x"]}, entra_app_roles) is Role.DATA_MANAGER
    assert role_for({"roles": ["PRRT.Analyst"]}, entra_app_roles) is Role.ANALYST
    assert role_for({"groups": ["PRRT.Analyst"]}, entra_app_roles) is None
    assert claim_values({"roles": ("a", "b", 3)}, "roles") == {"a", "b"}


def test_defaults_and_one_role_only():
    only_managers = RoleConfig.from_mapping({"data_manager": ["dm"]})
    assert only_managers.claim == "groups" and only_managers.max_session_hours == 12
    assert role_for({"groups": ["dm"]}, only_managers) is Role.DATA_MANAGER
    assert role_for({"groups": ["analysts"]}, only_managers) is None


@pytest.mark.parametrize(("table", "message"), [
    (None, "maps no claim value"),
    ({}, "maps no claim value"),
    ({"claim": "groups"}, "maps no claim value"),
    ({"analyst": []}, "maps no claim value"),
    ({"claim": "", "analyst": ["a"]}, "claim must be"),
    ({"claim": ["groups"], "analyst": ["a"]}, "claim must be"),
    ({"analyst": [""]}, "analyst must be"),
    ({"analyst": [1]}, "analyst must be"),
    ({"data_manager": {"a": 1}}, "data_manager must be"),
    ({"analyst": ["a", "b"], "data_manager": ["b"]}, "share values: b"),
    ({"analysts": ["a"]}, "unknown keys: analysts"),
    ({"analyst": ["a"], "max_session_hours": 0}, "positive"),
    ({"analyst": ["a"], "max_session_hours": "12"}, "positive"),
])
def test_a_bad_role_table_is_refused_with_its_reason(table, message):
    with pytest.raises(ValueError, match=message):
        RoleConfig.from_mapping(table)


def test_a_sign_in_older_than_the_limit_has_expired():
    now = 1_800_000_000
    assert not session_expired({"iat": now - 3600}, ROLES, now)
    assert not session_expired({"iat": now - 12 * 3600 + 1}, ROLES, now)
    assert session_expired({"iat": now - 12 * 3600 - 1}, ROLES, now)
    assert not session_expired({"iat": now + 60}, ROLES, now)  # clock skew
    assert session_expired({"iat": now + 3600}, ROLES, now)  # from the future
    assert session_expired({}, ROLES, now)  # no iat: fail closed
    assert session_expired({"iat": "1800000000"}, ROLES, now)
    assert session_expired({"iat": True}, ROLES, now)
    short = RoleConfig.from_mapping({"analyst": ["a"], "max_session_hours": 0.5})
    assert session_expired({"iat": now - 1801}, short, now)


# --- the address check ----------------------------------------------------------------------


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.0.2", "::1", "[::1]", "localhost", "LOCALHOST", " 127.0.0.1 "])
def test_loopback_addresses(address):
    assert is_loopback(address)


@pytest.mark.parametrize("address", [None, "", "0.0.0.0", "::", "[::]", "192.168.1.20", "10.0.0.5", "fe80::1",
                                     "prrt.hospital.example", "localhost.example", "127.0.0.1.nip.io"])
def test_addresses_other_machines_can_reach(address):
    assert not is_loopback(address)


# --- the mode -------------------------------------------------------------------------------


def test_no_sign_in_runs_locally_on_loopback_only():
    assert decide(None, None, "127.0.0.1").mode is Mode.LOCAL
    assert decide({}, None, "::1").mode is Mode.LOCAL
    for address in (None, "", "0.0.0.0", "192.168.1.20"):
        refused = decide(None, None, address)
        assert refused.mode is Mode.REFUSED and "no sign-in is configured" in refused.reason
    assert "unset (all interfaces)" in decide(None, None, "").reason
    # a role table alone is no sign-in
    assert decide(None, {"analyst": ["a"]}, "0.0.0.0").mode is Mode.REFUSED


def test_sign_in_on_any_address_with_a_complete_configuration():
    for address in ("0.0.0.0", "", "127.0.0.1"):
        chosen = decide(AUTH, {"analyst": ["a"]}, address)
        assert chosen.mode is Mode.SIGN_IN and chosen.roles.analyst == {"a"}


def test_an_incomplete_sign_in_is_refused_even_on_loopback():
    assert auth_problems(AUTH) == []
    partial = {k: v for k, v in AUTH.items() if k not in ("cookie_secret", "client_secret")}
    assert auth_problems(partial) == ["[auth] cookie_secret is missing", "[auth] client_secret is missing"]
    chosen = decide(partial, {"analyst": ["a"]}, "127.0.0.1")
    assert chosen.mode is Mode.REFUSED and "cookie_secret is missing" in chosen.reason
    chosen = decide(AUTH, None, "127.0.0.1")  # sign-in without roles: nobody could see anything
    assert chosen.mode is Mode.REFUSED and "[prrt_roles]" in chosen.reason


# --- the launcher ---------------------------------------------------------------------------


def _serve(*args: str, secrets=None) -> subprocess.CompletedProcess:
    env = {**os.environ}
    env.pop("STREAMLIT_SERVER_ADDRESS", None)
    files = ["--secrets.files", str(secrets)] if secrets else ["--secrets.files", str(REPO / "no-such-secrets.toml")]
    return subprocess.run([sys.executable, "-m", "streamlit_app.serve", *files, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("args", [(), ("--server.address", "0.0.0.0"), ("--server.address=192.168.1.20",)])
def test_the_launcher_refuses_other_addresses_without_sign_in(args):
    result = _serve(*args)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("prrt app: not starting: no sign-in is configured"), lines
    assert result.stdout == ""


def test_the_launcher_refuses_an_incomplete_sign_in(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[auth]\nredirect_uri = "http://127.0.0.1:8501/oauth2callback"\n')
    result = _serve("--server.address", "127.0.0.1", secrets=secrets)
    assert result.returncode == 2 and "cookie_secret is missing" in result.stderr
    secrets.write_text("[auth\n")
    result = _serve("--server.address", "127.0.0.1", secrets=secrets)
    assert result.returncode == 2 and "a secrets file cannot be read" in result.stderr


def test_the_launcher_refuses_bad_options():
    result = _serve("--server.address", "127.0.0.1", "--no-such-option")
    assert result.returncode == 2 and "bad streamlit run options" in result.stderr
