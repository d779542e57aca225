"""Attribution and lead quality judged by libraries nobody here wrote, on a demo-like history.

- ChannelAttribution (``markov_model``, ``heuristic_models``) on the very paths our views hold:
  our exact removal effects, credits and revenue within 1% per campaign of its simulation (10
  million walks), our first touch, last touch and linear equal to its heuristics.
- statsmodels: every quality row's Wilson interval and two-proportion z-test.
- lifelines: every cohort curve, its interval and median, from each lead's own fold.
- Time travel: quality as of an instant equals counting each lead's fold up to that instant.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from datetime import UTC, datetime, timedelta

import msgspec
import pandas as pd
import pytest
from lifelines import KaplanMeierFitter
from litestar.testing import TestClient
from statsmodels.stats.proportion import proportion_confint, proportions_ztest

from lifecycle import wiring
from lifecycle.api.app import create_app
from lifecycle.contracts.inbound import decode_structured
from lifecycle.demo.sample import generate
from lifecycle.domain.facts import Fact
from lifecycle.projections.replay import fill_from_store, swap
from lifecycle.projections.store import ViewStore
from lifecycle.rules import LeadView, default_rulebook, fold
from lifecycle.rules.attribution import converted_at, credited_touches
from lifecycle.settings import Settings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # (its import announces a paid edition)
    from ChannelAttribution import heuristic_models, markov_model

RULES = default_rulebook()
START = datetime(2026, 8, 1, tzinfo=UTC)
INSTANTS = [START + timedelta(days=days, hours=hours) for days, hours in ((30, 0), (55, 13.5))]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A demo-like history of 1,200 people over 60 days, in a store and its views; the URL."""
    url = f"sqlite:///{tmp_path_factory.mktemp('oracles')}/lifecycle.db"
    engine = wiring.engine_at(url)
    encode = msgspec.json.Encoder().encode
    history = [decode_structured(encode(e)) for e in generate(people=1200, days=60, seed=11)]
    for start in range(0, len(history), 2000):
        engine.record(history[start : start + 2000])
    store = ViewStore(url)
    swap(store, fill_from_store(engine, store, RULES, Settings(database_url=url)), RULES)
    store.close()
    yield url, engine
    engine.close()


@pytest.fixture(scope="module")
def client(demo):
    url, engine = demo
    api = wiring.api(Settings(database_url=url, kafka_bootstrap="127.0.0.1:9"), engine)
    with TestClient(create_app(api)) as opened:
        yield opened
    api.close()


@pytest.fixture(scope="module")
def leads(demo) -> dict[str, list[Fact]]:
    """Every live lead's facts, as the views keep them."""
    store = ViewStore(demo[0])
    decoder = msgspec.json.Decoder(Fact)
    facts: dict[str, list[Fact]] = defaultdict(list)
    with store.reading() as tx:
        slot = store.active_slot(tx)
        for lead_id, body in tx.rows(
            f"SELECT f.lead_id, f.body FROM lifecycle_lead_facts_{slot} f "
            f"JOIN lifecycle_leads_{slot} l ON l.lead_id = f.lead_id "
            "WHERE l.merged_into IS NULL"
        ):
            facts[lead_id].append(decoder.decode(body))
    store.close()
    return facts


def customer_paths(leads: dict[str, list[Fact]]) -> pd.DataFrame:
    """Each lead's campaign path, as ChannelAttribution takes paths (rows per distinct path)."""
    rows: dict[str, list[float]] = defaultdict(lambda: [0, 0, 0.0])
    for facts in leads.values():
        view = fold(facts, RULES)
        if not view.is_lead or not view.campaign_touches:
            continue
        at = converted_at(view, "customer")  # type: ignore[arg-type]
        touches = credited_touches(view, at or view.campaign_touches[-1].at, RULES.lookback)
        if not touches:
            continue
        row = rows[" > ".join(t.campaign for t in touches)]
        if at is None:
            row[1] += 1
        else:
            row[0] += 1
            row[2] += view.revenue.get("EUR", 0)
    return pd.DataFrame(
        [(path, conv, null, value) for path, (conv, null, value) in rows.items()],
        columns=["path", "conv", "null", "value"],
    )


def test_removal_effects_credits_and_revenue_are_channel_attribution_s(client, leads):
    paths = customer_paths(leads)
    simulated = markov_model(
        paths,
        var_path="path",
        var_conv="conv",
        var_value="value",
        var_null="null",
        order=1,
        nsim_start=1e7,
        max_step=1000,  # (its default stops walks at the longest path: a bias of a few %)
        nfold=1,
        seed=20261208,
        out_more=True,
        verbose=False,
        flg_pro=False,
    )
    theirs = simulated["result"].merge(simulated["removal_effects"], on="channel_name")

    ours = {
        item["group"]: item
        for item in client.get(
            "/api/attribution", params={"model": "markov", "conversion": "customer"}
        ).json()["items"]
    }
    assert len(theirs) >= 6
    for _, row in theirs.iterrows():
        mine = ours[row["channel_name"]]
        assert mine["removal_effect"] == pytest.approx(
            row["removal_effects_conversion"], rel=0.01
        ), row["channel_name"]
        assert mine["credit"] == pytest.approx(row["total_conversions"], rel=0.01)
        assert mine["revenue_minor"].get("EUR", 0.0) == pytest.approx(
            row["total_conversion_value"], rel=0.01
        )


