"""A synthetic, deterministic history of inbound CloudEvents: the demo sample and benchmark input.

People find us through campaigns, browse anonymously, identify themselves on a form, get
nurtured by e-mail and webinars, ask for demos, try the product, buy, ask to upgrade and refer
others; sales qualify and disqualify them; campaigns report what they spent. Every event is a
structured-mode CloudEvent (a dict ready for JSON) that ``lifecycle.contracts`` accepts.
All personal data is fake: ``person0042@example.com``, ``+1 555 0142 0042``.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from uuid import UUID

import msgspec

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from lifecycle.domain.vocabulary import Channel, Kind, Seniority

Event = dict[str, Any]
"""A structured-mode CloudEvent, ready for JSON."""

DEFAULT_START: Final = datetime(2026, 8, 1, tzinfo=UTC)

# Upstream systems, one CloudEvents ``source`` each.
WEB: Final = "https://www.example.com/analytics"
FORMS: Final = "https://forms.example.com"
MAIL: Final = "https://mail.example.com"
SOCIAL: Final = "https://social.example.com"
EVENTS: Final = "https://events.example.com"
CHAT: Final = "https://chat.example.com"
CALLS: Final = "https://calls.example.com"
TRIALS: Final = "https://app.example.com/trials"
SHOP: Final = "https://shop.example.com"
SUPPORT: Final = "https://support.example.com"
REVIEWS: Final = "https://reviews.example.com"
REFERRALS: Final = "https://referrals.example.com"
CRM: Final = "https://crm.example.com"
ADS: Final = "https://ads.example.com"

# Most systems stamp UTC; the form service runs in Warsaw, the call centre in New York.
_OFFSETS: Final[dict[str, timezone]] = {
    FORMS: timezone(timedelta(hours=2)),
    CALLS: timezone(timedelta(hours=-4)),
}

_SOURCE_OF_KIND: Final[dict[str, str]] = {
    "page_view": WEB,
    "pricing_page_view": WEB,
    "email_open": MAIL,
    "email_click": MAIL,
    "unsubscribe": MAIL,
    "social_engagement": SOCIAL,
    "newsletter_signup": FORMS,
    "form_fill": FORMS,
    "content_download": FORMS,
    "demo_request": FORMS,
    "quote_request": FORMS,
    "webinar_attended": EVENTS,
    "product_question": CHAT,
    "trial_start": TRIALS,
    "product_usage": TRIALS,
    "upgrade_intent": TRIALS,
    "cart_add": SHOP,
    "purchase": SHOP,
    "support_upgrade_request": SUPPORT,
    "review": REVIEWS,
    "referral": REFERRALS,
}


@dataclass(frozen=True)
class Campaign:
    """A campaign: where its touchpoints come from and how it reports spend."""

    id: str
    channel: Channel
    utm_source: str
    utm_medium: str
    period: str
    """``weekly`` or ``monthly`` spend reports."""
    currency: str
    spend_minor: tuple[int, int]
    """Range of one period's spend, in minor units."""

    def touch_data(self) -> Event:
        """The ``campaign`` of a touchpoint it brought."""
        return {
            "id": self.id,
            "channel": self.channel,
            "source": self.utm_source,
            "medium": self.utm_medium,
        }


