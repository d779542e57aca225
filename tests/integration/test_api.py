"""The read API over the hand-computed scenario (tests/scenario.py), on SQLite and PostgreSQL.

Figures must equal the view tables and the answers worked out by hand; bad parameters get
RFC 9457 problems naming the parameter.
"""

from __future__ import annotations

import re

import msgspec
import pytest
import scenario
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from lifecycle import wiring
from lifecycle.api.app import create_app
from lifecycle.api.state import Api
from lifecycle.contracts import inbound
from lifecycle.demo.sample import generate
from lifecycle.projections import outbox, queries
from lifecycle.projections.announcer import Announcer
from lifecycle.projections.replay import fill_from_store, swap
from lifecycle.projections.store import ViewStore
from lifecycle.rules import default_rulebook
from lifecycle.settings import Settings

_encode = msgspec.json.Encoder().encode
# Nothing listens there: the API must answer without a broker (only /healthz says so).
NO_BROKER = "127.0.0.1:9"


def seeded(url: str, engine, events) -> None:
    engine.record(events.decode(*scenario.history(events)))
    store = ViewStore(url)
    settings = Settings(database_url=url)
    swap(store, fill_from_store(engine, store, default_rulebook(), settings), default_rulebook())
    store.close()


@pytest.fixture
def open_client(database_url, engine, events):
    """``open_client(token=None)``: a test client of the API over the seeded scenario."""
    seeded(database_url, engine, events)

    def open_(token: str | None = None) -> TestClient:
        settings = Settings(
            database_url=database_url, kafka_bootstrap=NO_BROKER, api_token=token or ""
        )
        api = wiring.api(settings, engine)
        opened.append(api)
        client = TestClient(create_app(api))
        clients.append(client.__enter__())
        return client

    opened: list[Api] = []
    clients: list[TestClient] = []
    yield open_
    for client in clients:
        client.__exit__(None, None, None)
    for api in opened:
        api.close()


@pytest.fixture
def client(open_client) -> TestClient:
    return open_client()


@pytest.fixture
def views(database_url):
    store = ViewStore(database_url)
    yield store
    store.close()


def lead_id(client: TestClient, email: str) -> str:
    return client.get("/api/leads", params={"identity": f"email:{email}"}).json()["lead_id"]


def test_a_lead_found_by_identity_has_the_stage_and_stage_instants_computed_by_hand(client, events):
    for identity, stage in scenario.EXPECTED_STAGES.items():
        if stage == "visitor" or identity in scenario.MERGED_INTO:
            continue
        answer = client.get("/api/leads", params={"identity": identity})
        assert answer.status_code == 200, identity
        assert answer.json()["stage"] == stage, identity
    for identity, became in scenario.EXPECTED_BECAME.items():
        lead = client.get("/api/leads", params={"identity": identity}).json()
        for stage, day in became.items():
            assert lead["became"][stage] == events.at(day).isoformat().replace("+00:00", "Z")


def test_a_lead_by_id_equals_its_row_in_the_views(client, views, events):
    with views.reading() as tx:
        slot = views.active_slot(tx)
        rows = queries.leads_page(
            tx, slot, queries.LeadQuery(), now=events.at(scenario.END_DAY), limit=1000
        )
    for row in rows:
        lead = client.get(f"/api/leads/{row.lead_id}", params={"as_of": "2026-12-31"}).json()
        assert lead["stage"] == row.stage
        assert lead["score"]["fit"] == row.fit
        assert lead["acquisition"] == {
            "campaign": row.acquisition_campaign,
            "channel": row.acquisition_channel,
        }
        assert set(lead["became"]) - {"visitor"} == set(row.became)


def test_as_of_in_the_past_folds_the_lead_from_the_event_store(client, events):
    ann = lead_id(client, "ann@example.com")
    for identity, day, temperature in scenario.TEMPERATURE_CHECKS:
        if identity != "email:ann@example.com":
            continue
        at = events.at(day).isoformat()
        assert client.get(f"/api/leads/{ann}", params={"as_of": at}).json()["temperature"] == (
            temperature
        )
    before_sql = events.at(scenario.EXPECTED_BECAME["email:ann@example.com"]["sql"] - 0.1)
    lead = client.get(f"/api/leads/{ann}", params={"as_of": before_sql.isoformat()}).json()
    assert lead["stage"] == "mql"
    assert "sql" not in lead["became"]