def test_first_last_and_linear_credit_are_channel_attribution_s_heuristics(client, leads):
    paths = customer_paths(leads)
    theirs = heuristic_models(
        paths[paths["conv"] > 0],
        var_path="path",
        var_conv="conv",
        var_value="value",
        flg_pro=False,
    ).set_index("channel_name")

    for model, column in (
        ("first_touch", "first_touch"),
        ("last_touch", "last_touch"),
        ("linear", "linear_touch"),
    ):
        items = client.get("/api/attribution", params={"model": model}).json()["items"]
        ours = {i["group"]: i for i in items if i["group"] is not None}
        for channel, row in theirs.iterrows():
            credit = ours[channel]["credit"] if channel in ours else 0.0
            value = ours[channel]["revenue_minor"].get("EUR", 0.0) if channel in ours else 0.0
            assert credit == pytest.approx(row[f"{column}_conversions"], abs=1e-5), (model, channel)
            assert value == pytest.approx(row[f"{column}_value"], abs=0.01), (model, channel)


@pytest.mark.parametrize("as_of", INSTANTS, ids=["day30", "day55_13h30"])
@pytest.mark.parametrize("by", ["campaign", "channel"])
def test_quality_counts_each_lead_s_fold_up_to_the_instant_and_tests_as_statsmodels(
    client, leads, as_of, by
):
    answer = client.get(
        "/api/quality", params={"by": by, "conversion": "sql", "as_of": as_of.isoformat()}
    ).json()

    expected: dict[str | None, list[int]] = defaultdict(lambda: [0, 0])
    for facts in leads.values():
        view = fold(facts, RULES, as_of=as_of)
        if not view.is_lead:
            continue
        group = view.acquisition_campaign if by == "campaign" else view.acquisition_channel
        expected[group][0] += 1
        expected[group][1] += converted_at(view, "sql") is not None  # type: ignore[arg-type]
    found = {i["group"]: [i["leads"], i["conversions"]] for i in answer["items"]}
    assert found == dict(expected)
    everyone = [sum(n for n, _ in expected.values()), sum(x for _, x in expected.values())]
    for item in answer["items"]:
        n, x = item["leads"], item["conversions"]
        low, high = proportion_confint(x, n, alpha=0.05, method="wilson")
        assert (item["low"], item["high"]) == pytest.approx((low, high), abs=1e-12)
        if item["verdict"] == "too_few_leads":
            assert min(n, everyone[0] - n) < 30
            continue
        z, p_value = proportions_ztest([x, everyone[1] - x], [n, everyone[0] - n])
        assert (item["z"], item["p_value"]) == pytest.approx((z, p_value), rel=1e-9)
        assert item["verdict"] == (
            "no_difference" if p_value >= 0.05 else "better" if z > 0 else "worse"
        )


@pytest.mark.parametrize("as_of", INSTANTS, ids=["day30", "day55_13h30"])
def test_cohort_curves_are_lifelines_kaplan_meier_of_each_lead_s_fold(client, leads, as_of):
    answer = client.get(
        "/api/cohorts",
        params={"by": "channel", "conversion": "customer", "as_of": as_of.isoformat()},
    ).json()

    durations: dict[str | None, list[tuple[int, bool]]] = defaultdict(list)
    for facts in leads.values():
        view = fold(facts, RULES, as_of=as_of)
        if not view.is_lead:
            continue
        acquired = _acquired(view)
        bought = converted_at(view, "customer")  # type: ignore[arg-type]
        end = bought if bought is not None else as_of
        durations[view.acquisition_channel].append(((end.date() - acquired).days, bool(bought)))
    assert {i["group"] for i in answer["items"]} == set(durations)
    for item in answer["items"]:
        days, events = zip(*durations[item["group"]], strict=True)
        fitter = KaplanMeierFitter().fit(list(days), list(events))
        interval = fitter.confidence_interval_survival_function_
        assert [p["day"] for p in item["curve"]] == sorted(set(days))
        for point in item["curve"]:
            survival = float(fitter.survival_function_.loc[point["day"]].iloc[0])
            lower, upper = interval.loc[point["day"]]
            assert point["share"] == pytest.approx(1 - survival, abs=1e-9)
            assert (point["low"], point["high"]) == pytest.approx((1 - upper, 1 - lower), abs=1e-9)
        median = fitter.median_survival_time_
        assert item["median_days"] == (None if median == float("inf") else int(median))


def _acquired(view: LeadView):
    lead_at = view.history[next(i for i, m in enumerate(view.history) if m.stage == "lead")]
    return lead_at.entered_at.date()
