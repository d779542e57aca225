"""Builders for the unit tests: facts on a day grid from one fixed instant, default rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest

from lifecycle.domain.facts import Disqualification, Qualification, Touch
from lifecycle.rules import default_rulebook

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="session")
def rules():
    return default_rulebook()


@pytest.fixture
def at():
    """``at(day)``: the instant ``day`` days (a float) after T0."""

    def instant(day: float) -> datetime:
        return T0 + timedelta(days=day)

    return instant


@pytest.fixture
def next_fact_id():
    """Fact ids in creation order, so that facts at one instant apply in the order written."""
    numbers = count(1)
    return lambda: f"f{next(numbers):04d}"


@pytest.fixture
def touch(at, next_fact_id):
    """``touch(kind, day, identified=True, fact_id=None, **fields)``."""

    def build(
        kind: str,
        day: float = 0,
        *,
        identified: bool = True,
        fact_id: str | None = None,
        **fields,
    ) -> Touch:
        return Touch(
            fact_id=fact_id or next_fact_id(),
            at=at(day),
            kind=kind,
            identified=identified,
            **fields,
        )

    return build


@pytest.fixture
def qualification(at, next_fact_id):
    """``qualification(day, need=, budget=, authority=, timeline=, identified=True)``."""

    def build(
        day: float = 0,
        *,
        need: bool = False,
        budget: bool = False,
        authority: bool = False,
        timeline: bool = False,
        identified: bool = True,
        fact_id: str | None = None,
    ) -> Qualification:
        return Qualification(
            fact_id=fact_id or next_fact_id(),
            at=at(day),
            identified=identified,
            need=need,
            budget=budget,
            authority=authority,
            timeline=timeline,
        )

    return build


@pytest.fixture
def disqualification(at, next_fact_id):
    """``disqualification(day, identified=True)``."""

    def build(
        day: float = 0, *, identified: bool = True, fact_id: str | None = None
    ) -> Disqualification:
        return Disqualification(
            fact_id=fact_id or next_fact_id(),
            at=at(day),
            identified=identified,
            reason="no budget",
        )

    return build