def test_a_lead_found_by_identity_is_folded_as_of_the_instant_asked(client, events):
    before_sql = events.at(scenario.EXPECTED_BECAME["email:ann@example.com"]["sql"] - 0.1)
    now = client.get("/api/leads", params={"identity": "email:ann@example.com"}).json()
    then = client.get(
        "/api/leads",
        params={"identity": "email:ann@example.com", "as_of": before_sql.isoformat()},
    ).json()

    assert then["lead_id"] == now["lead_id"]
    assert then["as_of"] == before_sql.isoformat().replace("+00:00", "Z")
    assert then["stage"] == "mql"
    assert "sql" in now["became"]
    assert "sql" not in then["became"]


def test_a_page_as_of_an_instant_has_the_temperatures_of_that_instant(client):
    at = "2026-03-06T12:00:00Z"
    counts = client.get("/api/temperature", params={"as_of": at}).json()["counts"]
    hot = client.get("/api/leads", params={"temperature": "hot", "as_of": at}).json()["leads"]

    assert counts["hot"] > 0
    assert len(hot) == counts["hot"]
    assert {lead["temperature"] for lead in hot} == {"hot"}


def test_the_timeline_lists_facts_in_event_time_and_names_the_fact_behind_each_stage_move(
    client,
):
    ann = lead_id(client, "ann@example.com")
    timeline = client.get(f"/api/leads/{ann}/timeline").json()

    instants = [entry["at"] for entry in timeline["entries"]]
    assert instants == sorted(instants)
    moves = [entry["moved_to"] for entry in timeline["entries"] if entry["moved_to"]]
    assert moves == ["visitor", "lead", "mql", "sql", "customer"]
    assert timeline["stage"] == "customer"
    assert timeline["why"].startswith("customer since ")
    assert "purchase" in timeline["why"]


def test_funnel_equals_the_hand_computed_funnel_and_the_views(client, views):
    answer = client.get("/api/funnel").json()
    with views.reading() as tx:
        expected = queries.funnel(tx, views.active_slot(tx))

    assert answer["reached"] == expected.reached
    assert {k: answer["reached"][k] for k in scenario.EXPECTED_FUNNEL} == scenario.EXPECTED_FUNNEL
    assert answer["conversion"] == expected.conversion


def test_funnel_filters_by_campaign_and_period(client):
    params = {"campaign": "spring-search", "from": "2026-01-01", "to": "2027-01-01"}
    answer = client.get("/api/funnel", params=params).json()
    empty = client.get("/api/funnel", params={"from": "2020-01-01", "to": "2020-02-01"}).json()

    assert answer["reached"]["lead"] == scenario.EXPECTED_CPL["spring-search"]["leads"]
    assert set(empty["reached"].values()) == {0}


@pytest.mark.parametrize("to", ["2026-03-05", "2026-03-04"])
def test_a_period_that_ends_where_or_before_it_starts_holds_no_lead(client, to):
    empty = client.get("/api/funnel", params={"from": "2026-03-05", "to": to})

    assert empty.status_code == 200
    assert set(empty.json()["reached"].values()) == {0}


def test_identity_kinds_are_read_in_any_case_and_list_filters_are_checked_with_them(client):
    lower = client.get("/api/leads", params={"identity": "email:ann@example.com"}).json()
    upper = client.get("/api/leads", params={"identity": "EMAIL:ann@example.com"})
    mixed = client.get("/api/leads", params={"identity": "Email:Ann@Example.com"})
    bad_stage = client.get(
        "/api/leads", params={"identity": "email:ann@example.com", "stage": "bogus"}
    )

    assert upper.json()["lead_id"] == mixed.json()["lead_id"] == lower["lead_id"]
    assert bad_stage.status_code == 400
    assert bad_stage.json()["parameter"] == "stage"


def test_groups_name_every_campaign_and_channel_that_acquired_a_lead_or_was_paid_for(client):
    groups = client.get("/api/groups").json()
    paid = {
        by: {row["group"] for row in client.get(f"/api/cost-per-lead?by={by}").json()["rows"]}
        for by in ("campaign", "channel")
    }
    acquired = {
        by: {
            lead[f"acquisition_{by}"] for lead in client.get("/api/leads?limit=500").json()["leads"]
        }
        for by in ("campaign", "channel")
    }

    for by in ("campaign", "channel"):
        names = groups[f"{by}s"]
        assert names == sorted(names)
        assert set(names) == (paid[by] | acquired[by]) - {None}
    assert acquired["channel"] - paid["channel"] - {None}  # a channel without spend is there too


