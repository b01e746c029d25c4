"""The gate in app.py (streamlit_app/signin.py), run with AppTest from the app's entry point:
local mode, refusal, and sign-in with each role. AppTest sets ``st.user`` as a signed-in session
would see it (the identity token's claims); tests/e2e/test_signin.py signs in for real."""

from __future__ import annotations

import time

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.util import patch_config_options

from streamlit_app.access import Role
from streamlit_app.signin import LOCAL_BANNER, ROLE_KEY

from .conftest import APP, OUTCOME_PAGES, TIMEOUT, metrics

AUTH = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "test-cookie-secret-" * 3,
        "client_id": "prrt", "client_secret": "test", "server_metadata_url":
        "http://127.0.0.1:9/.well-known/openid-configuration"}
ROLES = {"claim": "groups", "analyst": ["prrt-analysts"], "data_manager": ["prrt-data-managers"]}
ALL_PAGES = {f"views/{p}.py" for p in (*OUTCOME_PAGES, "data_quality", "sql")}


def _app(user: dict | None = None, *, auth=AUTH, roles=ROLES) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    if auth is not None:
        at.secrets["auth"] = auth
        at.secrets["prrt_roles"] = roles
    if user is not None:
        at.user = user
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _signed_in(*groups: str, **claims) -> dict:
    return {"is_logged_in": True, "sub": "u1", "name": "Dr Test", "iat": int(time.time()) - 60,
            "groups": list(groups), **claims}


def _pages(at: AppTest) -> set[str]:
    """The pages the navigation registered: AppTest.switch_page refuses any other (without running)."""
    pages = set()
    for page in ALL_PAGES:
        try:
            at.switch_page(page)
        except ValueError as error:
            assert "Could not find a navigation page" in str(error)
        else:
            pages.add(page)
    return pages


def _nothing_but_the_gate(at: AppTest) -> None:
    """Only the gate's own elements, also when a page is asked for by its URL."""
    for _ in range(2):
        assert [t.value for t in at.title] == ["PRRT outcomes"]
        assert not at.metric and not at.dataframe and not at.sidebar.markdown
        at.switch_page("views/data_quality.py").run()  # no navigation: Streamlit runs app.py again
        assert not at.exception


# --- local mode -----------------------------------------------------------------------------


def test_local_mode_shows_the_banner_and_every_page(warehouse):
    at = _app(auth=None)
    assert at.markdown[0].value == LOCAL_BANNER and "only this machine can connect" in LOCAL_BANNER
    assert [t.value for t in at.title] == ["Cohort"] and metrics(at)["Patients"] == "16"
    assert _pages(at) == ALL_PAGES
    at.switch_page("views/data_quality.py").run()
    assert not at.exception and [t.value for t in at.title] == ["Data quality"]
    assert at.markdown[0].value == LOCAL_BANNER
    assert not any(b.label == "Sign out" for b in at.sidebar.button)


@pytest.mark.parametrize("address", ["", "0.0.0.0", "192.168.1.20", None])
def test_without_sign_in_other_addresses_are_refused(warehouse, address):
    with patch_config_options({"server.address": address}):
        at = _app(auth=None)
        assert len(at.error) == 1 and "The app does not run: no sign-in is configured" in at.error[0].value
        _nothing_but_the_gate(at)


def test_an_incomplete_sign_in_is_refused(warehouse):
    at = _app(_signed_in("prrt-data-managers"), auth={k: v for k, v in AUTH.items() if k != "client_secret"})
    assert "client_secret is missing" in at.error[0].value
    _nothing_but_the_gate(at)


# --- sign-in --------------------------------------------------------------------------------


def test_not_signed_in_sees_only_the_sign_in_button(warehouse):
    at = _app({"is_logged_in": False})
    assert [b.label for b in at.button] == ["Sign in"]
    _nothing_but_the_gate(at)


def test_an_analyst_gets_the_outcome_pages_and_sql_but_not_data_quality(warehouse):
    at = _app(_signed_in("prrt-analysts", "nursing"))
    assert [t.value for t in at.title] == ["Cohort"] and metrics(at)["Patients"] == "16"
    assert LOCAL_BANNER not in [m.value for m in at.markdown]
    assert _pages(at) == ALL_PAGES - {"views/data_quality.py"}
    assert any("Signed in as **Dr Test** (analyst)" in c.value for c in at.sidebar.caption)
    at.switch_page("views/sql.py").run()
    assert not at.exception and [t.value for t in at.title] == ["SQL"]


def test_a_data_manager_gets_data_quality_too(warehouse):
    at = _app(_signed_in("prrt-analysts", "prrt-data-managers"))
    assert _pages(at) == ALL_PAGES
    at.switch_page("views/data_quality.py").run()
    assert not at.exception and [t.value for t in at.title] == ["Data quality"]
    assert any("(data manager)" in c.value for c in at.sidebar.caption)


def test_a_string_claim_gives_the_role_too(warehouse):
    at = _app(_signed_in(groups="prrt-data-managers"))
    assert _pages(at) == ALL_PAGES


def test_no_role_no_data(warehouse):
    at = _app(_signed_in("nursing"))
    assert len(at.warning) == 1 and "has no role in this app" in at.warning[0].value
    assert "Dr Test" in at.warning[0].value
    assert [b.label for b in at.sidebar.button] == ["Sign out"]
    for _ in range(2):
        assert [t.value for t in at.title] == ["PRRT outcomes"] and not at.metric and not at.dataframe
        at.switch_page("views/cohort.py").run()


def test_an_old_sign_in_must_be_renewed(warehouse):
    at = _app(_signed_in("prrt-data-managers", iat=int(time.time()) - 13 * 3600))
    assert "Your sign-in has expired" in at.info[0].value
    assert [b.label for b in at.button] == ["Sign in"]
    _nothing_but_the_gate(at)


def test_the_role_is_kept_for_the_run_and_never_left_over(warehouse):
    at = _app(_signed_in("prrt-analysts"))
    assert at.session_state[ROLE_KEY] is Role.ANALYST
    at.user = _signed_in("nursing")  # e.g. removed from the group and signed in again
    at.run()
    assert at.session_state[ROLE_KEY] is None and "has no role" in at.warning[0].value
    assert _app(auth=None).session_state[ROLE_KEY] is Role.DATA_MANAGER


def test_a_name_from_the_token_is_shown_as_text(warehouse):
    at = _app(_signed_in("nursing", name="Eve [click](https://evil.example) :red[urgent] **x**"))
    shown = at.warning[0].value
    assert "\\[click\\]\\(https\\:" in shown and ":red[" not in shown and "**x**" not in shown
    caption = at.sidebar.caption[0].value
    assert caption.startswith("Signed in as **Eve \\[click\\]") and caption.endswith("(no role)")


def test_development_key_banner_and_damaged_warehouse(app_warehouse, tmp_path, monkeypatch):
    """The demo warehouse (development key) says so on every page; a truncated file gets a
    message saying to run a refresh instead of a bare IOException."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(APP), default_timeout=120).run()
    assert any("Development key" in m.value for m in at.markdown)
    damaged = tmp_path / "damaged.duckdb"
    damaged.write_bytes(app_warehouse.read_bytes()[:20_000])
    monkeypatch.setenv("PRRT_WAREHOUSE", str(damaged))
    st.cache_data.clear()
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    assert [e.value for e in at.error] == [
        "The published warehouse cannot be read (damaged or incomplete). Run `prrt refresh` to publish it "
        "again; its log is in `.builds/` next to the warehouse."]
    assert not at.exception
