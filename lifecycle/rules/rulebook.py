"""Reading rulebooks: the shipped default, overlaid by an optional user file."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final

from lifecycle.domain.vocabulary import KINDS, SENIORITIES, Model
from lifecycle.errors import RulebookError


@dataclass(frozen=True, kw_only=True)
class Rulebook:
    """Every number and list the fold uses; nothing else decides a stage or a score."""

    version: str
    engagement_points: dict[str, float]
    half_life: timedelta
    seniority_points: dict[str, int]
    company_size_bands: tuple[tuple[int, int], ...]
    """(minimum size, points), largest minimum first."""
    mql_score: float
    sql_bant_criteria: int
    hand_raises: frozenset[str]
    pql_usages_after_trial: int
    hot_window: timedelta
    hot_signals: frozenset[str]
    hot_engagement: float
    warm_engagement: float
    attribution_model: Model
    """The model answers use when none is asked for."""
    lookback: timedelta
    """Campaign touches longer than this before a conversion get no credit."""
    time_decay_half_life: timedelta

    def fit_points(self, seniority: str | None, company_size: int | None) -> int:
        """Fit from the latest seniority and company size."""
        points = self.seniority_points.get(seniority, 0) if seniority else 0
        if company_size is not None:
            for minimum, band_points in self.company_size_bands:
                if company_size >= minimum:
                    points += band_points
                    break
        return points


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _check_kinds(names: list[str] | dict[str, Any], where: str) -> None:
    unknown = sorted(set(names) - set(KINDS))
    if unknown:
        raise RulebookError(f"{where}: unknown touchpoint kind(s) {', '.join(unknown)}")


def _build(doc: dict[str, Any]) -> Rulebook:
    try:
        engagement, fit = doc["engagement"], doc["fit"]
        stages, temperature = doc["stages"], doc["temperature"]
        _check_kinds(engagement["points"], "engagement.points")
        _check_kinds(stages["hand_raises"], "stages.hand_raises")
        _check_kinds(temperature["hot_signals"], "temperature.hot_signals")
        unknown_seniority = sorted(set(fit["seniority"]) - set(SENIORITIES))
        if unknown_seniority:
            raise RulebookError(f"fit.seniority: unknown level(s) {', '.join(unknown_seniority)}")
        bands = sorted(
            ((int(b["min"]), int(b["points"])) for b in fit["company_size"]), reverse=True
        )
        half_life_days = float(engagement["half_life_days"])
        if half_life_days <= 0:
            raise RulebookError("engagement.half_life_days must be positive")
        attribution = doc["attribution"]
        model = str(attribution["model"])
        if model not in set(Model):
            raise RulebookError(
                f"attribution.model must be one of {', '.join(Model)}, not {model!r}"
            )
        lookback_days = float(attribution["lookback_days"])
        decay_days = float(attribution["time_decay_half_life_days"])
        if lookback_days <= 0 or decay_days <= 0:
            raise RulebookError(
                "attribution.lookback_days and time_decay_half_life_days must be positive"
            )
        return Rulebook(
            version=str(doc["rules_version"]),
            engagement_points={k: float(v) for k, v in engagement["points"].items()},
            half_life=timedelta(days=half_life_days),
            seniority_points={k: int(v) for k, v in fit["seniority"].items()},
            company_size_bands=tuple(bands),
            mql_score=float(stages["mql_score"]),
            sql_bant_criteria=int(stages["sql_bant_criteria"]),
            hand_raises=frozenset(stages["hand_raises"]),
            pql_usages_after_trial=int(stages["pql_usages_after_trial"]),
            hot_window=timedelta(days=float(temperature["hot_window_days"])),
            hot_signals=frozenset(temperature["hot_signals"]),
            hot_engagement=float(temperature["hot_engagement"]),
            warm_engagement=float(temperature["warm_engagement"]),
            attribution_model=Model(model),
            lookback=timedelta(days=lookback_days),
            time_decay_half_life=timedelta(days=decay_days),
        )
    except KeyError as missing:
        raise RulebookError(f"rulebook is missing {missing.args[0]!r}") from None
    except (TypeError, ValueError, OverflowError) as wrong:
        raise RulebookError(f"rulebook has a value of the wrong type: {wrong}") from None


def _default_document() -> dict[str, Any]:
    text = resources.files("lifecycle.rules").joinpath("default.toml").read_text("utf-8")
    return tomllib.loads(text)


@cache
def default_rulebook() -> Rulebook:
    """The shipped rules (``rules_version = "2026.1"``)."""
    return _build(_default_document())


def load_rulebook(path: Path | None = None) -> Rulebook:
    """The default rules, overlaid key by key with a user's TOML file when one is given."""
    if path is None:
        return default_rulebook()
    try:
        override = tomllib.loads(path.read_text("utf-8"))
    except OSError as error:
        raise RulebookError(f"cannot read rulebook {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise RulebookError(f"rulebook {path} is not valid TOML: {error}") from None
    if "rules_version" not in override:
        raise RulebookError(f"rulebook {path} must set its own rules_version")
    if not isinstance(override["rules_version"], str) or not override["rules_version"].strip():
        raise RulebookError(f'rulebook {path}: rules_version must be text, e.g. "2026.2"')
    default = _default_document()
    if unknown := _unknown_keys(default, override):
        raise RulebookError(
            f"rulebook {path}: unknown key(s) {', '.join(unknown)} (default.toml has every key)"
        )
    return _build(_merge(default, override))


# Tables whose keys the user names (touchpoint kinds, seniority levels: checked by _build).
_OPEN_TABLES: Final = frozenset({"engagement.points", "fit.seniority"})


def _unknown_keys(base: dict[str, Any], override: dict[str, Any], where: str = "") -> list[str]:
    """The keys of ``override`` the default rulebook does not have (a typo is not a rule)."""
    unknown: list[str] = []
    for key, value in override.items():
        path = f"{where}.{key}" if where else key
        if key not in base:
            if where not in _OPEN_TABLES:
                unknown.append(path)
        elif isinstance(value, dict) and isinstance(base[key], dict):
            unknown += _unknown_keys(base[key], value, path)
    return unknown
