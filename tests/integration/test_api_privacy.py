"""Erase and export over the API: only the admin token may, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import scenario
from litestar.testing import TestClient

from lifecycle import wiring
from lifecycle.adapters.keyring import new_master_key
from lifecycle.api.app import create_app
from lifecycle.settings import Settings

READ, ADMIN = "read-token", "admin-token"


@pytest.fixture
def open_client(database_url, events):
    """``open_client(admin=...)``: the API over the scenario in a sealed store."""
    opened = []

    def open_(admin: str = ADMIN, master: str | None = None) -> TestClient:
        settings = Settings(
            database_url=database_url,
            kafka_bootstrap="127.0.0.1:9",
            api_token=READ,
            admin_token=admin,
            master_key=new_master_key() if master is None else master,
        )
        engine = wiring.engine(settings)
        engine.record(events.decode(*scenario.history(events)))
        api = wiring.api(settings, engine)
        client = TestClient(create_app(api)).__enter__()
        opened.append((client, api, engine))
        return client

    yield open_
    for client, api, engine in opened:
        client.__exit__(None, None, None)
        api.close()
        engine.close()


def lead_of(client: TestClient, email: str) -> str:
    answer = client.get(
        "/api/leads",
        params={"identity": f"email:{email}"},
        headers={"Authorization": f"Bearer {READ}"},
    )
    return answer.json()["lead_id"]


def test_only_the_admin_token_erases_and_exports(open_client):
    client = open_client()
    lead = lead_of(client, "quinn@example.com")
    erase, export = f"/api/leads/{lead}/erase", f"/api/leads/{lead}/export"

    assert client.post(erase).status_code == 401
    assert client.post(erase, headers={"Authorization": f"Bearer {READ}"}).status_code == 403
    assert client.get(export, headers={"Authorization": f"Bearer {READ}"}).status_code == 403
    assert client.get(export).status_code == 401
    problem = client.post(erase, headers={"Authorization": f"Bearer {READ}"})
    assert problem.headers["content-type"].startswith("application/problem+json")


def test_with_no_admin_token_set_nobody_erases(open_client):
    client = open_client(admin="")
    lead = lead_of(client, "quinn@example.com")

    refused = client.post(f"/api/leads/{lead}/erase", headers={"Authorization": f"Bearer {READ}"})

    assert refused.status_code == 403
    assert "not set" in refused.json()["detail"]


def test_the_admin_token_exports_the_person_then_erases_them_once(open_client):
    client = open_client()
    admin = {"Authorization": f"Bearer {ADMIN}"}
    lead = lead_of(client, "oli@example.com")

    before = client.get(f"/api/leads/{lead}/export", headers=admin)
    erased = client.post(f"/api/leads/{lead}/erase", params={"reason": "gdpr_art17"}, headers=admin)
    again = client.post(f"/api/leads/{lead}/erase", headers=admin)
    after = client.get(f"/api/leads/{lead}/export", headers=admin)
    shown = client.get(f"/api/leads/{lead}", headers={"Authorization": f"Bearer {READ}"})

    assert before.status_code == 200
    assert "oli@example.com" in before.text
    assert scenario.OLI_PHONE in before.text
    assert erased.status_code == 200
    assert erased.json()["already"] is False
    assert len(erased.json()["leads"]) == 2
    assert again.json()["already"] is True
    assert after.status_code == 200
    assert "oli@example.com" not in after.text
    assert scenario.OLI_PHONE not in after.text
    assert shown.json()["stage"] == "sql"
    assert "oli@example.com" not in shown.text
    missing = client.get("/api/leads", params={"identity": "email:oli@example.com"}, headers=admin)
    assert missing.status_code == 404


def test_a_reason_that_is_not_a_code_is_a_problem_naming_it(open_client):
    client = open_client()
    lead = lead_of(client, "quinn@example.com")

    answer = client.post(
        f"/api/leads/{lead}/erase",
        params={"reason": "she asked"},
        headers={"Authorization": f"Bearer {ADMIN}"},
    )

    assert answer.status_code == 400
    assert answer.json()["parameter"] == "reason"
