"""What schemathesis is told beyond the OpenAPI document (loaded with SCHEMATHESIS_HOOKS).

OpenAPI cannot say that one query parameter depends on another. Two rules of the API do, and
the document says them in words: ``to`` must not be earlier than ``from`` (/api/funnel), and
``as_of`` names an instant of one lead, so it goes with ``identity`` (/api/leads). A 400 that
names exactly one of these rules is the documented answer, not a failure; every other
failure stands.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis

CROSS_PARAMETER_RULES = {
    ("/api/funnel", "to", "to: must not be earlier than from"),
    ("/api/leads", "as_of", "as_of: applies to one lead (with identity=...), not to a list"),
}


@schemathesis.hook
def filter_failure(_context: Any, failure: Any, case: Any, response: Any) -> bool:
    if failure.code != "ST202" or response.status_code != 400:
        return True
    try:
        problem = json.loads(response.content)
    except ValueError:
        return True
    rule = (case.operation.path, problem.get("parameter"), problem.get("detail"))
    return rule not in CROSS_PARAMETER_RULES
