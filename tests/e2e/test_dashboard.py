"""The dashboard in a real browser (Debian's Chromium, driven by Playwright) over a seeded engine.

The numbers the page shows must be the API's; a lead search shows the lead's timeline.
Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import scenario
import uvicorn

from lifecycle.api.app import create_app
from lifecycle.api.state import Api
from lifecycle.application import LeadLifecycle
from lifecycle.broker import free_port
from lifecycle.persistence import eventsourcing_env
from lifecycle.projections.replay import fill_from_store, swap
from lifecycle.projections.store import ViewStore
from lifecycle.rules import default_rulebook
from lifecycle.settings import Settings

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (make test installs it as root with apt-get)",
)


@pytest.fixture
def dashboard(sqlite_url, events) -> Iterator[str]:
    """The API and the page, served over the scenario on a free port: the base URL."""
    engine = LeadLifecycle(eventsourcing_env(sqlite_url))
    engine.record(events.decode(*scenario.history(events)))
    store = ViewStore(sqlite_url)
    settings = Settings(database_url=sqlite_url, kafka_bootstrap="127.0.0.1:9")
    swap(store, fill_from_store(engine, store, default_rulebook(), settings), default_rulebook())
    store.close()
    api = Api(settings=settings, engine=engine)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(api), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        api.close()
        engine.close()


@pytest.fixture
def page(dashboard):
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 (only this module needs it)

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            tab = browser.new_page(viewport={"width": 1400, "height": 1000})
            tab.goto(dashboard)
            tab.wait_for_selector("body[data-loaded=true]", timeout=15_000)
            yield tab
        finally:
            browser.close()


def test_the_dashboard_shows_the_funnel_temperature_and_costs_the_api_gives(page, dashboard):
    funnel = httpx.get(f"{dashboard}/api/funnel").json()
    costs = httpx.get(f"{dashboard}/api/cost-per-lead?by=campaign").json()
    temperature = httpx.get(f"{dashboard}/api/temperature").json()
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)

    shown_funnel = {
        stage: int(page.inner_text(f"#funnel [data-stage={stage}] .count"))
        for stage in funnel["reached"]
    }
    assert shown_funnel == funnel["reached"]
    assert shown_funnel["lead"] == scenario.EXPECTED_FUNNEL["lead"]
    shown_temperature = {
        name: int(page.inner_text(f"#temperature [data-temperature={name}] .count"))
        for name in temperature["counts"]
    }
    assert shown_temperature == temperature["counts"]
    for row in costs["rows"]:
        cells = page.locator(f"#cpl tbody tr[data-group='{row['group']}'] td").all_inner_texts()
        assert cells[0] == row["group"]
        assert int(cells[3]) == row["leads"]
        assert cells[4] == f"{row['cpl'] / 100:,.2f}"


def test_searching_a_lead_by_email_shows_its_timeline_and_why_it_has_its_stage(page, dashboard):
    lead = httpx.get(f"{dashboard}/api/leads", params={"identity": "email:ann@example.com"}).json()
    timeline = httpx.get(f"{dashboard}/api/leads/{lead['lead_id']}/timeline").json()

    page.fill("#search input[name=q]", "ann@example.com")
    page.click("#search button")
    page.wait_for_selector("#timeline tbody tr")
    page.screenshot(path=str(ARTIFACTS / "dashboard-lead.png"), full_page=True)

    assert page.inner_text("#lead-summary [data-field=stage]") == "customer"
    assert page.locator("#timeline tbody tr").count() == len(timeline["entries"])
    assert page.inner_text("#why") == timeline["why"]
    moved = [text for text in page.locator("#timeline tbody td.moved").all_inner_texts() if text]
    assert moved == [e["moved_to"] for e in timeline["entries"] if e["moved_to"]]
