"""Values far beyond any amount (issue 13, item 7), through ingestion, the nightly job on moto and
the results API: refused where a sum metric reads them, ignored when stored anyway (or cached
from before), and never a NaN or an Infinity in a stored snapshot or an answer."""

import json
import math
from datetime import UTC, datetime
from typing import Any

import pytest

from abacus.api import json_response
from abacus.storage.results import SnapshotItem

START = datetime(2026, 11, 1, tzinfo=UTC)


def strict(text: str) -> Any:
    """JSON as RFC 8259 has it: NaN and Infinity are not JSON."""

    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_snapshot_is_never_stored_with_a_number_json_cannot_hold(project):
    item = SnapshotItem("test#x", "2026-11-24", cutoff=START, computed_at=START, analysis={"p_value": math.nan})
    with pytest.raises(ValueError, match="not JSON compliant"):
        item.save()


def test_answers_are_valid_json_whatever_they_hold():
    response = json_response(200, {"mean": math.inf, "p_value": math.nan, "ok": [1.5, -math.inf]})
    assert response.body is not None and strict(response.body) == {"mean": None, "p_value": None, "ok": [1.5, None]}
