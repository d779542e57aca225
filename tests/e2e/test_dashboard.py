"""The dashboard in a real browser (Debian's Chromium, driven by Playwright) over a seeded engine.

The numbers the page shows must be the API's; a lead search shows the lead's timeline.
Screenshots land in test-artifacts/.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import journeys
import pytest
import scenario
import uvicorn
from seeding import demo_like as demo_like_events
from seeding import projected

from lifecycle import wiring
from lifecycle.api.app import create_app
from lifecycle.demo.broker import free_port
from lifecycle.projections.announcer import Announcer
from lifecycle.projections.store import ViewStore
from lifecycle.settings import Settings

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (make test installs it as root with apt-get)",
)


@contextmanager
def serving(url: str, token: str | None = None) -> Iterator[str]:
    """The API and the page over the store at ``url``, on a free port: the base URL."""
    engine = wiring.engine_at(url)
    settings = Settings(database_url=url, kafka_bootstrap="127.0.0.1:9", api_token=token or "")
    api = wiring.api(settings, engine)
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
def dashboard(sqlite_url, events) -> Iterator[str]:
    """The dashboard over the hand-computed scenario."""
    with serving(projected(sqlite_url, events.decode(*scenario.history(events)))) as base:
        yield base


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory) -> str:
    """A store with the demo's kind of data: its campaign names, 300 people."""
    return projected(
        f"sqlite:///{tmp_path_factory.mktemp('demo-like')}/lifecycle.db", demo_like_events()
    )


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


# Whatever a card holds is inside it: the page does not scroll sideways, no card hides a column
# behind a scroll bar, and (on a phone, where rows become "header: value" lines) every cell says
# which column it is.
LAYOUT_PROBLEMS = """() => {
  const page = document.documentElement;
  const problems = [];
  if (page.scrollWidth > page.clientWidth) problems.push(`page ${page.scrollWidth} px wide`);
  for (const card of document.querySelectorAll(".card")) {
    const name = card.querySelector("h2").firstChild.textContent.trim();
    if (card.scrollWidth > card.clientWidth) problems.push(`${name} scrolls sideways`);
    const edge = card.getBoundingClientRect();
    for (const table of card.querySelectorAll("table")) {
      const headers = [...table.querySelectorAll("thead th")].map((th) => th.textContent);
      for (const row of table.querySelectorAll("tbody tr")) {
        [...row.children].forEach((cell, i) => {
          const box = cell.getBoundingClientRect();
          if (box.width === 0 || box.left < edge.left || box.right > edge.right)
            problems.push(`${name}: ${headers[i] ?? "a cell"} cut`);
          if (headers.length && cell.dataset.label !== headers[i])
            problems.push(`${name}: a cell does not say it is ${headers[i]}`);
        });
      }
    }
  }
  return [...new Set(problems)];
}"""


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright  # noqa: PLC0415 (only this module needs it)

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield launched
        finally:
            launched.close()


def opened(browser, dashboard, width: int, failed: list[str] | None = None):
    tab = browser.new_page(viewport={"width": width, "height": 900})
    if failed is not None:
        tab.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    tab.goto(dashboard)
    tab.wait_for_selector("body[data-loaded=true]", timeout=15_000)
    return tab


@pytest.mark.parametrize("width", [390, 768, 1400])
@pytest.mark.parametrize("data", ["scenario", "demo-like"])
def test_at_phone_tablet_and_desktop_widths_nothing_is_cut_and_every_column_shows(
    browser, dashboard, demo_like, data, width
):
    with contextlib.ExitStack() as stack:
        base = dashboard if data == "scenario" else stack.enter_context(serving(demo_like))
        tab = opened(browser, base, width)
        lead = httpx.get(f"{base}/api/leads?limit=1").json()["leads"][0]["lead_id"]
        tab.fill("#search input[name=q]", lead)
        tab.click("#search button")
        tab.wait_for_selector("#timeline tbody tr")
        tab.screenshot(path=str(ARTIFACTS / f"dashboard-{data}-{width}px.png"), full_page=True)

        assert tab.evaluate(LAYOUT_PROBLEMS) == []
        assert tab.locator("#funnel .bar").first.bounding_box()["height"] > 0
        assert tab.locator("#sla tbody tr").count() > 0
        assert tab.locator("#cpl tbody tr").count() > 0


def test_the_filters_offer_every_campaign_and_channel_of_the_data_at_once(browser, dashboard):
    groups = httpx.get(f"{dashboard}/api/groups").json()
    tab = opened(browser, dashboard, 1400)

    for name in ("campaign", "channel"):
        offered = tab.locator(f"#filters select[name={name}] option").all_inner_texts()
        assert offered == ["all", *groups[f"{name}s"]]
    assert len(groups["channels"]) > 1