SEARCH: Final = Campaign(
    "2026q3-search-brand", "paid_search", "google", "cpc", "weekly", "EUR", (120_000, 200_000)
)
LINKEDIN: Final = Campaign(
    "2026q3-linkedin-abm",
    "paid_social",
    "linkedin",
    "paid_social",
    "weekly",
    "EUR",
    (80_000, 140_000),
)
DISPLAY_US: Final = Campaign(
    "2026q3-display-us-retargeting",
    "display",
    "dv360",
    "display",
    "weekly",
    "USD",
    (40_000, 90_000),
)
SEO: Final = Campaign(
    "2026-seo-content", "organic_search", "google", "organic", "monthly", "EUR", (300_000, 420_000)
)
PARTNERS: Final = Campaign(
    "2026-partner-resellers",
    "partner",
    "partners",
    "referral",
    "monthly",
    "EUR",
    (200_000, 320_000),
)
NEWSLETTER: Final = Campaign(
    "2026-nurture-newsletter", "email", "newsletter", "email", "monthly", "EUR", (40_000, 65_000)
)
WEBINARS: Final = Campaign(
    "2026q3-webinar-series", "events", "webinar", "events", "monthly", "EUR", (150_000, 260_000)
)
REFERRAL_PROGRAMME: Final = Campaign(
    "2026-customer-referrals",
    "referral",
    "customers",
    "referral",
    "monthly",
    "EUR",
    (50_000, 90_000),
)
CAMPAIGNS: Final = (
    SEARCH,
    LINKEDIN,
    DISPLAY_US,
    SEO,
    PARTNERS,
    NEWSLETTER,
    WEBINARS,
    REFERRAL_PROGRAMME,
)

# How people first find us; None is a direct visit.
_ACQUISITION: Final[tuple[tuple[Campaign | None, float], ...]] = (
    (SEARCH, 0.25),
    (LINKEDIN, 0.2),
    (DISPLAY_US, 0.1),
    (SEO, 0.2),
    (PARTNERS, 0.1),
    (None, 0.15),
)

_FIRST_NAMES: Final = (
    "Ada", "Ben", "Chen", "Dana", "Eli", "Fatima", "Goran", "Hana", "Ivan", "Jana",
    "Kofi", "Lena", "Mateo", "Noa", "Olga", "Piotr", "Rosa", "Sami", "Tamar", "Yael",
)  # fmt: skip
_LAST_NAMES: Final = (
    "Doe", "Roe", "Sample", "Example", "Mustermann", "Kowalski", "Nowak", "Cohen", "Petrenko",
    "Rahimi",
)  # fmt: skip
_COMPANIES: Final = (
    "Acme Corp", "Globex", "Initech", "Umbrella Ltd", "Hooli", "Vandelay Industries",
    "Example Labs", "Sample Sp. z o.o.", "Demo GmbH", "Placeholder BV",
)  # fmt: skip
_COUNTRIES: Final = ("DE", "FR", "NL", "PL", "GB", "ES", "IT", "IL", "UA", "US")
_SENIORITIES: Final[tuple[Seniority, ...]] = (
    "c_level", "vp", "director", "manager", "individual", "other",
)  # fmt: skip
_SENIORITY_WEIGHTS: Final = (0.05, 0.1, 0.2, 0.3, 0.3, 0.05)
_COMPANY_SIZES: Final = (3, 12, 40, 85, 150, 400, 1200, 5000)
_PAGES: Final = (
    "/", "/blog/what-is-an-mql", "/blog/bant-explained", "/features", "/customers", "/integrations",
)  # fmt: skip
_ASSETS: Final = ("ebook-lead-scoring", "checklist-bant", "report-cost-per-lead-2026")
_WEBINAR_TOPICS: Final = ("lead-scoring-101", "bant-in-practice", "pql-playbook")
_FEATURES: Final = ("pipeline", "scoring", "reports", "import", "integrations")
_PLANS: Final = (("starter", 34_800), ("team", 118_800), ("business", 478_800))
_ASSESSORS: Final = ("sdr-anna", "sdr-ben", "ae-carla")
_EARLY_REASONS: Final = ("student", "competitor", "no budget", "company too small", "unresponsive")
_LATE_REASONS: Final = ("lost to competitor", "no budget this year", "unresponsive")


