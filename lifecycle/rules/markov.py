"""The data-driven model: a first-order Markov chain over every lead's path, credit by removal.

The chain: ``start`` -> the campaigns (or channels) of a path, in order, consecutive repeats
counted once -> ``conversion`` (the path converted) or ``null`` (it did not). Transition
probabilities are the observed transitions out of each state, normalised. A state's removal
effect is how much of the chance to convert is lost when every transition into it goes to
``null`` instead: RE(k) = 1 - P(conversion | k removed) / P(conversion). The conversions are
shared in proportion to the removal effects; revenue in proportion to the revenue each state's
removal loses, where a conversion is worth the mean revenue of conversions whose path ended in
the same state. This is what ChannelAttribution's ``markov_model`` estimates by simulation
(tests compare the two); here it is solved exactly.

With N = (I - Q)^-1 the expected visits between transient states, v the first states' shares
and r each state's chance to convert next, P(conversion) = v N r, and removing k loses
(vN)_k (Nr)_k / N_kk: the chance to reach k times the chance to convert from it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

State = TypeVar("State")
START = ""
"""The state every path starts from (no campaign id or channel is empty)."""


@dataclass(frozen=True)
class Transitions:
    """Observed transitions of many paths.

    ``moves``: (from, to) -> how many paths made the move (``START`` as from); ``ends``: (last
    state, converted) -> how many paths ended there; ``values``: (last state, currency) -> the
    revenue of the converting paths that ended there.
    """

    moves: Mapping[tuple[str, str], float]
    ends: Mapping[tuple[str, bool], float]
    values: Mapping[tuple[str, str], float]


@dataclass(frozen=True)
class Removal:
    """What the chain says of one state."""

    state: str
    removal_effect: float
    conversions: float
    """The conversions credited to it: its share of the removal effects."""
    value: dict[str, float]
    """The revenue credited to it, per currency."""


def collapse(states: Iterable[State]) -> list[State]:
    """The states of a path with consecutive repeats counted once."""
    path: list[State] = []
    for state in states:
        if not path or path[-1] != state:
            path.append(state)
    return path


def removals(transitions: Transitions) -> list[Removal]:
    """Each state's removal effect, credited conversions and revenue (sorted by state)."""
    states = sorted(
        {s for move in transitions.moves for s in move if s != START}
        | {state for state, _ in transitions.ends}
    )
    currencies = sorted({currency for _, currency in transitions.values})
    converted = sum(n for (_, done), n in transitions.ends.items() if done)
    if not states or converted <= 0:
        return [Removal(state, 0.0, 0.0, dict.fromkeys(currencies, 0.0)) for state in states]
    index = {state: i for i, state in enumerate(states)}
    size = len(states)
    counts, start = np.zeros((size, size)), np.zeros(size)
    conversions, out = np.zeros(size), np.zeros(size)
    for (source, target), n in transitions.moves.items():
        if source == START:
            start[index[target]] += n
        else:
            counts[index[source], index[target]] += n
            out[index[source]] += n
    for (state, done), n in transitions.ends.items():
        out[index[state]] += n
        if done:
            conversions[index[state]] += n
    safe = np.where(out > 0, out, 1.0)
    visits = np.linalg.inv(np.eye(size) - counts / safe[:, None])
    first = start / start.sum()
    reach = (first @ visits) / np.diag(visits)  # the chance to reach each state at all
    convert = conversions / safe
    effects = reach * (visits @ convert) / float(first @ visits @ convert)
    credited = effects / float(effects.sum()) * converted
    value: dict[str, np.ndarray] = {}
    for currency in currencies:
        paid = np.array([transitions.values.get((state, currency), 0.0) for state in states])
        worth = np.divide(paid, conversions, out=np.zeros(size), where=conversions > 0)
        lost = reach * (visits @ (convert * worth))
        total = float(lost.sum())
        value[currency] = lost / total * float(paid.sum()) if total > 0 else np.zeros(size)
    return [
        Removal(
            state=state,
            removal_effect=float(effects[i]),
            conversions=float(credited[i]),
            value={currency: float(amounts[i]) for currency, amounts in value.items()},
        )
        for state, i in index.items()
    ]
