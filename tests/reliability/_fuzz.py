"""Drive schemathesis per operation and generation mode inside an ordinary pytest test.

`schemathesis.pytest.from_fixture` does not run under this pytest version, so each test asks the
loaded schema for the operation's Hypothesis strategy and runs it with bounded settings.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

MODES = {"positive": GenerationMode.POSITIVE, "negative": GenerationMode.NEGATIVE}


def operations(schema: Any) -> list[tuple[str, str]]:
    """(label, mode) pairs: every operation positively, and negatively when it takes any input."""
    out = []
    for r in schema.get_all_operations():
        op = r.ok()
        out.append((op.label, "positive"))
        if len(op.body) or len(op.query) or len(op.headers) or len(op.path_parameters):
            out.append((op.label, "negative"))
    return out


def fuzz(schema: Any, label: str, mode: str, check: Callable[[Any, Any], None], *, max_examples: int = 50,
         headers: dict[str, str] | None = None, call_kwargs: dict[str, Any] | None = None) -> int:
    """Run `check(case, response)` on up to `max_examples` generated cases; returns how many ran."""
    method, path = label.split(" ", 1)
    op = schema[path][method]
    ran = [0]

    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy(generation_mode=MODES[mode]))
    def run(case: Any) -> None:
        ran[0] += 1
        response = case.call(headers=headers, **(call_kwargs or {}))
        check(case, response)

    run()
    return ran[0]
