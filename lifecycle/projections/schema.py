"""The DDL of the view tables and of the SQL views dashboards read (stable, documented columns).

Instants are TIMESTAMPTZ on PostgreSQL and fixed-width ISO 8601 text in UTC on SQLite
(``2026-03-02 09:00:00.000000+00:00``), which sorts and compares like the instants it names.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from lifecycle.domain.vocabulary import HEURISTIC_MODELS, Stage

# The stages a lead row keeps a became_<stage>_at of (a visitor is no lead yet).
STAGES = tuple(stage.value for stage in Stage if stage is not Stage.VISITOR)
# Those the funnel reads, and the funnel's own stages (sales_ready: sql or pql, whichever came
# first); then the steps it reports.
FUNNEL_ENTERED = ("lead", "mql", "sql", "pql", "customer")
FUNNEL = ("lead", "mql", "sql", "pql", "sales_ready", "customer")
STEPS = (("lead", "mql"), ("mql", "sales_ready"), ("sales_ready", "customer"), ("lead", "customer"))
STEP_NAMES = tuple(f"{before}_to_{after}" for before, after in STEPS)
# Columns of lifecycle_funnel: leads that reached each stage, then leads that made each step.
FUNNEL_COUNTS = (*(f"reached_{stage}" for stage in FUNNEL), *STEP_NAMES)

# Per slot: what each lead adds to attribution and lead quality, and the totals of it.
CREDIT_TABLES = (
    "lifecycle_credits_due",
    "lifecycle_lead_credits",
    "lifecycle_attribution",
    "lifecycle_attribution_revenue",
    "lifecycle_paths",
    "lifecycle_path_revenue",
    "lifecycle_outcomes",
    "lifecycle_outcome_totals",
)
# Per slot: the tables a replay rebuilds.
SLOT_TABLES = (
    "lifecycle_leads",
    "lifecycle_lead_facts",
    "lifecycle_lead_revenue",
    "lifecycle_stage_history",
    "lifecycle_spend",
    "lifecycle_funnel",
    "lifecycle_funnel_revenue",
    "lifecycle_stage_days",
    "lifecycle_merges",
    "lifecycle_offsets",
    *CREDIT_TABLES,
)


# Remembered: a lead's instants are written again each time it changes (its row, its stage
# history), and formatting them was a fifth of what the views worker did.
@lru_cache(maxsize=2**16)
def sqlite_instant(value: datetime) -> str:
    """How SQLite stores an instant."""
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(sep=" ", timespec="microseconds")


def instant(value: object) -> datetime | None:
    """An instant read from a view row (TIMESTAMPTZ or ISO text), or one in hand, in UTC."""
    if value is None:
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo is UTC else value.astimezone(UTC)
    return datetime.fromisoformat(str(value))


def _types(dialect: str) -> dict[str, str]:
    if dialect == "postgres":
        return {
            "ts": "TIMESTAMPTZ",
            "float": "DOUBLE PRECISION",
            "big": "BIGINT",
            "date": "DATE",
            "clustered": "",
        }
    # A table of totals read in key order: its rows kept in its key's B-tree (no rowid).
    return {
        "ts": "TEXT",
        "float": "REAL",
        "big": "INTEGER",
        "date": "TEXT",
        "clustered": " WITHOUT ROWID",
    }


def state_table() -> str:
    """Which slot the views read, and with which rules it was built."""
    return (
        "CREATE TABLE IF NOT EXISTS lifecycle_views_state ("
        "id INTEGER PRIMARY KEY, active_slot TEXT NOT NULL, rules_version TEXT)"
    )


def tables(slot: str, dialect: str) -> list[str]:
    """CREATE TABLE statements of one slot."""
    t = _types(dialect)
    became = ", ".join(f"became_{stage}_at {t['ts']}" for stage in STAGES)
    return [
        f"""CREATE TABLE IF NOT EXISTS lifecycle_leads_{slot} (
            lead_id TEXT PRIMARY KEY,
            version INTEGER NOT NULL,
            merged_into TEXT,
            stage TEXT,
            is_lead INTEGER NOT NULL,
            fit INTEGER NOT NULL,
            engagement {t["float"]} NOT NULL,
            engaged_at {t["ts"]},
            score {t["float"]} NOT NULL,
            hot_until {t["ts"]},
            warm_until {t["ts"]},
            first_fact_at {t["ts"]},
            last_fact_at {t["ts"]},
            last_touch_at {t["ts"]},
            last_hand_raise_at {t["ts"]},
            {became},
            acquisition_campaign TEXT,
            acquisition_channel TEXT,
            acquisition_month TEXT,
            referrer_lead_id TEXT,
            unsubscribed INTEGER NOT NULL,
            sales_ready_at {t["ts"]},
            sales_touch_at {t["ts"]},
            facts INTEGER NOT NULL,
            rules_version TEXT NOT NULL
        )""",
        # Keyset pages of leads by score (the API's lead list).
        (
            f"CREATE INDEX IF NOT EXISTS lifecycle_leads_{slot}_by_score "
            f"ON lifecycle_leads_{slot} (score DESC, lead_id)"
        ),
        # The leads acquired in part of a day (the funnel counts whole days from its totals).
        (
            f"CREATE INDEX IF NOT EXISTS lifecycle_leads_{slot}_by_acquisition "
            f"ON lifecycle_leads_{slot} (became_lead_at) WHERE merged_into IS NULL AND is_lead = 1"
        ),
        f"""CREATE TABLE IF NOT EXISTS lifecycle_lead_facts_{slot} (
            lead_id TEXT NOT NULL,
            fact_id TEXT NOT NULL,
            at {t["ts"]} NOT NULL,
            body TEXT NOT NULL,
            PRIMARY KEY (lead_id, fact_id)
        )""",
        f"""CREATE TABLE IF NOT EXISTS lifecycle_lead_revenue_{slot} (
            lead_id TEXT NOT NULL,
            currency TEXT NOT NULL,
            amount_minor {t["big"]} NOT NULL,
            PRIMARY KEY (lead_id, currency)
        )""",
        f"""CREATE TABLE IF NOT EXISTS lifecycle_stage_history_{slot} (
            lead_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            stage TEXT NOT NULL,
            entered_at {t["ts"]} NOT NULL,
            exited_at {t["ts"]},
            fact_id TEXT NOT NULL,
            PRIMARY KEY (lead_id, seq)
        )""",
        f"""CREATE TABLE IF NOT EXISTS lifecycle_spend_{slot} (
            fact_id TEXT PRIMARY KEY,
            campaign_id TEXT NOT NULL,
            channel TEXT NOT NULL,
            currency TEXT NOT NULL,
            amount_minor {t["big"]} NOT NULL,
            period_start {t["date"]} NOT NULL,
            period_end {t["date"]} NOT NULL,
            month TEXT NOT NULL
        )""",
        # Kept by the views worker (lifecycle.projections.funnel): per acquisition day (UTC),
        # campaign and channel ('' for none), leads that reached each stage and made each step.
        f"""CREATE TABLE IF NOT EXISTS lifecycle_funnel_{slot} (
            acquired_on {t["date"]} NOT NULL,
            campaign TEXT NOT NULL,
            channel TEXT NOT NULL,
            acquired_month TEXT NOT NULL,
            {", ".join(f"{name} INTEGER NOT NULL" for name in FUNNEL_COUNTS)},
            PRIMARY KEY (acquired_on, campaign, channel)
        )""",
        f"""CREATE TABLE IF NOT EXISTS lifecycle_funnel_revenue_{slot} (
            acquired_on {t["date"]} NOT NULL,
            campaign TEXT NOT NULL,
            channel TEXT NOT NULL,
            acquired_month TEXT NOT NULL,
            currency TEXT NOT NULL,
            amount_minor {t["big"]} NOT NULL,
            leads INTEGER NOT NULL,
            PRIMARY KEY (acquired_on, campaign, channel, currency)
        )""",
        # Per live lead and step it made: the days the step took (medians in index order).
        f"""CREATE TABLE IF NOT EXISTS lifecycle_stage_days_{slot} (
            lead_id TEXT NOT NULL,
            step TEXT NOT NULL,
            acquired_at {t["ts"]} NOT NULL,
            campaign TEXT NOT NULL,
            channel TEXT NOT NULL,
            days {t["float"]} NOT NULL,
            PRIMARY KEY (lead_id, step)
        )""",
        (
            f"CREATE INDEX IF NOT EXISTS lifecycle_stage_days_{slot}_by_days "
            f"ON lifecycle_stage_days_{slot} (step, days)"
        ),
        # Every merge, whether or not the merged lead has a row (a referrer claimed before it
        # had facts has none): referrers are resolved through it to the lead that stands now.
        f"""CREATE TABLE IF NOT EXISTS lifecycle_merges_{slot} (
            lead_id TEXT PRIMARY KEY,
            merged_into TEXT NOT NULL
        )""",
        (
            f"CREATE INDEX IF NOT EXISTS lifecycle_leads_{slot}_by_referrer "
            f"ON lifecycle_leads_{slot} (referrer_lead_id) WHERE referrer_lead_id IS NOT NULL"
        ),
        *credit_tables(slot, dialect),
        # topic_id: the id of the topic's life these offsets were read from (NULL: not known).
        f"""CREATE TABLE IF NOT EXISTS lifecycle_offsets_{slot} (
            topic TEXT NOT NULL,
            partition_id INTEGER NOT NULL,
            position {t["big"]} NOT NULL,
            topic_id TEXT,
            PRIMARY KEY (topic, partition_id)
        )""",
    ]


def credit_tables(slot: str, dialect: str) -> list[str]:
    """Attribution and quality (``lifecycle.projections.credit``): per lead, and the totals."""
    t = _types(dialect)
    attributed = (
        f"conversion TEXT NOT NULL, converted_on {t['date']} NOT NULL, "
        "campaign TEXT NOT NULL, channel TEXT NOT NULL, month TEXT NOT NULL"
    )
    attributed_key = "conversion, converted_on, campaign, channel, month"
    # One column per heuristic model, then how many leads' credit is in the row.
    models = ", ".join(f"{model} {t['float']} NOT NULL" for model in HEURISTIC_MODELS)
    path = f"conversion TEXT NOT NULL, dated_on {t['date']} NOT NULL"
    return [
        # Leads folded since their attribution and quality were last worked out (the views
        # worker does it a transaction later: projections/credit_keeper.py).
        f"""CREATE TABLE IF NOT EXISTS lifecycle_credits_due_{slot} (
            lead_id TEXT PRIMARY KEY
        )""",
        # What each live lead adds to the totals below (taken back when it changes).
        f"""CREATE TABLE IF NOT EXISTS lifecycle_lead_credits_{slot} (
            lead_id TEXT PRIMARY KEY,
            body TEXT NOT NULL
        )""",
        # Each heuristic model's credit per conversion day, campaign ('' for none), channel
        # and month of the credited touches.
        f"""CREATE TABLE IF NOT EXISTS lifecycle_attribution_{slot} (
            {attributed},
            {models},
            conversions INTEGER NOT NULL,
            PRIMARY KEY ({attributed_key})
        ){t["clustered"]}""",
        # The revenue (minor units) each model credits, per currency.
        f"""CREATE TABLE IF NOT EXISTS lifecycle_attribution_revenue_{slot} (
            {attributed},
            currency TEXT NOT NULL,
            {models},
            conversions INTEGER NOT NULL,
            PRIMARY KEY ({attributed_key}, currency)
        ){t["clustered"]}""",
        # The data-driven model's paths, as moves between campaigns (with their touches'
        # channel: '' and '' from: the start; to: the end, a conversion if the path converted),
        # by the day a path counts on: its conversion's, or (not converted) its first touch's.
        f"""CREATE TABLE IF NOT EXISTS lifecycle_paths_{slot} (
            {path},
            converted INTEGER NOT NULL,
            from_campaign TEXT NOT NULL,
            from_channel TEXT NOT NULL,
            to_campaign TEXT NOT NULL,
            to_channel TEXT NOT NULL,
            paths INTEGER NOT NULL,
            PRIMARY KEY (conversion, dated_on, converted, from_campaign, from_channel,
                         to_campaign, to_channel)
        ){t["clustered"]}""",
        f"""CREATE TABLE IF NOT EXISTS lifecycle_path_revenue_{slot} (
            {path},
            last_campaign TEXT NOT NULL,
            last_channel TEXT NOT NULL,
            currency TEXT NOT NULL,
            amount_minor {t["big"]} NOT NULL,
            paths INTEGER NOT NULL,
            PRIMARY KEY (conversion, dated_on, last_campaign, last_channel, currency)
        ){t["clustered"]}""",
        # Lead quality: what each lead counts for (acquired, a conversion, a purchase) in the
        # source it had from valid_from until valid_until (NULL: it still has it).
        f"""CREATE TABLE IF NOT EXISTS lifecycle_outcomes_{slot} (
            lead_id TEXT NOT NULL,
            seq INTEGER NOT NULL,
            kind TEXT NOT NULL,
            campaign TEXT NOT NULL,
            channel TEXT NOT NULL,
            acquired_month TEXT NOT NULL,
            acquired_at {t["ts"]} NOT NULL,
            days INTEGER NOT NULL,
            valid_from {t["ts"]} NOT NULL,
            valid_until {t["ts"]},
            currency TEXT NOT NULL,
            amount_minor {t["big"]} NOT NULL,
            PRIMARY KEY (lead_id, seq)
        )""",
        # (Answers as of an instant read the outcomes that began or ended on its day here.)
        (
            f"CREATE INDEX IF NOT EXISTS lifecycle_outcomes_{slot}_by_start "
            f"ON lifecycle_outcomes_{slot} (valid_from)"
        ),
        (
            f"CREATE INDEX IF NOT EXISTS lifecycle_outcomes_{slot}_by_end "
            f"ON lifecycle_outcomes_{slot} (valid_until) WHERE valid_until IS NOT NULL"
        ),
        # The outcomes summed per day of acquisition, source, age in days and the days they
        # held from and until (9999-12-31: still holds).
        f"""CREATE TABLE IF NOT EXISTS lifecycle_outcome_totals_{slot} (
            kind TEXT NOT NULL,
            acquired_on {t["date"]} NOT NULL,
            campaign TEXT NOT NULL,
            channel TEXT NOT NULL,
            acquired_month TEXT NOT NULL,
            days INTEGER NOT NULL,
            valid_from_on {t["date"]} NOT NULL,
            valid_until_on {t["date"]} NOT NULL,
            currency TEXT NOT NULL,
            leads INTEGER NOT NULL,
            amount_minor {t["big"]} NOT NULL,
            PRIMARY KEY (kind, acquired_on, campaign, channel, acquired_month, days,
                         valid_from_on, valid_until_on, currency)
        ){t["clustered"]}""",
    ]


def offsets_topic_id_column(slot: str, dialect: str) -> str | None:
    """Adds ``topic_id`` to an offsets table made before it existed (None: SQLite, see store)."""
    if dialect == "postgres":
        return f"ALTER TABLE lifecycle_offsets_{slot} ADD COLUMN IF NOT EXISTS topic_id TEXT"
    return None


def parked_table(dialect: str) -> str:
    """Lead events the views could not apply, kept for a look (not per slot: they are input)."""
    t = _types(dialect)
    blob = "BYTEA" if dialect == "postgres" else "BLOB"
    return f"""CREATE TABLE IF NOT EXISTS lifecycle_parked_events (
        topic TEXT NOT NULL,
        partition_id INTEGER NOT NULL,
        position {t["big"]} NOT NULL,
        parked_at {t["ts"]} NOT NULL,
        error TEXT NOT NULL,
        value {blob},
        PRIMARY KEY (topic, partition_id, position)
    )"""


def announcement_tables(dialect: str) -> list[str]:
    """What the engine last announced of each lead, and the changes it announced (the outbox).

    Not per slot: announcements are about the live views, whichever slot holds them. Changes
    are numbered in commit order (``lifecycle_changes_sequence`` is taken in the writing
    transaction, so writers queue on it); the publisher keeps its place beside them.
    """
    t = _types(dialect)
    return [
        f"""CREATE TABLE IF NOT EXISTS lifecycle_announced (
            lead_id TEXT PRIMARY KEY,
            stage TEXT,
            temperature TEXT,
            overdue_for {t["ts"]},
            due_at {t["ts"]}
        )""",
        (
            "CREATE INDEX IF NOT EXISTS lifecycle_announced_by_due "
            "ON lifecycle_announced (due_at) WHERE due_at IS NOT NULL"
        ),
        f"""CREATE TABLE IF NOT EXISTS lifecycle_changes (
            seq {t["big"]} PRIMARY KEY,
            id TEXT NOT NULL,
            type TEXT NOT NULL,
            lead_id TEXT NOT NULL,
            at {t["ts"]} NOT NULL,
            observed_at {t["ts"]} NOT NULL,
            data TEXT NOT NULL
        )""",
        f"""CREATE TABLE IF NOT EXISTS lifecycle_changes_sequence (
            id INTEGER PRIMARY KEY, last_seq {t["big"]} NOT NULL
        )""",
        f"""CREATE TABLE IF NOT EXISTS lifecycle_changes_published (
            id INTEGER PRIMARY KEY, seq {t["big"]} NOT NULL, topic_id TEXT
        )""",
        # Announced leads merged into a lead not announced yet (its events come on another
        # partition, maybe later): told merged when the survivor is.
        f"""CREATE TABLE IF NOT EXISTS lifecycle_pending_merges (
            lead_id TEXT PRIMARY KEY,
            merged_into TEXT NOT NULL,
            at {t["ts"]} NOT NULL
        )""",
        (
            "CREATE INDEX IF NOT EXISTS lifecycle_pending_merges_by_survivor "
            "ON lifecycle_pending_merges (merged_into)"
        ),
    ]


def views(slot: str) -> list[str]:
    """(Re)create every SQL view on the tables of ``slot``."""
    statements: list[str] = []
    for name, body in view_bodies(slot).items():
        statements.append(f"DROP VIEW IF EXISTS {name}")
        statements.append(f"CREATE VIEW {name} AS {body}")
    return statements


def view_bodies(slot: str) -> dict[str, str]:
    """The SQL of each view, by name."""
    return {
        "lifecycle_cost_per_lead": cost_per_lead_sql(slot, "campaign"),
        "lifecycle_cost_per_lead_by_channel": cost_per_lead_sql(slot, "channel"),
        "lifecycle_cost_per_lead_by_month": cost_per_lead_sql(slot, "month"),
        "lifecycle_referrals": referrals_sql(slot),
        "lifecycle_leads": (
            f"SELECT * FROM lifecycle_leads_{slot} WHERE merged_into IS NULL AND is_lead = 1"
        ),
        "lifecycle_visitors": (
            f"SELECT * FROM lifecycle_leads_{slot} WHERE merged_into IS NULL AND is_lead = 0"
        ),
        "lifecycle_stage_history": (
            f"SELECT h.* FROM lifecycle_stage_history_{slot} h "
            f"JOIN lifecycle_leads_{slot} l ON l.lead_id = h.lead_id WHERE l.merged_into IS NULL"
        ),
        "lifecycle_lead_revenue": (
            f"SELECT r.* FROM lifecycle_lead_revenue_{slot} r "
            f"JOIN lifecycle_leads_{slot} l ON l.lead_id = r.lead_id WHERE l.merged_into IS NULL"
        ),
        "lifecycle_spend": f"SELECT * FROM lifecycle_spend_{slot}",
        "lifecycle_funnel": (
            "SELECT acquired_on, acquired_month, NULLIF(campaign, '') AS campaign, "
            f"NULLIF(channel, '') AS channel, {', '.join(FUNNEL_COUNTS)} "
            f"FROM lifecycle_funnel_{slot}"
        ),
        "lifecycle_attribution": _attribution_view(f"lifecycle_attribution_{slot}"),
        "lifecycle_attribution_revenue": _attribution_view(
            f"lifecycle_attribution_revenue_{slot}", "currency, "
        ),
        "lifecycle_stage_days": (
            "SELECT lead_id, step, acquired_at, NULLIF(campaign, '') AS campaign, "
            f"NULLIF(channel, '') AS channel, days FROM lifecycle_stage_days_{slot}"
        ),
    }


def _attribution_view(table: str, currency: str = "") -> str:
    """Credit (or credited revenue) per conversion day, campaign, channel and month.

    A column per heuristic model; campaign NULL: conversions with no campaign touch.
    """
    models = ", ".join(HEURISTIC_MODELS)
    return (
        "SELECT conversion, converted_on, NULLIF(campaign, '') AS campaign, channel, month, "
        f"{currency}{models}, conversions FROM {table}"
    )


# The funnel totals' dimension and spend's dimension of each grouping.
_DIMENSIONS: dict[str, tuple[str, str]] = {
    "campaign": ("NULLIF(campaign, '')", "campaign_id"),
    "channel": ("NULLIF(channel, '')", "channel"),
    "month": ("acquired_month", "month"),
}


def live_leads(slot: str) -> str:
    """The leads of a slot that count: not merged away, not mere visitors."""
    return f"(SELECT * FROM lifecycle_leads_{slot} WHERE merged_into IS NULL AND is_lead = 1)"


def cost_per_lead_sql(slot: str, by: str) -> str:
    """Spend, acquired leads, MQLs, SQLs, customers, revenue and ratios, per group and currency.

    The leads and their revenue come from the funnel totals the views keep per acquisition
    day, so the cost of the query does not grow with the number of leads.
    """
    lead_dim, spend_dim = _DIMENSIONS[by]
    return f"""
    WITH s AS (
        SELECT {spend_dim} AS grp, currency, SUM(amount_minor) AS spend_minor
        FROM lifecycle_spend_{slot} GROUP BY {spend_dim}, currency
    ), l AS (
        SELECT {lead_dim} AS grp, SUM(reached_lead) AS leads, SUM(reached_mql) AS mqls,
               SUM(reached_sales_ready) AS sqls, SUM(reached_customer) AS customers
        FROM lifecycle_funnel_{slot} GROUP BY {lead_dim}
    ), r AS (
        SELECT {lead_dim} AS grp, currency, SUM(amount_minor) AS revenue_minor
        FROM lifecycle_funnel_revenue_{slot} GROUP BY {lead_dim}, currency
    )
    SELECT s.grp AS {by}, s.currency, s.spend_minor,
           COALESCE(l.leads, 0) AS leads, COALESCE(l.mqls, 0) AS mqls,
           COALESCE(l.sqls, 0) AS sqls, COALESCE(l.customers, 0) AS customers,
           COALESCE(r.revenue_minor, 0) AS revenue_minor,
           CASE WHEN l.leads > 0 THEN s.spend_minor * 1.0 / l.leads END AS cpl,
           CASE WHEN l.mqls > 0 THEN s.spend_minor * 1.0 / l.mqls END AS cost_per_mql,
           CASE WHEN l.sqls > 0 THEN s.spend_minor * 1.0 / l.sqls END AS cost_per_sql,
           CASE WHEN l.customers > 0 THEN s.spend_minor * 1.0 / l.customers END
               AS cost_per_customer,
           CASE WHEN s.spend_minor > 0
               THEN (COALESCE(r.revenue_minor, 0) - s.spend_minor) * 1.0 / s.spend_minor END AS roi
    FROM s LEFT JOIN l ON l.grp = s.grp
    LEFT JOIN r ON r.grp = s.grp AND r.currency = s.currency
    """


def referrals_sql(slot: str) -> str:
    """Per referring lead: leads referred, how many became customers, and their revenue.

    One row per referrer; ``currency`` is that of the referred leads' revenue (when they paid
    in several currencies, the row sums them: see ``lifecycle_lead_revenue`` for the split).
    """
    leads = live_leads(slot)
    return f"""
    SELECT x.referrer_lead_id, COUNT(*) AS referred,
           COUNT(x.became_customer_at) AS became_customers,
           COALESCE(SUM(v.amount_minor), 0) AS revenue_minor, MIN(v.currency) AS currency
    FROM {leads} x LEFT JOIN (
        SELECT lead_id, SUM(amount_minor) AS amount_minor, MIN(currency) AS currency
        FROM lifecycle_lead_revenue_{slot} GROUP BY lead_id
    ) v ON v.lead_id = x.lead_id
    WHERE x.referrer_lead_id IS NOT NULL
    GROUP BY x.referrer_lead_id
    """