@dataclass(frozen=True)
class _Person:
    """One synthetic person, with obviously fake personal data."""

    number: int
    anonymous_id: str
    campaign: Campaign | None
    first_name: str
    last_name: str
    company: str
    seniority: Seniority
    company_size: int
    country: str

    @property
    def email(self) -> str:
        return f"person{self.number:04d}@example.com"

    @property
    def phone(self) -> str:
        return f"+1 555 01{self.number % 100:02d} {self.number:04d}"

    @property
    def customer_id(self) -> str:
        return f"cus_{self.number:05d}"

    @property
    def currency(self) -> str:
        return "USD" if self.country == "US" else "EUR"

    def anonymous(self) -> Event:
        """As the web tracker knows them: a cookie."""
        return {"anonymous_id": self.anonymous_id}

    def known(self) -> Event:
        """As systems that know their e-mail know them."""
        return {"email": self.email}

    def identifying(self) -> Event:
        """The moment the cookie gets a name: a form with the tracker's id and the e-mail."""
        return {"anonymous_id": self.anonymous_id, "email": self.email}

    def profile(self) -> Event:
        """What they tell us on a form."""
        return {
            "first_name": self.first_name,
            "last_name": self.last_name,
            "company": self.company,
            "seniority": self.seniority,
            "company_size": self.company_size,
            "country": self.country,
        }


@dataclass(frozen=True)
class _Customer:
    email: str
    since: datetime


class _Clock:
    """A person's own time line: each wait moves it on; past the window their journey ends."""

    def __init__(self, rng: random.Random, at: datetime, end: datetime) -> None:
        self.rng = rng
        self.at = at
        self.end = end

    def wait(self, low_hours: float, high_hours: float) -> bool:
        """Move on by a random whole number of seconds; whether still inside the window."""
        self.at += timedelta(seconds=round(self.rng.uniform(low_hours, high_hours) * 3600))
        return self.at < self.end


class _History:
    """Collects the events of one generated history."""

    def __init__(self, rng: random.Random, start: datetime, days: int) -> None:
        self.rng = rng
        self.start = start
        self.end = start + timedelta(days=days)
        self.events: list[tuple[datetime, Event]] = []
        self.customers: list[_Customer] = []

    def clock(self, low: datetime | None = None, high: datetime | None = None) -> _Clock:
        """A clock at a random second from low to high (default: the first 85% of the window)."""
        low = low or self.start
        high = high or self.start + (self.end - self.start) * 0.85
        seconds = max(int((high - low).total_seconds()), 1)
        return _Clock(self.rng, low + timedelta(seconds=self.rng.randrange(seconds)), self.end)

    def chance(self, probability: float) -> bool:
        """True with the given probability."""
        return self.rng.random() < probability

    def emit(self, event_type: str, source: str, at: datetime, data: Event) -> None:
        """Record one CloudEvent, stamped in its source's own offset."""
        event_id = UUID(int=self.rng.getrandbits(128), version=4)
        self.events.append(
            (
                at,
                {
                    "specversion": "1.0",
                    "type": event_type,
                    "source": source,
                    "id": str(event_id),
                    "time": at.astimezone(_OFFSETS.get(source, UTC)).isoformat(),
                    "datacontenttype": "application/json",
                    "data": data,
                },
            )
        )

    def touch(
        self,
        at: datetime,
        kind: Kind,
        identity: Event,
        campaign: Campaign | None = None,
        **fields: Any,  # noqa: ANN401 (the optional touchpoint fields, as the contract names them)
    ) -> None:
        """A ``lead.touchpoint`` from the system that records this kind."""
        source = fields.pop("source", _SOURCE_OF_KIND[kind])
        data: Event = {"kind": kind, "identity": identity}
        if campaign is not None:
            data["campaign"] = campaign.touch_data()
        data.update(fields)
        self.emit("lead.touchpoint", source, at, data)

    def qualify(self, at: datetime, person: _Person, criteria_met: int) -> None:
        """Sales assessed the person by BANT; ``criteria_met`` of the four hold."""
        met = self.rng.sample(("need", "budget", "authority", "timeline"), criteria_met)
        data: Event = {"identity": person.known()}
        for criterion in ("need", "budget", "authority", "timeline"):
            data[criterion] = criterion in met
        data["assessed_by"] = self.rng.choice(_ASSESSORS)
        self.emit("lead.qualification", CRM, at, data)

    def disqualify(self, at: datetime, person: _Person, reasons: tuple[str, ...]) -> None:
        """Sales gave up on the person."""
        data = {"identity": person.known(), "reason": self.rng.choice(reasons)}
        self.emit("lead.disqualification", CRM, at, data)