def test_cost_per_lead_equals_the_hand_computed_figures_and_the_views(client, views):
    answer = client.get("/api/cost-per-lead", params={"by": "campaign"}).json()
    with views.reading() as tx:
        expected = queries.cost_per_lead(tx, views.active_slot(tx), "campaign")
    rows = {row["group"]: row for row in answer["rows"]}

    assert [row["group"] for row in answer["rows"]] == [row.group for row in expected]
    for campaign, figures in scenario.EXPECTED_CPL.items():
        for name, value in figures.items():
            assert rows[campaign][name] == pytest.approx(value), (campaign, name)


def test_cost_per_lead_groups_by_channel_and_month(client):
    channels = client.get("/api/cost-per-lead", params={"by": "channel"}).json()
    months = client.get("/api/cost-per-lead", params={"by": "month"}).json()

    assert {row["group"] for row in channels["rows"]} >= {"paid_search", "events"}
    assert all(re.fullmatch(r"\d{4}-\d{2}", row["group"]) for row in months["rows"])


def test_temperature_counts_every_live_lead_once(client, events):
    at = events.at(10.5).isoformat()
    counts = client.get("/api/temperature", params={"as_of": at}).json()["counts"]
    later = client.get("/api/temperature", params={"as_of": "2027-06-01"}).json()["counts"]

    assert sum(counts.values()) <= scenario.EXPECTED_FUNNEL["lead"]
    assert counts["hot"] > 0
    assert later == {"hot": 0, "warm": 0, "cold": scenario.EXPECTED_FUNNEL["lead"]}


def test_referrals_equal_the_hand_computed_referrals(client):
    answer = client.get("/api/referrals").json()["referrers"]
    by_referrer = {row["referrer_lead_id"]: row for row in answer}

    assert len(answer) == len(scenario.EXPECTED_REFERRALS)
    for identity, expected in scenario.EXPECTED_REFERRALS.items():
        row = by_referrer[client.get("/api/leads", params={"identity": identity}).json()["lead_id"]]
        assert {k: row[k] for k in expected} == expected


def test_sla_lists_the_leads_not_contacted_in_time(client, events):
    at = events.at(scenario.END_DAY).isoformat()
    answer = client.get("/api/sla", params={"as_of": at}).json()
    overdue = {
        client.get("/api/leads", params={"identity": identity}).json()["lead_id"]
        for identity in scenario.EXPECTED_SLA_OVERDUE
    }

    assert answer["within_hours"] == 24
    assert {b["lead_id"] for b in answer["breaches"]} == overdue


def test_sla_as_of_a_past_instant_counts_only_what_had_happened_by_then(client, events):
    before_any_hand_raise = client.get("/api/sla", params={"as_of": events.at(1).isoformat()})

    assert before_any_hand_raise.json()["breaches"] == []


def test_a_last_page_that_is_exactly_full_says_there_is_no_next_page(client):
    customers = scenario.EXPECTED_FUNNEL["customer"]
    page = client.get("/api/leads", params={"stage": "customer", "limit": customers}).json()

    assert len(page["leads"]) == customers
    assert page["next_cursor"] is None


def test_views_connections_are_reused_across_requests(open_client):
    client = open_client()
    for _ in range(30):
        client.get("/api/funnel")
    api = client.app.state.api

    assert 1 <= api._idle.qsize() <= 8


def test_the_lead_list_filters_by_stage_temperature_campaign_and_channel(client):
    customers = client.get("/api/leads", params={"stage": "customer"}).json()["leads"]
    search = client.get("/api/leads", params={"campaign": "spring-search"}).json()["leads"]
    channel = client.get("/api/leads", params={"channel": "paid_search"}).json()["leads"]
    hot = client.get("/api/leads", params={"temperature": "hot"}).json()["leads"]

    assert len(customers) == scenario.EXPECTED_FUNNEL["customer"]
    assert {lead["stage"] for lead in customers} == {"customer"}
    assert len(search) == scenario.EXPECTED_CPL["spring-search"]["leads"]
    assert {lead["acquisition_channel"] for lead in channel} == {"paid_search"}
    assert hot == []  # the scenario ended long before now


