"""Attribution, lead quality, cohorts and trends through the API and the CLI, on SQLite and
PostgreSQL, over the journeys worked out by hand in tests/journeys.py.
"""

from __future__ import annotations

import json

import journeys
import pytest
from litestar.testing import TestClient
from seeding import table_rows
from statsmodels.stats.proportion import proportion_confint
from typer.testing import CliRunner

from lifecycle import wiring
from lifecycle.api.app import create_app
from lifecycle.cli import app
from lifecycle.demo.sample import generate
from lifecycle.domain.vocabulary import Conversion, Model
from lifecycle.projections.leads import LeadsProjection
from lifecycle.projections.replay import fill_from_store, swap
from lifecycle.projections.schema import CREDIT_TABLES
from lifecycle.projections.store import ViewStore
from lifecycle.rules import default_rulebook
from lifecycle.settings import Settings

NO_BROKER = "127.0.0.1:9"
MODELS = [model.value for model in Model]


def projected(url: str, engine, events: list) -> None:
    for start in range(0, len(events), 1000):
        engine.record(events[start : start + 1000])
    store = ViewStore(url)
    settings = Settings(database_url=url)
    swap(store, fill_from_store(engine, store, default_rulebook(), settings), default_rulebook())
    store.close()


@pytest.fixture
def seeded(database_url, engine, events) -> str:
    """The store and the views of the journeys; their URL."""
    projected(database_url, engine, events.decode(*journeys.history(events)))
    return database_url


@pytest.fixture
def client(seeded, engine):
    """The API over the journeys."""
    api = wiring.api(Settings(database_url=seeded, kafka_bootstrap=NO_BROKER), engine)
    with TestClient(create_app(api)) as opened:
        yield opened
    api.close()


def credit(answer: dict) -> dict[str | None, float]:
    return {item["group"]: item["credit"] for item in answer["items"] if item["credit"]}


@pytest.mark.parametrize("model", MODELS)
def test_each_model_credits_the_customers_as_worked_out_by_hand(client, model):
    answer = client.get("/api/attribution", params={"model": model}).json()

    assert (answer["model"], answer["by"], answer["conversion"]) == (model, "campaign", "customer")
    assert answer["conversions"] == 3
    assert credit(answer) == pytest.approx(journeys.CREDIT[model], abs=1e-6)


@pytest.mark.parametrize("model", sorted(journeys.REVENUE))
def test_revenue_goes_with_the_credit_of_its_conversion(client, model):
    answer = client.get("/api/attribution", params={"model": model}).json()

    revenue = {i["group"]: i["revenue_minor"].get("EUR", 0.0) for i in answer["items"]}
    assert {g: r for g, r in revenue.items() if r} == pytest.approx(journeys.REVENUE[model])


def test_spend_gives_cost_per_conversion_and_roi_per_model(client):
    items = {
        i["group"]: i
        for i in client.get("/api/attribution", params={"model": "first_touch"}).json()["items"]
    }

    search, mail = items["search"], items["mail"]
    assert search["spend_minor"] == {"EUR": journeys.SPEND["search"]}
    assert search["cost_per_conversion"] == {"EUR": 15_000.0}  # 300.00 over 2 customers
    assert search["roi"] == {"EUR": 4.0}  # (1,500.00 - 300.00) / 300.00
    # Mail spent 100.00 and first touch credits it nothing: no cost per conversion, ROI -100%.
    assert (mail["credit"], mail["cost_per_conversion"], mail["roi"]) == (0.0, {}, {"EUR": -1.0})


def test_the_chain_over_channels_credits_them_as_their_campaigns(client):
    # One campaign per channel here: the same chain, the same numbers.
    answer = client.get("/api/attribution", params={"model": "markov", "by": "channel"}).json()

    expected = journeys.CREDIT["markov"]
    assert credit(answer) == pytest.approx(
        {
            "paid_search": expected["search"],
            "email": expected["mail"],
            "events": expected["webinar"],
            "direct": 1.0,
        },
        abs=1e-6,
    )


@pytest.mark.parametrize("model", MODELS)
def test_by_month_every_model_credits_the_month_of_the_touches(client, model):
    answer = client.get("/api/attribution", params={"model": model, "by": "month"}).json()

    assert credit(answer) == pytest.approx({"2026-03": 3.0}, abs=1e-6)
    assert answer["items"][0]["spend_minor"] == {"EUR": sum(journeys.SPEND.values())}


def test_a_period_counts_the_conversions_made_on_its_days(client):
    # amy bought on 2026-03-06, bob on 03-07, cy on 03-04: [03-05, 03-07) holds amy alone.
    period = {"from": "2026-03-05", "to": "2026-03-07"}
    first = client.get("/api/attribution", params={"model": "first_touch", **period}).json()
    # The data-driven model sees amy's path alone: each of its campaigns is needed for it.
    markov = client.get("/api/attribution", params={"model": "markov", **period}).json()

    assert (first["conversions"], credit(first)) == (1, {"search": 1.0})
    assert credit(markov) == pytest.approx(
        {"search": 1 / 3, "mail": 1 / 3, "webinar": 1 / 3}, abs=1e-6
    )