def _new_person(rng: random.Random, number: int) -> _Person:
    campaigns = [campaign for campaign, _ in _ACQUISITION]
    weights = [weight for _, weight in _ACQUISITION]
    campaign = rng.choices(campaigns, weights)[0]
    return _Person(
        number=number,
        anonymous_id=f"anon-{rng.getrandbits(64):016x}",
        campaign=campaign,
        first_name=rng.choice(_FIRST_NAMES),
        last_name=rng.choice(_LAST_NAMES),
        company=rng.choice(_COMPANIES),
        seniority=rng.choices(_SENIORITIES, _SENIORITY_WEIGHTS)[0],
        company_size=rng.choice(_COMPANY_SIZES),
        # The US retargeting campaign only reaches people in the US.
        country="US" if campaign is DISPLAY_US else rng.choice(_COUNTRIES),
    )


# Steps shared by the journeys. Each returns whether the journey is still inside the window.


def _browse(h: _History, person: _Person, clock: _Clock, visits: int) -> bool:
    """Anonymous page views, the first one from the campaign that brought them."""
    for visit in range(visits):
        if visit and not clock.wait(0.02, 72):
            return False
        h.touch(
            clock.at,
            "page_view",
            person.anonymous(),
            person.campaign if visit == 0 else None,
            properties={"path": h.rng.choice(_PAGES)},
        )
    return True


def _nurture(h: _History, person: _Person, clock: _Clock, mailings: int) -> bool:
    """Newsletters opened, some clicked, the odd social like."""
    for _ in range(mailings):
        if not clock.wait(72, 240):
            return False
        mailing = {"mailing": f"newsletter-{clock.at.date().isoformat()}"}
        h.touch(clock.at, "email_open", person.known(), NEWSLETTER, properties=mailing)
        if h.chance(0.35) and clock.wait(0.01, 6):
            h.touch(clock.at, "email_click", person.known(), NEWSLETTER, properties=mailing)
        if h.chance(0.1) and clock.wait(1, 48):
            h.touch(clock.at, "social_engagement", person.known(), LINKEDIN)
    return clock.at < clock.end


def _webinars(h: _History, person: _Person, clock: _Clock, count: int) -> bool:
    for _ in range(count):
        if not clock.wait(48, 400):
            return False
        topic = {"webinar": h.rng.choice(_WEBINAR_TOPICS)}
        h.touch(clock.at, "webinar_attended", person.known(), WEBINARS, properties=topic)
    return True


def _identify_on_form(h: _History, person: _Person, clock: _Clock, form: str) -> bool:
    if not clock.wait(0.01, 2):
        return False
    h.touch(
        clock.at,
        "form_fill",
        person.identifying(),
        person.campaign,
        profile=person.profile(),
        properties={"form": form},
    )
    return True


def _buy(h: _History, person: _Person, clock: _Clock) -> None:
    """A purchase; from now on the shop and support know them by a customer id too."""
    plan, amount_minor = h.rng.choice(_PLANS)
    h.touch(
        clock.at,
        "purchase",
        {"email": person.email, "customer_id": person.customer_id},
        amount_minor=amount_minor,
        currency=person.currency,
        properties={"plan": plan, "order_id": f"ord-{person.number:05d}"},
    )
    h.customers.append(_Customer(person.email, clock.at))
    _customer_life(h, person, clock)