@pytest.mark.parametrize(
    ("path", "params", "parameter"),
    [
        ("/api/leads", {"limit": "0"}, "limit"),
        ("/api/leads", {"limit": "501"}, "limit"),
        ("/api/leads", {"limit": "many"}, "limit"),
        ("/api/leads", {"stage": "prospect"}, "stage"),
        ("/api/leads", {"temperature": "lukewarm"}, "temperature"),
        ("/api/leads", {"cursor": "not-a-cursor"}, "cursor"),
        ("/api/leads", {"identity": "fax:123"}, "identity"),
        ("/api/leads", {"identity": "ann@example.com"}, "identity"),
        ("/api/funnel", {"from": "yesterday"}, "from"),
        ("/api/funnel", {"to": "2026-02-30"}, "to"),
        ("/api/funnel", {"campaign": "spring\x00search"}, "campaign"),
        ("/api/funnel", {"channel": "television"}, "channel"),
        ("/api/leads", {"identity": "email: "}, "identity"),
        ("/api/funnel", {"to": "0001-01-01"}, "to"),
        ("/api/cost-per-lead", {"by": "week"}, "by"),
        ("/api/temperature", {"as_of": "soon"}, "as_of"),
        ("/api/sla", {"hours": "0"}, "hours"),
        ("/api/sla", {"hours": "100000"}, "hours"),
    ],
)
def test_a_bad_parameter_gets_a_problem_naming_it(client, path, params, parameter):
    answer = client.get(path, params=params)

    assert answer.status_code == 400
    assert answer.headers["content-type"] == "application/problem+json"
    problem = answer.json()
    assert problem["status"] == 400
    assert problem["parameter"] == parameter
    assert problem["detail"].startswith(f"{parameter}: ")
    assert problem["instance"] == path


def test_an_unknown_lead_is_a_404_problem(client):
    by_id = client.get("/api/leads/00000000-0000-4000-8000-000000000000")
    by_identity = client.get("/api/leads", params={"identity": "email:nobody@example.com"})
    timeline = client.get("/api/leads/00000000-0000-4000-8000-000000000000/timeline")

    for answer in (by_id, by_identity, timeline):
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["title"] == "Not found"
    # The problem does not repeat the e-mail address it was asked about.
    assert "nobody" not in by_identity.text


def test_with_a_token_set_the_api_needs_it_as_a_bearer_token(open_client):
    client = open_client(token="s3cret-token")  # noqa: S106 (a test token)

    missing = client.get("/api/funnel")
    wrong = client.get("/api/funnel", headers={"Authorization": "Bearer s3cret-tokeN"})
    basic = client.get("/api/funnel", headers={"Authorization": "Basic s3cret-token"})
    right = client.get("/api/funnel", headers={"Authorization": "Bearer s3cret-token"})

    for answer in (missing, wrong, basic):
        assert answer.status_code == 401
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.headers["www-authenticate"].startswith("Bearer")
    assert right.status_code == 200
    # The API's own description is behind the token too.
    assert client.get("/schema/openapi.json").status_code == 401
    schema = client.get("/schema/openapi.json", headers={"Authorization": "Bearer s3cret-token"})
    assert schema.status_code == 200
    assert "/api/funnel" in schema.json()["paths"]
    # Probes and scrapers need no token; neither does the page (its script sends it).
    assert client.get("/metrics").status_code == 200
    assert client.get("/").status_code == 200


def test_healthz_reports_an_unreachable_broker_with_503(client):
    answer = client.get("/healthz")

    assert answer.status_code == 503
    health = answer.json()
    assert health["checks"]["event_store"] == "ok"
    assert health["checks"]["views"] == "ok"
    assert health["checks"]["broker"].startswith("failing")


def test_metrics_are_prometheus_text_without_lead_ids(client):
    client.get("/api/funnel")
    text = client.get("/metrics").text

    assert "lifecycle_broker_up 0.0" in text
    assert "lifecycle_views_newest_fact_timestamp_seconds" in text
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", text)
    assert "@" not in text


def media_type_parameters(value: str) -> dict[str, str]:
    """Parameters of a media type, refused as Go's mime.ParseMediaType refuses them."""
    kind, *parameters = (part.strip() for part in value.split(";"))
    assert re.fullmatch(r"[\w.+-]+/[\w.+-]+", kind), value
    found: dict[str, str] = {}
    for parameter in parameters:
        name, sep, text = parameter.partition("=")
        assert all((sep, name, text)), f"not a parameter: {parameter!r} in {value!r}"
        assert name.lower() not in found, f"{name} given twice in {value!r}"
        found[name.lower()] = text
    return found


def test_metrics_parse_as_prometheus_text_under_a_well_formed_content_type(client):
    answer = client.get("/metrics")
    families = {f.name for f in text_string_to_metric_families(answer.text)}

    assert answer.headers["content-type"].startswith("text/plain")
    assert media_type_parameters(answer.headers["content-type"]) == {
        "version": "0.0.4",
        "charset": "utf-8",
    }
    assert {"lifecycle_broker_up", "lifecycle_parked_events", "lifecycle_position"} <= families


def test_metrics_answer_head_and_name_the_allowed_methods_otherwise(client):
    head = client.head("/metrics")
    trace = client.request("TRACE", "/metrics")

    assert head.status_code == 200
    assert head.content == b""
    assert trace.status_code == 405
    assert set(trace.headers["allow"].replace(" ", "").split(",")) >= {"GET", "HEAD"}


