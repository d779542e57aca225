"""The domain, the aggregates and the rules take nothing from the event store's persistence.

import-linter (``make test``) keeps them from every other I/O package, but sees an outside
package whole: it cannot tell ``eventsourcing.domain`` (used) from ``eventsourcing.persistence``
(forbidden). This reads their imports instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

LIFECYCLE = Path(__file__).resolve().parents[2] / "lifecycle"
PURE = ("domain", "aggregates", "rules")
ALLOWED_FROM_EVENTSOURCING = {"eventsourcing.domain", "eventsourcing.utils"}


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", PURE)
def test_the_pure_core_takes_only_the_domain_part_of_eventsourcing(package):
    found = {
        (path.name, name)
        for path in sorted((LIFECYCLE / package).rglob("*.py"))
        for name in imported(path)
        if name.split(".")[0] == "eventsourcing" and name not in ALLOWED_FROM_EVENTSOURCING
    }

    assert found == set()


def test_the_check_sees_a_forbidden_import(tmp_path):
    module = tmp_path / "bad.py"
    module.write_text(
        "from eventsourcing.persistence import Recorder\nimport eventsourcing.sqlite\n"
    )

    assert {"eventsourcing.persistence", "eventsourcing.sqlite"} <= imported(module)
