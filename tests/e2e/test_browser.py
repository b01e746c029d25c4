"""The app in a real browser: every page in the sidebar renders without an error.

Starts `streamlit run streamlit_app/app.py` on a free port against the demo warehouse and
drives Debian's Chromium with Playwright (no browser download: `scripts/test.sh` installs
/usr/bin/chromium when it is missing). A full-page screenshot of each page is written to
tests/e2e/screenshots/ (git-ignored). With PRRT_DOCS_SCREENSHOTS=docs/screenshots the
README's screenshots (viewport only, small PNGs) are retaken too.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import REPO

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
VIEWPORT = {"width": 1400, "height": 1000}
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'
ERROR = '[data-testid="stAlertContentError"]'

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium (scripts/test.sh installs it)"
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(script: Path, env: dict, log: Path):
    """`streamlit run script` from the repository (so .streamlit/config.toml applies)."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(script), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--server.fileWatcherType", "none",
         "--browser.gatherUsageStats", "false"],
        cwd=REPO, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().decode().strip() == "ok":
                    return process, url
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"streamlit did not become healthy:\n{log.read_text()}")
        time.sleep(0.3)


def _stop(process) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _healthy(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as response:
        return response.read().decode().strip() == "ok"


@pytest.fixture(scope="module")
def app(demo_warehouse, tmp_path_factory):
    env = {**os.environ, "PRRT_WAREHOUSE": str(demo_warehouse)}
    log = tmp_path_factory.mktemp("streamlit") / "streamlit.log"
    process, url = _serve(REPO / "streamlit_app" / "app.py", env, log)
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
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def _wait_idle(page) -> None:
    """Until the script run is over and charts had a moment to draw."""
    page.wait_for_selector(IDLE)
    page.wait_for_timeout(1500)
    page.wait_for_selector(IDLE)


def _screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside stMain, so grow the viewport to its height."""
    height = page.evaluate("document.querySelector('[data-testid=stMain]').scrollHeight")
    page.set_viewport_size({"width": VIEWPORT["width"], "height": max(VIEWPORT["height"], height)})
    page.wait_for_timeout(500)
    page.screenshot(path=str(path))
    page.set_viewport_size(VIEWPORT)


def _docs_screenshot(page, name: str) -> None:
    """README screenshots (PRRT_DOCS_SCREENSHOTS=docs/screenshots): the first viewport only."""
    if docs := os.environ.get("PRRT_DOCS_SCREENSHOTS"):
        Path(docs).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(docs) / f"{name}.png"))


def _slug(url: str) -> str:
    path = url.split("://", 1)[-1].split("/", 1)[-1].split("?")[0].strip("/")
    return re.sub(r"[^a-z0-9]+", "_", path.lower()) or "cohort"


def _navigation(page, url: str) -> list[tuple[str, str]]:
    """(title, href) of every page in the sidebar navigation."""
    page.goto(url)
    _wait_idle(page)
    more = page.locator('[data-testid="stSidebarNavViewButton"]')
    if more.count() and "more" in more.inner_text().lower():
        more.click()
    links = page.locator('[data-testid="stSidebarNavLink"]')
    # A link's text is its material icon's name, then the title.
    return [(links.nth(i).inner_text().strip().splitlines()[-1].strip(), links.nth(i).get_attribute("href"))
            for i in range(links.count())]


def test_every_page_renders_without_errors(app, page):
    pages = _navigation(page, app)
    assert len(pages) >= 7, pages  # the five outcome pages, data quality, SQL
    SCREENSHOTS.mkdir(exist_ok=True)
    problems = {}
    for title, href in pages:
        page.goto(href)
        _wait_idle(page)
        assert page.locator("h1").count() >= 1, f"{title}: nothing rendered"
        errors = [e.inner_text() for e in page.locator(f"{EXCEPTION}, {ERROR}").all()]
        if errors:
            problems[title] = errors
        name = _slug(href)
        _screenshot(page, SCREENSHOTS / f"{name}.png")
        if name != "sql":  # the SQL page is shot with a result, below
            _docs_screenshot(page, name)
    assert not problems, problems


def test_the_survival_page_shows_pfs_with_its_at_risk_table_and_forest_plot(app, page):
    page.goto(f"{app}/survival")
    _wait_idle(page)
    page.locator('[data-testid="stSelectbox"]').first.click()
    page.get_by_role("option", name="PFS: Progression-free survival").click()
    page.wait_for_timeout(300)
    _wait_idle(page)
    main = page.locator('[data-testid="stMain"]')
    text = main.inner_text()
    assert "Median PFS, months" in text and "Number at risk" in text, text[:2000]
    assert "Forest plot: hazard ratios for progression-free survival" in text
    # the Kaplan-Meier plot (with its at-risk rows) and the forest plot are drawn
    assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 2
    assert not page.locator(f"{EXCEPTION}, {ERROR}").count()
    _screenshot(page, SCREENSHOTS / "survival_pfs.png")


def _run_sql(page, sql: str) -> None:
    box = page.locator('[data-testid="stTextArea"] textarea')
    box.fill(sql)
    box.press("Tab")  # commit the text area's value before the click
    _wait_idle(page)
    page.get_by_role("button", name=re.compile("Run")).click()
    page.wait_for_timeout(300)
    _wait_idle(page)


def test_sql_page_refuses_an_attack_and_keeps_answering(app, page):
    pages = dict(_navigation(page, app))
    page.goto(pages["SQL"])
    _wait_idle(page)

    _run_sql(page, "SELECT patient_id, birth_date FROM ingest.patients")
    error = page.locator(ERROR)
    assert error.count() == 1
    assert "ingest is not available" in error.inner_text()
    assert page.locator(EXCEPTION).count() == 0
    assert _healthy(app)

    _run_sql(page, "SELECT * FROM read_csv('/etc/passwd')")
    assert "cannot read or write files" in page.locator(ERROR).inner_text()
    assert "root:" not in page.content()

    _run_sql(page, "SELECT count(*) AS patients FROM marts.dim_patient")
    assert page.locator(ERROR).count() == 0
    assert page.get_by_text("1 row in").count() == 1
    assert page.locator('[data-testid="stDataFrame"]').count() >= 1
    SCREENSHOTS.mkdir(exist_ok=True)
    _screenshot(page, SCREENSHOTS / "sql_after_attacks.png")

    # A new session starts from the first example (the paper's Table 2): run it as is.
    page.goto(pages["SQL"])
    _wait_idle(page)
    page.get_by_role("button", name=re.compile("Run")).click()
    page.wait_for_timeout(300)
    _wait_idle(page)
    assert page.locator(ERROR).count() == 0 and page.locator(EXCEPTION).count() == 0
    assert page.get_by_text("rows in").count() == 1
    _docs_screenshot(page, "sql")


def test_uncaught_errors_show_the_type_only(tmp_path, page):
    """.streamlit/config.toml's showErrorDetails = "type": no message (data values), no traceback."""
    script = tmp_path / "boom.py"
    script.write_text(
        "import streamlit as st\nst.title('boom')\n"
        "raise ValueError('patient H-001 born 1960-03-15')\n"
    )
    process, url = _serve(script, dict(os.environ), tmp_path / "streamlit.log")
    try:
        page.goto(url)
        _wait_idle(page)
        shown = page.locator(EXCEPTION)
        assert shown.count() == 1
        text = page.locator('[data-testid="stMain"]').inner_text()
        assert "ValueError" in text
        assert "H-001" not in text and "1960" not in text
        assert "Traceback" not in text and "boom.py" not in text
    finally:
        _stop(process)


def test_deep_link_on_a_fresh_server_uses_the_app_navigation(demo_warehouse, tmp_path, page):
    """A first request straight to /sql gets the app's navigation (the page files live in
    views/, not pages/, which Streamlit would also run as a legacy multipage app)."""
    env = {**os.environ, "PRRT_WAREHOUSE": str(demo_warehouse)}
    process, url = _serve(REPO / "streamlit_app" / "app.py", env, tmp_path / "streamlit.log")
    try:
        titles = [title for title, _ in _navigation(page, f"{url}/sql")]
        assert "Data quality" in titles and "app" not in titles, titles
    finally:
        _stop(process)
