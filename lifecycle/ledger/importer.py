"""Importing JSON lines of structured-mode CloudEvents.

Valid lines are recorded; rejected lines are reported with their line number and reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from lifecycle.contracts.inbound import InboundEvent, decode_structured
from lifecycle.errors import ContractError
from lifecycle.ledger.engine import LeadLifecycle


@dataclass(frozen=True)
class Rejected:
    """A line that was not imported, and why."""

    line: int
    field: str
    reason: str


@dataclass
class ImportReport:
    """How an import went."""

    lines: int = 0
    recorded: int = 0
    duplicates: int = 0
    suppressed: int = 0
    rejected: list[Rejected] = field(default_factory=list)


def import_lines(
    engine: LeadLifecycle,
    lines: Iterable[bytes],
    *,
    batch_size: int = 500,
    progress: Callable[[int], None] | None = None,
) -> ImportReport:
    """Record every valid line (in batches of one transaction each); collect the rejects.

    ``progress`` is called after each batch with the number of lines read so far.
    """
    report = ImportReport()
    batch: list[InboundEvent] = []

    def flush() -> None:
        result = engine.record(batch)
        report.recorded += result.recorded
        report.duplicates += result.duplicates
        report.suppressed += result.suppressed
        batch.clear()
        if progress is not None:
            progress(report.lines)

    for number, line in _numbered(lines):
        report.lines = number
        try:
            batch.append(decode_structured(line))
        except ContractError as error:
            report.rejected.append(Rejected(number, error.field, error.reason))
            continue
        if len(batch) >= batch_size:
            flush()
    if batch or progress is not None:
        flush()
    return report


def _numbered(lines: Iterable[bytes]) -> Iterator[tuple[int, bytes]]:
    for number, line in enumerate(lines, start=1):
        stripped = line.strip()
        if stripped:  # blank lines (a trailing newline, say) are not events
            yield number, stripped
