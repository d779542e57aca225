"""Views derived from ``lead.events`` with the rulebook's fold (the projections issue)."""
