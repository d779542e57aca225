"""Views derived from ``lead.events`` with the rulebook's fold: tables, their SQL, replay."""