def test_without_a_model_the_rulebook_s_model_answers(client):
    answer = client.get("/api/attribution").json()

    assert answer["model"] == default_rulebook().attribution_model.value == "first_touch"
    assert answer["lookback_days"] == 90


def test_the_models_side_by_side_are_each_model_s_answer(client):
    compared = client.get("/api/attribution/compare").json()

    assert compared["models"] == MODELS
    for model in MODELS:
        one = credit(client.get("/api/attribution", params={"model": model}).json())
        side = {i["group"]: i["credit"][model] for i in compared["items"] if i["credit"][model]}
        assert side == one


def test_quality_by_campaign_is_as_worked_out_by_hand_with_wilson_intervals(client):
    answer = client.get("/api/quality", params={"by": "campaign"}).json()

    found = {i["group"]: (i["leads"], i["conversions"]) for i in answer["items"]}
    assert found == {"search": (2, 2), None: (1, 1), "mail": (2, 0), "webinar": (1, 0)}
    assert (answer["leads"], answer["conversions"]) == (6, 3)
    for item in answer["items"]:
        low, high = proportion_confint(item["conversions"], item["leads"], method="wilson")
        assert (item["low"], item["high"]) == pytest.approx((low, high), abs=1e-12)
        assert item["verdict"] == "too_few_leads"  # fewer than 30 leads on either side
    revenue = {i["group"]: i["revenue_per_lead"] for i in answer["items"]}
    assert revenue["search"] == {"EUR": 75_000.0}  # (1,000.00 + 500.00) / 2


def test_quality_as_of_an_instant_uses_only_the_facts_up_to_it(client):
    # 2026-03-06T21:00Z (day 4.5): amy has bought, bob not yet; fay is still a direct lead,
    # her mail click (day 6) had not happened.
    earlier = client.get("/api/quality", params={"as_of": "2026-03-06T21:00:00Z"}).json()
    later = client.get("/api/quality", params={"as_of": "2026-03-09"}).json()

    def counts(answer: dict) -> dict:
        return {i["group"]: (i["leads"], i["conversions"]) for i in answer["items"]}

    assert counts(earlier) == {"search": (2, 1), None: (2, 1), "mail": (1, 0), "webinar": (1, 0)}
    assert counts(later) == {"search": (2, 2), None: (1, 1), "mail": (2, 0), "webinar": (1, 0)}


def test_cohort_curves_censor_leads_too_young_to_tell(client):
    answer = client.get(
        "/api/cohorts", params={"by": "campaign", "as_of": "2026-03-12T09:00:00Z"}
    ).json()

    cohorts = {i["group"]: i for i in answer["items"]}
    search = cohorts["search"]
    # amy: acquired 03-03, bought 03-06 (day 3); bob: acquired 03-02, bought 03-07 (day 5).
    assert [(p["day"], p["at_risk"], p["converted"], p["share"]) for p in search["curve"]] == [
        (3, 2, 1, 0.5),
        (5, 1, 1, 1.0),
    ]
    assert search["median_days"] == 3
    # dot and fay (acquired 03-02, mail's since day 6) are ten days old and have not bought.
    assert [(p["day"], p["censored"], p["share"]) for p in cohorts["mail"]["curve"]] == [
        (10, 2, 0.0)
    ]
    assert cohorts["mail"]["median_days"] is None


def test_the_weekly_trend_counts_new_leads_and_conversions_per_channel(client):
    weeks = client.get("/api/trend", params={"conversion": "customer"}).json()["weeks"]

    found = {(w["week"], w["channel"]): (w["leads"], w["conversions"]) for w in weeks}
    assert found == {
        ("2026-03-02", "paid_search"): (2, 2),
        ("2026-03-02", "email"): (2, 0),
        ("2026-03-02", "events"): (1, 0),
        ("2026-03-02", "direct"): (1, 1),
    }


@pytest.mark.parametrize(
    ("path", "parameter", "value"),
    [
        ("/api/attribution", "model", "best_guess"),
        ("/api/attribution", "by", "day"),
        ("/api/attribution", "conversion", "visitor"),
        ("/api/attribution", "from", "2026-03-01T10:00:00Z"),
        ("/api/attribution/compare", "to", "2026-02-30"),
        ("/api/quality", "as_of", "yesterday"),
        ("/api/cohorts", "by", "lead"),
        ("/api/trend", "from", "1969-12-31"),
    ],
)
def test_a_bad_parameter_is_a_problem_naming_it(client, path, parameter, value):
    response = client.get(path, params={parameter: value})

    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["parameter"] == parameter


@pytest.fixture
def demo_client(database_url, engine):
    """The API over a demo-like history (300 people, 90 days)."""
    projected(database_url, engine, decoded(generate(people=300)))
    api = wiring.api(Settings(database_url=database_url, kafka_bootstrap=NO_BROKER), engine)
    with TestClient(create_app(api)) as opened:
        yield opened
    api.close()


def decoded(history: list) -> list:
    import msgspec  # noqa: PLC0415 (only this fixture decodes)

    from lifecycle.contracts.inbound import decode_structured  # noqa: PLC0415

    return [decode_structured(msgspec.json.encode(event)) for event in history]