def _customer_life(h: _History, person: _Person, clock: _Clock) -> None:
    """Customers review, and some want more: a higher plan in the app or through support."""
    by_customer_id = {"customer_id": person.customer_id}
    if h.chance(0.25) and clock.wait(72, 500):
        h.touch(clock.at, "review", by_customer_id, properties={"stars": h.rng.randint(3, 5)})
    if h.chance(0.3) and clock.wait(72, 700):
        h.touch(clock.at, "support_upgrade_request", by_customer_id)
    elif h.chance(0.2) and clock.wait(72, 700):
        h.touch(clock.at, "upgrade_intent", person.known(), properties={"to_plan": "business"})


# The journeys: one per kind of person.


def _anonymous_visitor(h: _History, person: _Person) -> None:
    """Browses a few pages, maybe the pricing page, and never says who they are."""
    clock = h.clock()
    if not _browse(h, person, clock, visits=h.rng.randint(1, 4)):
        return
    if h.chance(0.3) and clock.wait(0.01, 48):
        h.touch(clock.at, "pricing_page_view", person.anonymous())


def _newsletter_subscriber(h: _History, person: _Person) -> None:
    """Signs up for the newsletter, reads it for a while, and sometimes unsubscribes."""
    clock = h.clock()
    if not _browse(h, person, clock, visits=h.rng.randint(1, 3)) or not clock.wait(0.01, 2):
        return
    h.touch(
        clock.at,
        "newsletter_signup",
        person.identifying(),
        person.campaign,
        profile={"first_name": person.first_name},
    )
    if not _nurture(h, person, clock, mailings=h.rng.randint(2, 6)):
        return
    if h.chance(0.2) and clock.wait(24, 240):
        h.touch(clock.at, "unsubscribe", person.known(), NEWSLETTER)


def _content_lead(h: _History, person: _Person) -> None:
    """Downloads gated content, attends webinars, looks at prices; sales rarely bite."""
    clock = h.clock()
    if not _browse(h, person, clock, visits=h.rng.randint(1, 3)):
        return
    if not _identify_on_form(h, person, clock, form="content-download") or not clock.wait(0, 0.01):
        return
    asset = {"asset": h.rng.choice(_ASSETS)}
    h.touch(clock.at, "content_download", person.known(), person.campaign, properties=asset)
    if not _webinars(h, person, clock, count=h.rng.randint(0, 2)):
        return
    if not _nurture(h, person, clock, mailings=h.rng.randint(1, 4)):
        return
    if h.chance(0.5) and clock.wait(1, 120):
        h.touch(clock.at, "pricing_page_view", person.anonymous())
    if h.chance(0.3) and clock.wait(24, 240):
        h.qualify(clock.at, person, criteria_met=h.rng.randint(0, 2))
    if h.chance(0.2) and clock.wait(24, 240):
        h.disqualify(clock.at, person, _EARLY_REASONS)


def _ask_for_a_demo(h: _History, person: _Person, clock: _Clock) -> bool:
    """Identifies on the contact form, checks prices, asks for a demo.

    Some call first: a phone-only lead, until they ask for a callback on the phone and give their
    e-mail too, which shows the two leads are one person.
    """
    called_first = h.chance(0.2)
    if called_first:
        if not clock.wait(0.5, 48):
            return False
        h.touch(clock.at, "product_question", {"phone": person.phone}, source=CALLS)
    if not _identify_on_form(h, person, clock, form="contact-sales") or not clock.wait(0.1, 72):
        return False
    h.touch(clock.at, "pricing_page_view", person.anonymous())
    if not clock.wait(0.1, 72):
        return False
    if called_first:
        both = {"email": person.email, "phone": person.phone}
        h.touch(clock.at, "demo_request", both, source=CALLS)
    else:
        h.touch(clock.at, "demo_request", person.known(), person.campaign)
    if h.chance(0.3) and clock.wait(1, 48):
        h.touch(clock.at, "product_question", person.known(), properties={"topic": "security"})
    return clock.at < clock.end


