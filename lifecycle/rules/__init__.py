"""The rulebook: one pure, versioned fold from a lead's facts to its interpretation."""

from lifecycle.rules.fold import LeadFold, LeadView, StageMove, fold, folded
from lifecycle.rules.rulebook import Rulebook, default_rulebook, load_rulebook

__all__ = [
    "LeadFold",
    "LeadView",
    "Rulebook",
    "StageMove",
    "default_rulebook",
    "fold",
    "folded",
    "load_rulebook",
]
