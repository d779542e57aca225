"""Six journeys through three campaigns, with their attribution worked out by hand.

Day N is ``events.at(N)`` (day 0 = 2026-03-02T09:00:00Z). Campaigns: ``search`` (paid_search),
``mail`` (email), ``webinar`` (events); each spent in March 2026, in EUR.

- amy: search's ad (anonymous, day 0), mail's form (day 1: the lead), webinar's demo request
  (day 2: sales-ready, and MQL on the same fact), a purchase of 1,000.00 EUR on day 4.
- bob: search's form (day 0: the lead), mail's click (day 3), a purchase of 500.00 EUR on day 5.
- cy: a form with no campaign (day 1), a purchase of 200.00 EUR on day 2.
- dot: mail's form (day 0); nothing more.
- eve: webinar's ad (anonymous, day 0), a form with no campaign (day 1); nothing more.
- fay: a form with no campaign (day 0: acquired ``direct``), mail's click on day 6: from then on
  acquired by mail (the earliest campaign touch), though she became a lead before it.

Customer conversions: amy (day 4), bob (day 5), cy (day 2). Their credited touches, in order:
amy [search@0, mail@1, webinar@2], bob [search@0, mail@3], cy none (no campaign, ``direct``).

Heuristic models (time decay halves every 7 days: ``f(a) = 2 ** (-a / 7)``, ages at purchase):

- first touch: search 2 (amy, bob), cy 1 to no campaign.
- last touch: webinar 1 (amy), mail 1 (bob), no campaign 1.
- linear: amy 1/3 each, bob 1/2 each: search 5/6, mail 5/6, webinar 1/3, none 1.
- position-based: amy 40/20/40, bob 50/50: search 0.9, mail 0.7, webinar 0.4, none 1.
- W-shaped: amy's first touch search, lead touch mail (day 1), sales-ready touch webinar (day
  2): 30% each, nothing else, scaled to 1/3 each. bob: search is first and lead touch (60%),
  no sales-ready touch, mail the rest (10%), scaled: 6/7 and 1/7. search 1/3 + 6/7 = 25/21,
  mail 1/3 + 1/7 = 10/21, webinar 1/3, none 1.
- time decay: amy f(4), f(3), f(2) for search, mail, webinar; bob f(5), f(2) for search, mail.

Data-driven (paths of customer conversions): amy search > mail > webinar (converts), bob
search > mail (converts), dot mail, eve webinar, fay mail (none converts; a path that does not
convert is the touches within the lookback of its last one). start -> search 2/5, mail 2/5,
webinar 1/5; search -> mail 1; mail -> webinar 1/4, conversion 1/4, null 1/2; webinar ->
conversion, null 1/2 each. From webinar 1/2 converts, from mail 1/4 * 1/2 + 1/4 = 3/8, from
search 3/8: P(conversion) = 2/5 * 3/8 * 2 + 1/5 * 1/2 = 2/5. Without search 1/4 (RE 3/8),
without mail 1/10 (RE 3/4), without webinar 1/5 (RE 1/2). Two conversions shared 3 : 6 : 4:
search 6/13, mail 12/13, webinar 8/13 (and cy's 1 to none).
Revenue: a conversion ending in mail is worth 500.00, in webinar 1,000.00. Expected visits:
search 2/5, mail 4/5, webinar 2/5, so 1/5 converts from mail and 1/5 from webinar. Removing
search leaves mail 2/5 * 1/4 = 1/10 and webinar 3/10 * 1/2 = 3/20: it loses 1/10 * 500 + 1/20
* 1000 = 100; removing mail loses 1/5 * 500 + 1/10 * 1000 = 200; removing webinar loses 1/5 *
1000 = 200. 1,500.00 shared 1 : 2 : 2: search 300.00, mail 600.00, webinar 600.00 (and cy's
200.00 to none).

Lead quality, customer conversion, by acquisition campaign (now): search 2 of 2 (amy, bob), no
campaign 1 of 1 (cy), mail 0 of 2 (dot, fay since day 6), webinar 0 of 1 (eve). Cohorts: amy
was acquired on 2026-03-03 and bought on 03-06 (day 3), bob acquired on 03-02 bought on 03-07
(day 5).
"""

from __future__ import annotations

from typing import Any

SEARCH = {"id": "search", "channel": "paid_search"}
MAIL = {"id": "mail", "channel": "email"}
WEBINAR = {"id": "webinar", "channel": "events"}
SPEND = {"search": 30_000, "mail": 10_000, "webinar": 20_000}


def _f(age: float) -> float:
    return 2 ** (-age / 7)


_AMY = _f(4) + _f(3) + _f(2)
_BOB = _f(5) + _f(2)
CREDIT = {
    "first_touch": {"search": 2.0, None: 1.0},
    "last_touch": {"webinar": 1.0, "mail": 1.0, None: 1.0},
    "linear": {"search": 5 / 6, "mail": 5 / 6, "webinar": 1 / 3, None: 1.0},
    "position_based": {"search": 0.9, "mail": 0.7, "webinar": 0.4, None: 1.0},
    "w_shaped": {"search": 25 / 21, "mail": 10 / 21, "webinar": 1 / 3, None: 1.0},
    "time_decay": {
        "search": _f(4) / _AMY + _f(5) / _BOB,
        "mail": _f(3) / _AMY + _f(2) / _BOB,
        "webinar": _f(2) / _AMY,
        None: 1.0,
    },
    "markov": {"search": 6 / 13, "mail": 12 / 13, "webinar": 8 / 13, None: 1.0},
}
"""Customer conversions credited per campaign, per model."""
REVENUE = {
    "first_touch": {"search": 150_000.0, None: 20_000.0},
    "markov": {"search": 30_000.0, "mail": 60_000.0, "webinar": 60_000.0, None: 20_000.0},
}
"""Their revenue (EUR, minor units) under two of the models."""


def history(events: Any) -> list[dict[str, Any]]:
    """The journeys as structured-mode CloudEvents, in arrival order."""
    e = events
    amy, bob, cy, dot, eve, fay = (
        f"{name}@example.com" for name in ("amy", "bob", "cy", "dot", "eve", "fay")
    )
    return [
        e.touchpoint("page_view", 0, anonymous_id="cookie-amy", campaign=SEARCH),
        e.touchpoint("form_fill", 1, anonymous_id="cookie-amy", email=amy, campaign=MAIL),
        e.touchpoint("demo_request", 2, email=amy, campaign=WEBINAR),
        e.touchpoint("purchase", 4, email=amy, amount_minor=100_000, currency="EUR"),
        e.touchpoint("form_fill", 0, email=bob, campaign=SEARCH),
        e.touchpoint("email_click", 3, email=bob, campaign=MAIL),
        e.touchpoint("purchase", 5, email=bob, amount_minor=50_000, currency="EUR"),
        e.touchpoint("form_fill", 1, email=cy),
        e.touchpoint("purchase", 2, email=cy, amount_minor=20_000, currency="EUR"),
        e.touchpoint("form_fill", 0, email=dot, campaign=MAIL),
        e.touchpoint("page_view", 0, anonymous_id="cookie-eve", campaign=WEBINAR),
        e.touchpoint("form_fill", 1, anonymous_id="cookie-eve", email=eve),
        e.touchpoint("form_fill", 0, email=fay),
        e.touchpoint("email_click", 6, email=fay, campaign=MAIL),
        *(
            e.spend(name, amount, channel=campaign["channel"])
            for (name, amount), campaign in zip(SPEND.items(), (SEARCH, MAIL, WEBINAR), strict=True)
        ),
    ]