def _sales_lead(h: _History, person: _Person) -> None:
    """Asks for a demo, gets qualified by BANT, asks for a quote, and often buys."""
    clock = h.clock()
    if not _browse(h, person, clock, visits=h.rng.randint(1, 3)):
        return
    if not _ask_for_a_demo(h, person, clock):
        return
    # Some see a webinar before sales call back: a second campaign on the way to buying.
    if h.chance(0.4) and not _webinars(h, person, clock, count=1):
        return
    if not clock.wait(24, 120):
        return
    criteria_met = h.rng.choice((2, 3, 3, 4, 4))
    h.qualify(clock.at, person, criteria_met)
    if criteria_met < 3:
        if h.chance(0.5) and clock.wait(24, 240):
            h.disqualify(clock.at, person, _LATE_REASONS)
        return
    if clock.wait(24, 240):
        _decide(h, person, clock)


def _decide(h: _History, person: _Person, clock: _Clock) -> None:
    """A qualified lead asks for a quote, perhaps reads a customer story, and often buys."""
    h.touch(clock.at, "quote_request", person.known())
    if not clock.wait(48, 340):
        return
    if h.chance(0.3):  # a customer story from the newsletter while they decide
        mailing = {"mailing": "case-study"}
        h.touch(clock.at, "email_click", person.known(), NEWSLETTER, properties=mailing)
        if not clock.wait(1, 72):
            return
    if h.chance(0.65):
        _buy(h, person, clock)
    elif h.chance(0.5):
        h.disqualify(clock.at, person, _LATE_REASONS)


def _trial_user(h: _History, person: _Person) -> None:
    """Starts a trial, uses the product; those who use it a lot want the paid plan."""
    clock = h.clock()
    if not _browse(h, person, clock, visits=h.rng.randint(1, 3)):
        return
    if not _identify_on_form(h, person, clock, form="trial-signup") or not clock.wait(0, 0.02):
        return
    h.touch(clock.at, "trial_start", person.known(), properties={"plan": "team-trial"})
    if h.chance(0.4) and clock.wait(12, 48):  # the trial's welcome mailing, clicked
        mailing = {"mailing": "trial-tips"}
        h.touch(clock.at, "email_click", person.known(), NEWSLETTER, properties=mailing)
    usages = h.rng.randint(0, 9)
    for _ in range(usages):
        if not clock.wait(6, 60):
            return
        usage = {"feature": h.rng.choice(_FEATURES), "minutes": h.rng.randint(2, 90)}
        h.touch(clock.at, "product_usage", person.known(), properties=usage)
    if usages < 3:
        _nurture(h, person, clock, mailings=h.rng.randint(0, 2))
        return
    if not (h.chance(0.6) and clock.wait(1, 72)):
        return
    h.touch(clock.at, "upgrade_intent", person.known(), properties={"to_plan": "team"})
    if h.chance(0.7) and clock.wait(0.5, 120):
        _buy(h, person, clock)


def _shopper(h: _History, person: _Person) -> None:
    """Adds a plan to the cart; most check out at once, some after a reminder e-mail."""
    clock = h.clock()
    if not _browse(h, person, clock, visits=h.rng.randint(1, 3)) or not clock.wait(0.01, 24):
        return
    h.touch(clock.at, "cart_add", person.identifying(), properties={"sku": "team-annual"})
    if h.chance(0.7):
        if clock.wait(0.05, 3):
            _buy(h, person, clock)
        return
    if not clock.wait(24, 72):
        return
    mailing = {"mailing": "cart-reminder"}
    h.touch(clock.at, "email_click", person.known(), NEWSLETTER, properties=mailing)
    if h.chance(0.3) and clock.wait(0.01, 1):
        _buy(h, person, clock)


def _referred_lead(h: _History, person: _Person, referrers: list[_Customer]) -> None:
    """A customer refers them; they ask for a demo and often buy."""
    referrer = h.rng.choice(referrers)
    clock = h.clock(low=referrer.since + timedelta(hours=1), high=h.end - timedelta(hours=1))
    h.touch(
        clock.at,
        "referral",
        person.known(),
        REFERRAL_PROGRAMME,
        profile=person.profile(),
        referrer={"email": referrer.email},
    )
    if not clock.wait(1, 96):
        return
    h.touch(clock.at, "demo_request", person.known(), REFERRAL_PROGRAMME)
    if not clock.wait(24, 120):
        return
    h.qualify(clock.at, person, criteria_met=h.rng.choice((3, 4)))
    if h.chance(0.5) and clock.wait(48, 240):
        _buy(h, person, clock)