def test_a_period_that_ends_before_it_starts_says_so_instead_of_showing_the_last_funnel(
    browser, dashboard
):
    tab = opened(browser, dashboard, 1400)
    assert tab.locator("#funnel .bar-row").count() > 0

    tab.fill("#filters input[name=from]", "2026-03-02")
    tab.fill("#filters input[name=to]", "2026-03-01")
    tab.wait_for_selector("#funnel .error")

    assert tab.locator("#funnel .bar-row").count() == 0
    assert "before" in tab.inner_text("#funnel .error")


def test_an_empty_search_asks_for_a_reference_and_sends_nothing(browser, dashboard):
    tab = opened(browser, dashboard, 1400)
    asked: list[str] = []
    tab.on("request", lambda request: asked.append(request.url))

    tab.click("#search button")
    tab.wait_for_selector("#lead .error")

    assert "e-mail" in tab.inner_text("#lead .error")
    assert [url for url in asked if "/api/leads" in url] == []


def test_the_page_loads_without_a_single_failed_request_favicon_included(browser, dashboard):
    failed: list[str] = []
    tab = opened(browser, dashboard, 1400, failed)
    tab.wait_for_load_state("networkidle")

    assert failed == []
    assert tab.evaluate("document.querySelector('link[rel=icon]').href").endswith("favicon.svg")


@pytest.mark.parametrize("given", ["right", "wrong"])
def test_a_page_without_its_token_asks_for_it_once(browser, demo_like, given):
    asked: list[str] = []
    with serving(demo_like, token="the-token") as base:  # noqa: S106 (a test's own token)
        tab = browser.new_page(viewport={"width": 1400, "height": 900})
        tab.on(
            "dialog",
            lambda d: (
                asked.append(d.message),
                d.accept("the-token" if given == "right" else "nope"),
            ),
        )
        tab.goto(base)
        if given == "right":
            tab.wait_for_selector("body[data-loaded=true]", timeout=15_000)
        else:
            tab.wait_for_selector("#status.error", timeout=15_000)
        time.sleep(6)  # a refresh (every 5 s) later

        assert len(asked) == 1
        if given == "wrong":
            assert "reload the page" in tab.inner_text("#status")


def test_a_period_of_days_includes_its_last_day(browser, dashboard):
    tab = opened(browser, dashboard, 1400)
    asked: list[str] = []
    tab.on("request", lambda request: asked.append(request.url))

    tab.fill("#filters input[name=from]", "2026-03-02")
    tab.fill("#filters input[name=to]", "2026-03-02")
    tab.dispatch_event("#filters input[name=to]", "change")
    tab.wait_for_function("document.querySelector('#status').textContent.startsWith('updated')")
    tab.wait_for_timeout(500)

    funnels = [url for url in asked if "/api/funnel" in url]
    assert funnels
    assert funnels[-1].endswith("from=2026-03-02&to=2026-03-03")
    assert tab.locator("#funnel .error").count() == 0


def test_a_part_of_a_lead_id_is_answered_with_how_to_find_the_lead(browser, dashboard):
    tab = opened(browser, dashboard, 1400)

    tab.fill("#search input[name=q]", "…1c2a2f3e")
    tab.click("#search button")
    tab.wait_for_selector("#lead .error")

    assert "part of a lead id" in tab.inner_text("#lead .error")


def test_the_feed_shows_the_engine_s_latest_decisions_newest_first(browser, sqlite_url, events):
    url = projected(sqlite_url, events.decode(*scenario.history(events)))
    store = ViewStore(url)
    Announcer(sla_hours=24, clock=lambda: events.at(scenario.END_DAY)).everyone(store, cause="fact")
    store.close()
    with serving(url) as base:
        latest = httpx.get(f"{base}/api/changes?last=12").json()["changes"]
        tab = opened(browser, base, 1400)
        rows = tab.locator("#changes tbody tr")

        assert rows.count() == len(latest) == 12
        shown = [rows.nth(n).locator("a.lead").get_attribute("data-lead") for n in range(12)]
        assert shown == [c["data"]["lead_id"] for c in latest]
        assert [c["seq"] for c in latest] == sorted((c["seq"] for c in latest), reverse=True)
        texts = rows.all_inner_texts()
        assert any("overdue hand-off" in t or "new" in t for t in texts)


@pytest.fixture
def journeys_dashboard(sqlite_url, events) -> Iterator[str]:
    """The dashboard over the journeys of tests/journeys.py (attribution worked out by hand)."""
    with serving(projected(sqlite_url, events.decode(*journeys.history(events)))) as base:
        yield base