def test_the_openapi_document_describes_every_endpoint(client):
    paths = client.get("/schema/openapi.json").json()["paths"]

    assert set(paths) >= {
        "/api/leads",
        "/api/leads/{lead_id}",
        "/api/leads/{lead_id}/timeline",
        "/api/funnel",
        "/api/cost-per-lead",
        "/api/temperature",
        "/api/referrals",
        "/api/sla",
        "/metrics",
        "/healthz",
    }


@pytest.mark.parametrize(
    "path", ["/static/..%00/app.py", "/static/dashboard.js%00", "/static/%00", "/static/nope.js"]
)
def test_a_static_path_that_names_no_file_is_a_404_problem(client, path):
    answer = client.get(path)

    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


def test_the_dashboard_page_and_its_assets_are_served_from_the_package(client):
    page = client.get("/")
    script = client.get("/static/dashboard.js")

    assert page.status_code == 200
    assert "/static/dashboard.js" in page.text
    assert script.status_code == 200
    assert "/api/funnel" in script.text
    assert "http" not in re.sub(r"https?://(localhost|127\.0\.0\.1)", "", page.text + script.text)


@pytest.fixture(scope="module")
def thousands(tmp_path_factory):
    """A synthetic history of 2,500 people (about 2,000 leads) in a SQLite store and its views."""
    url = f"sqlite:///{tmp_path_factory.mktemp('thousands')}/lifecycle.db"
    engine = wiring.engine_at(url)
    events = [inbound.decode_structured(_encode(e)) for e in generate(people=2500)]
    for start in range(0, len(events), 1000):
        engine.record(events[start : start + 1000])
    store = ViewStore(url)
    settings = Settings(database_url=url, kafka_bootstrap=NO_BROKER)
    swap(store, fill_from_store(engine, store, default_rulebook(), settings), default_rulebook())
    api = wiring.api(settings, engine)
    with TestClient(create_app(api)) as client:
        yield client, store
    api.close()
    store.close()
    engine.close()


def test_pages_of_leads_visit_every_lead_once_in_score_order(thousands):
    client, store = thousands
    with store.reading() as tx:
        expected = tx.value(f"SELECT COUNT(*) FROM {queries.live_leads(store.active_slot(tx))} x")
    seen: list[dict] = []
    cursor = None
    while True:
        params = {"limit": "500"} | ({"cursor": cursor} if cursor else {})
        page = client.get("/api/leads", params=params).json()
        seen.extend(page["leads"])
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert expected > 1500
    assert len(seen) == expected
    assert len({lead["lead_id"] for lead in seen}) == expected
    order = [(-lead["score"], lead["lead_id"]) for lead in seen]
    assert order == sorted(order)


def test_pages_of_a_filtered_list_stay_within_the_filter(thousands):
    client, _ = thousands
    first = client.get("/api/leads", params={"stage": "customer", "limit": "100"}).json()
    second = client.get(
        "/api/leads", params={"stage": "customer", "limit": "100", "cursor": first["next_cursor"]}
    ).json()

    assert len(first["leads"]) == 100
    assert second["leads"]
    assert {lead["stage"] for lead in first["leads"] + second["leads"]} == {"customer"}
    assert not {lead["lead_id"] for lead in first["leads"]} & {
        lead["lead_id"] for lead in second["leads"]
    }


def test_announced_changes_come_in_pages_oldest_first_and_by_type(client, views, events):
    Announcer(sla_hours=24, clock=lambda: events.at(scenario.END_DAY)).everyone(views, cause="fact")
    with views.reading() as tx:
        stored = outbox.after(tx, 0, 10**6)

    seen, after = [], 0
    while after is not None:
        page = client.get("/api/changes", params={"after": after, "limit": 25}).json()
        seen.extend(page["changes"])
        after = page["next_after"]
    overdue = client.get("/api/changes", params={"type": "HandoffOverdue"}).json()["changes"]
    bad = client.get("/api/changes", params={"type": "Sneezed"})

    assert [c["id"] for c in seen] == [s.id for s in stored]
    assert [c["seq"] for c in seen] == sorted(c["seq"] for c in seen)
    assert {c["type"] for c in overdue} == {"HandoffOverdue"}
    assert len(overdue) == len(scenario.EXPECTED_SLA_OVERDUE)
    assert all(c["data"]["hours"] == 24 for c in overdue)
    assert bad.status_code == 400
    assert bad.headers["content-type"].startswith("application/problem+json")