_Journey = Callable[[_History, _Person], None]
_JOURNEYS: Final[tuple[tuple[_Journey | None, float], ...]] = (
    (_anonymous_visitor, 0.18),
    (_newsletter_subscriber, 0.18),
    (_content_lead, 0.2),
    (_sales_lead, 0.16),
    (_trial_user, 0.14),
    (_shopper, 0.06),
    (None, 0.08),  # referred by a customer: generated once the customers are known
)


def _periods(period: str, first_day: date, last_day: date) -> Iterator[tuple[date, date]]:
    """Weekly periods from the first day, or calendar months; the last one cut at last_day."""
    day = first_day
    while day <= last_day:
        if period == "weekly":
            following = day + timedelta(days=7)
        else:
            following = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
        yield day, min(following - timedelta(days=1), last_day)
        day = following


def _spend(h: _History) -> None:
    """Each campaign reports its spend at the end of every period."""
    last_instant = h.end - timedelta(minutes=1)
    for campaign in CAMPAIGNS:
        for first, last in _periods(campaign.period, h.start.date(), last_instant.date()):
            at = min(datetime.combine(last, time(23, 0), UTC), last_instant)
            data = {
                "campaign": {"id": campaign.id, "channel": campaign.channel},
                "amount_minor": h.rng.randint(*campaign.spend_minor),
                "currency": campaign.currency,
                "period_start": first.isoformat(),
                "period_end": last.isoformat(),
            }
            h.emit("campaign.spend", ADS, at, data)


def generate(
    *,
    people: int = 300,
    days: int = 90,
    seed: int = 7,
    start: datetime = DEFAULT_START,
) -> list[Event]:
    """A history of ``people`` people and the campaigns' spend over ``days`` days, by event time."""
    if start.tzinfo is None:
        raise ValueError("start needs a time zone")
    if days < 1:
        raise ValueError("days must be at least 1")
    rng = random.Random(seed)  # noqa: S311 (synthetic data, not security)
    h = _History(rng, start, days)
    journeys = [journey for journey, _ in _JOURNEYS]
    weights = [weight for _, weight in _JOURNEYS]
    referred: list[_Person] = []
    for number in range(1, people + 1):
        person = _new_person(rng, number)
        journey = rng.choices(journeys, weights)[0]
        if journey is None:
            referred.append(person)
        else:
            journey(h, person)
    # Referrals need customers who bought before the referral (and a little time left for it).
    referrers = [c for c in h.customers if c.since < h.end - timedelta(days=2)]
    for person in referred:
        if referrers:
            _referred_lead(h, person, referrers)
        else:
            _content_lead(h, person)
    _spend(h)
    h.events.sort(key=lambda pair: pair[0])
    return [event for _, event in h.events]


_ENCODER: Final = msgspec.json.Encoder()


def write_jsonl_gz(events: Iterable[Event], path: Path) -> None:
    """Write one JSON event a line, gzipped; reproducible bytes (no name or time in the header)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        for event in events:
            out.write(_ENCODER.encode(event) + b"\n")


def read_jsonl_gz(path: Path) -> Iterator[bytes]:
    """The raw lines of a gzipped JSON-lines file, without their line ends."""
    with gzip.open(path, "rb") as lines:
        for line in lines:
            stripped = line.rstrip(b"\r\n")
            if stripped:
                yield stripped


def bundled_sample() -> Path:
    """The sample history shipped with the package: ``generate()`` with its defaults."""
    # The package is installed as plain files (not zipped), so the resource is a real path.
    return Path(str(files("lifecycle.demo").joinpath("history.jsonl.gz")))