def test_the_model_switcher_shows_each_model_s_credit_spend_and_roi(browser, journeys_dashboard):
    tab = opened(browser, journeys_dashboard, 1400)

    for model in ("markov", "w_shaped"):
        answer = httpx.get(f"{journeys_dashboard}/api/attribution", params={"model": model}).json()
        tab.select_option("#cpl-model", model)
        words = model.replace("_", " ")
        tab.wait_for_function(
            f"document.querySelector('#attribution-note').textContent.includes('{words}')"
        )
        assert tab.locator("#cpl").is_hidden()
        for item in answer["items"]:
            for currency in set(item["spend_minor"]) | set(item["revenue_minor"]):
                row = tab.locator(
                    f"#attribution tbody tr[data-group='{item['group'] or ''}']"
                    f"[data-currency='{currency}']"
                )
                cells = row.locator("td").all_inner_texts()
                assert float(cells[1]) == pytest.approx(item["credit"], abs=0.005)
                assert cells[5] == f"{item['revenue_minor'].get(currency, 0) / 100:,.2f}" or (
                    cells[5] == "-" and currency not in item["revenue_minor"]
                )
        assert float(
            tab.inner_text("#attribution tbody tr[data-group='mail'] td:nth-child(2)")
        ) == (pytest.approx(journeys.CREDIT[model]["mail"], abs=0.005))
    tab.select_option("#cpl-model", "")
    tab.wait_for_selector("#cpl", state="visible")


def test_the_models_side_by_side_are_the_api_s_and_the_hand_s(browser, journeys_dashboard):
    compared = httpx.get(f"{journeys_dashboard}/api/attribution/compare").json()
    tab = opened(browser, journeys_dashboard, 1400)

    for item in compared["items"]:
        cells = tab.locator(f"#models tbody tr[data-group='{item['group'] or ''}'] td")
        shown = [float(c) for c in cells.all_inner_texts()[1:]]
        assert shown == [round(item["credit"][m], 1) for m in compared["models"]]
        assert shown == [
            round(journeys.CREDIT[m].get(item["group"], 0.0), 1) for m in compared["models"]
        ]


def test_the_quality_chart_draws_each_source_s_rate_and_interval_from_the_api(
    browser, journeys_dashboard
):
    quality = httpx.get(f"{journeys_dashboard}/api/quality").json()
    tab = opened(browser, journeys_dashboard, 1400)
    tab.locator("#quality-card").screenshot(path=str(ARTIFACTS / "dashboard-quality.png"))

    marks = tab.locator("#quality g.source")
    assert marks.count() == len(quality["items"])
    for item in quality["items"]:
        mark = tab.locator(f"#quality g.source[data-group='{item['group'] or ''}']")
        for name in ("rate", "low", "high"):
            assert float(mark.get_attribute(f"data-{name}")) == pytest.approx(item[name])
        # The dot sits at the rate, the whiskers at the interval's ends, on one scale.
        dot = float(mark.locator("circle").get_attribute("cx"))
        low, high = (float(w.get_attribute("x1")) for w in mark.locator("line.whisker").all())
        if item["high"] > item["low"]:
            assert (dot - low) / (high - low) == pytest.approx(
                (item["rate"] - item["low"]) / (item["high"] - item["low"]), abs=1e-6
            )
        assert f"{item['rate'] * 100:.1f}%" in mark.locator("text.value").text_content()


def test_the_cohort_curves_step_through_the_api_s_kaplan_meier_points(browser, journeys_dashboard):
    cohorts = httpx.get(f"{journeys_dashboard}/api/cohorts").json()
    tab = opened(browser, journeys_dashboard, 1400)

    for item in cohorts["items"]:
        curve = tab.locator(f"#cohorts path.curve[data-group='{item['group'] or ''}']")
        points = [p.split(":") for p in curve.get_attribute("data-points").split()]
        assert [(int(d), float(s)) for d, s in points] == [
            (p["day"], p["share"]) for p in item["curve"]
        ]
    search = next(i for i in cohorts["items"] if i["group"] == "search")
    assert search["median_days"] == 3
    assert "search (median 3 d)" in tab.inner_text("#cohorts .legend")


def test_the_weekly_trend_stacks_the_api_s_leads_and_conversions_per_channel(
    browser, journeys_dashboard
):
    weeks = httpx.get(f"{journeys_dashboard}/api/trend").json()["weeks"]
    tab = opened(browser, journeys_dashboard, 1400)

    drawn = {
        (
            r.get_attribute("data-week"),
            r.get_attribute("data-channel"),
            r.get_attribute("data-kind"),
        ): (
            int(r.get_attribute("data-count")),
            float(r.get_attribute("height")),
        )
        for r in tab.locator("#trend rect").all()
    }
    expected = {
        (w["week"], w["channel"], kind): w[kind]
        for w in weeks
        for kind in ("leads", "conversions")
        if w[kind]
    }
    assert {key: count for key, (count, _) in drawn.items()} == expected
    # Heights are to one scale: two leads of paid_search stand twice as tall as one of events.
    assert drawn["2026-03-02", "paid_search", "leads"][1] == pytest.approx(
        2 * drawn["2026-03-02", "events", "leads"][1]
    )
