"""Sign-in for real: the app behind an OpenID Connect provider, in Chromium.

`oidc-provider-mock` (a real OpenID provider for tests: discovery, authorization code flow,
signed ID tokens) runs as a subprocess on a free localhost port with four predefined users; the
app runs as `streamlit run` with a temporary secrets.toml whose [auth] points at the provider's
discovery document and whose [prrt_roles] maps its `groups` claim. Each test signs in through the
provider's authorization form in a fresh browser context (no cookies) and reads what the app
shows. One provider and one app per module.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request

import duckdb
import pytest

from tests.conftest import REPO
from tests.e2e.test_browser import CHROMIUM, CHROMIUM_ARGS, IDLE, VIEWPORT, _free_port, _stop, _wait_idle

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium (scripts/test.sh installs it)"
)

USERS = {
    "analyst": {"name": "Ada Analyst", "email": "ada@hospital.example", "groups": ["staff", "prrt-analysts"]},
    "manager": {"name": "Dana Manager", "email": "dana@hospital.example", "groups": ["prrt-data-managers"]},
    "nobody": {"name": "Noel Norole", "email": "noel@hospital.example", "groups": ["radiology"]},
    "single": {"name": "Sam Single", "groups": "prrt-analysts"},  # ADFS style: one group, a string
}
OUTCOME_TITLES = ["Cohort", "Response", "Toxicity", "Survival", "Performance status"]


def _wait_http(url: str, process: subprocess.Popen, log, what: str) -> None:
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"{what} did not start:\n{log.read_text()}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def provider(tmp_path_factory):
    """oidc-provider-mock on 127.0.0.1: its issuer URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    users = [json.dumps({"sub": sub, **claims}) for sub, claims in USERS.items()]
    process = subprocess.Popen(
        [sys.executable, "-m", "oidc_provider_mock", "--host", "127.0.0.1", "--port", str(port),
         "--require-nonce", *[arg for user in users for arg in ("--user-claims", user)]],
        env={**os.environ, "NO_COLOR": "1"}, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    issuer = f"http://127.0.0.1:{port}"
    _wait_http(f"{issuer}/.well-known/openid-configuration", process, log, "the OpenID provider")
    yield issuer
    _stop(process)


@pytest.fixture(scope="module")
def warehouse_with_rejections(demo_warehouse, tmp_path_factory):
    """The demo warehouse with three rejected rows in audit: what only data managers may see."""
    copy = tmp_path_factory.mktemp("signin_warehouse") / "warehouse.duckdb"
    shutil.copy(demo_warehouse, copy)
    with duckdb.connect(str(copy)) as con:
        con.execute("""
            INSERT INTO audit.rejected_rows VALUES
                ('labs.csv', 12, 'H-001', 'value', 'abc', 'not a number'),
                ('labs.csv', 40, 'H-002', 'unit', 'kBq', 'unknown unit'),
                ('cycles.csv', 3, 'H-003', 'administration_date', '31/02/2019', 'unparseable date')
        """)
        con.execute("UPDATE audit.load_summary SET rows_read = rows_read + 2, rows_rejected = 2"
                    " WHERE source_file = 'labs.csv'")
        con.execute("UPDATE audit.load_summary SET rows_read = rows_read + 1, rows_rejected = 1"
                    " WHERE source_file = 'cycles.csv'")
    return copy


@pytest.fixture(scope="module")
def app(provider, warehouse_with_rejections, tmp_path_factory):
    """The app with sign-in configured (a temporary secrets.toml), on a free port: its URL."""
    root = tmp_path_factory.mktemp("signin_app")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    secrets = root / "secrets.toml"
    secrets.write_text(f"""
[auth]
redirect_uri = "{url}/oauth2callback"
cookie_secret = "e2e-only-cookie-secret-{os.urandom(16).hex()}"
client_id = "prrt-warehouse"
client_secret = "e2e-only-client-secret"
server_metadata_url = "{provider}/.well-known/openid-configuration"

[prrt_roles]
claim = "groups"
analyst = ["prrt-analysts"]
data_manager = ["prrt-data-managers"]
""")
    log = root / "streamlit.log"
    env = {**os.environ, "PRRT_WAREHOUSE": str(warehouse_with_rejections)}  # warnings, if any: in the log
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(REPO / "streamlit_app" / "app.py"),
         "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
         "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
         "--secrets.files", str(secrets)],
        cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    _wait_http(f"{url}/_stcore/health", process, log, "streamlit")
    yield url
    _stop(process)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT)  # a fresh context: no identity cookie
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def _main(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def _titles(page) -> list[str]:
    links = page.locator('[data-testid="stSidebarNavLink"]')
    more = page.locator('[data-testid="stSidebarNavViewButton"]')
    if more.count() and "more" in more.inner_text().lower():
        more.click()
    return [links.nth(i).inner_text().strip().splitlines()[-1].strip() for i in range(links.count())]


def _sign_in(page, app: str, sub: str) -> None:
    """Through the app's Sign in button and the provider's authorization form, back to the app."""
    page.goto(app)
    _wait_idle(page)
    page.get_by_role("button", name=re.compile("Sign in")).click()
    page.wait_for_url(re.compile(r"/oauth2/authorize"))
    page.locator(f'button[name="sub"][value="{sub}"]').click()  # the provider's predefined user
    page.wait_for_url(re.compile(re.escape(app) + r"/?$"))
    page.wait_for_selector(IDLE)
    _wait_idle(page)


def _open(page, url: str) -> str:
    page.goto(url)
    _wait_idle(page)
    return _main(page)


def test_not_signed_in_sees_only_the_sign_in_page(app, page):
    for path in ("", "/cohort", "/data_quality", "/sql"):
        text = _open(page, app + path)
        assert "Sign in with your hospital account" in text, path
        assert page.get_by_role("button", name=re.compile("Sign in")).count() == 1
        assert page.locator("h1").all_inner_texts() == ["PRRT outcomes"], path
        assert _titles(page) == []
        assert "16" not in text and "Local mode" not in text
    assert page.context.cookies() == [] or all(c["name"] != "_streamlit_user" for c in page.context.cookies())


def test_an_analyst_sees_the_outcome_pages_and_sql_but_not_data_quality(app, page):
    _sign_in(page, app, "analyst")
    text = _main(page)
    assert page.locator("h1").first.inner_text() == "Cohort"
    patients = page.locator('[data-testid="stMetric"]').filter(has_text="Patients").first
    assert patients.locator('[data-testid="stMetricValue"]').inner_text() == "16"
    assert "Local mode" not in text
    assert _titles(page) == [*OUTCOME_TITLES, "SQL"]
    assert "Signed in as Ada Analyst (analyst)" in page.locator('[data-testid="stSidebar"]').inner_text()

    # Data quality by its URL: not a page of this navigation, so none of its content
    text = _open(page, f"{app}/data_quality")
    assert page.url.rstrip("/") == app  # Streamlit sends an unknown page to the default one
    assert page.locator("h1").first.inner_text() == "Cohort"
    assert "rejected rows" not in text.lower() and "Load summary" not in text
    assert "Data quality" not in _titles(page)

    assert _open(page, f"{app}/sql") and page.locator("h1").first.inner_text() == "SQL"
    assert _open(page, f"{app}/survival") and page.locator("h1").first.inner_text() == "Survival"


def test_a_data_manager_sees_data_quality_with_its_rejected_rows(app, page):
    _sign_in(page, app, "manager")
    assert _titles(page) == [*OUTCOME_TITLES, "Data quality", "SQL"]
    text = _open(page, f"{app}/data_quality")
    assert page.locator("h1").first.inner_text() == "Data quality"
    assert "Rejected rows" in text and "3 of 3 rejected rows" in text
    assert "Signed in as Dana Manager (data manager)" in page.locator('[data-testid="stSidebar"]').inner_text()


def test_a_user_without_a_role_sees_the_message_and_no_data(app, page):
    _sign_in(page, app, "nobody")
    for path in ("", "/cohort", "/data_quality", "/sql"):
        text = _open(page, app + path) if path else _main(page)
        assert "You are signed in as Noel Norole, but your account has no role in this app" in text, path
        assert page.locator("h1").all_inner_texts() == ["PRRT outcomes"], path
        assert _titles(page) == [] and page.locator('[data-testid="stMetric"]').count() == 0
        assert page.locator('[data-testid="stDataFrame"]').count() == 0
    assert page.get_by_role("button", name=re.compile("Sign out")).count() == 1


def test_a_single_group_as_a_string_claim_gives_the_role(app, page):
    _sign_in(page, app, "single")
    assert _titles(page) == [*OUTCOME_TITLES, "SQL"]


def test_sign_out_ends_the_session(app, page):
    _sign_in(page, app, "analyst")
    page.get_by_role("button", name=re.compile("Sign out")).click()
    # the provider's end-session page (RP-initiated logout), then back to the app, signed out
    page.wait_for_url(re.compile(r"/oauth2/end_session"))
    assert all(c["name"] != "_streamlit_user" for c in page.context.cookies())
    text = _open(page, app)
    assert "Sign in with your hospital account" in text and _titles(page) == []


def test_the_launcher_serves_local_mode_on_loopback(demo_warehouse, tmp_path, page):
    """scripts/demo.sh's command: no sign-in, 127.0.0.1, the banner, every page."""
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {**os.environ, "PRRT_WAREHOUSE": str(demo_warehouse)}
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit_app.serve", "--server.address", "127.0.0.1", "--server.port", str(port),
         "--server.fileWatcherType", "none", "--secrets.files", str(tmp_path / "none.toml")],
        cwd=tmp_path, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{url}/_stcore/health", process, log, "the launcher")
        text = _open(page, url)
        assert "Local mode: no sign-in, only this machine can connect" in text
        assert page.locator("h1").first.inner_text() == "Cohort"
        assert _titles(page) == [*OUTCOME_TITLES, "Data quality", "SQL"]
        assert "prrt app: local mode" in log.read_text()
    finally:
        _stop(process)