def test_every_model_shares_out_exactly_the_conversions_of_every_kind(demo_client):
    for conversion in Conversion:
        funnel_reached = None
        for by in ("campaign", "channel", "month"):
            compared = demo_client.get(
                "/api/attribution/compare", params={"by": by, "conversion": conversion.value}
            ).json()
            total = compared["conversions"]
            assert total > 0
            for model in MODELS:
                assert sum(i["credit"][model] for i in compared["items"]) == pytest.approx(
                    total, abs=1e-4
                ), (conversion, by, model)
            funnel_reached = total
        assert funnel_reached is not None


def test_quality_counts_are_the_funnel_s(demo_client):
    funnel = demo_client.get("/api/funnel").json()["reached"]
    stage = {"lead": "lead", "mql": "mql", "sql": "sales_ready", "customer": "customer"}
    for conversion in Conversion:
        answer = demo_client.get(
            "/api/quality", params={"conversion": conversion.value, "as_of": "2999-01-01"}
        ).json()
        assert (answer["leads"], answer["conversions"]) == (
            funnel["lead"],
            funnel[stage[conversion.value]],
        )


@pytest.fixture
def run(seeded):
    """The ``lifecycle`` command over the same journeys."""
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(
            app, list(args), env={"LIFECYCLE_DATABASE_URL": seeded, "COLUMNS": "80"}
        )

    return invoke


def test_the_attribution_command_prints_the_api_s_answer(run, client):
    done = run("attribution", "--model", "markov", "--json")

    assert done.exit_code == 0, done.output
    printed = json.loads(done.stdout)
    api = client.get("/api/attribution", params={"model": "markov"}).json()
    assert printed["items"] == api["items"]


def test_the_models_side_by_side_fit_80_columns(run):
    done = run("attribution", "--compare", "--by", "channel")

    assert done.exit_code == 0, done.output
    lines = done.stdout.splitlines()
    assert max(map(len, lines)) <= 80
    header = next(line for line in lines if "first" in line)
    assert header.split() == ["channel", "first", "last", "linear", "pos.", "W", "decay", "markov"]
    assert row(done.stdout, "paid_search") == ["2.0", "0.0", "0.8", "0.9", "1.2", "0.7", "0.5"]


def row(table: str, first: str) -> list[str]:
    """The cells after ``first`` on the table's line that starts with it."""
    line = next(line for line in table.splitlines() if line.strip().startswith(first + " "))
    return line.strip().removeprefix(first).split()


def test_the_quality_and_cohorts_commands_print_their_tables(run):
    quality = run("quality", "--as-of", "2026-03-09")
    cohorts = run("cohorts", "--as-of", "2026-03-12T09:00:00Z", "--days", "3,5")
    as_json = run("quality", "--json")

    assert quality.exit_code == cohorts.exit_code == as_json.exit_code == 0
    assert row(quality.stdout, "search") == [
        "2",
        "2",
        "100.0%",
        "34-100%",
        "too",
        "few",
        "750",
        "EUR",
    ]
    assert row(cohorts.stdout, "search") == ["2", "2", "3", "d", "50%", "100%"]
    # cy bought on day 1: the no-campaign cohort is whole by then, and stays so.
    assert row(cohorts.stdout, "(no campaign)") == ["1", "1", "1", "d", "100%", "100%"]
    assert json.loads(as_json.stdout)["conversions"] == 3


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("attribution", "--model", "best_guess"), "--model must be one of first_touch"),
        (("attribution", "--by", "day"), "--by must be campaign, channel or month"),
        (("quality", "--conversion", "visitor"), "--conversion must be one of lead"),
        (("attribution", "--from", "2026-03-01T10:00"), "--from takes a day"),
        (("cohorts", "--days", "seven"), "--days takes whole days"),
        (("quality", "--json", "--csv"), "choose one"),
    ],
)
def test_a_wrong_option_is_one_line_and_exit_code_2(run, args, message):
    done = run(*args)

    assert done.exit_code == 2
    assert message in done.output
    assert len(done.output.strip().splitlines()) == 1


def test_views_made_before_attribution_get_it_from_their_facts_once(seeded):
    store = ViewStore(seeded)
    try:
        with store.transaction() as tx:
            slot = store.active_slot(tx)
            before = {t: table_rows(tx, f"{t}_{slot}") for t in CREDIT_TABLES}
            for table in CREDIT_TABLES:  # as views of the version before this one hold them
                tx.execute(f"DELETE FROM {table}_{slot}")
        projection = LeadsProjection(default_rulebook())
        with store.transaction() as tx:
            missing = projection.missing_credits(tx, slot)
            projection.add_credits(tx, slot, missing)
        with store.transaction() as tx:
            after = {t: table_rows(tx, f"{t}_{slot}") for t in CREDIT_TABLES}
            again = projection.missing_credits(tx, slot)
    finally:
        store.close()

    assert len(missing) == 6  # amy, bob, cy, dot, eve, fay
    assert after == before
    assert again == []
