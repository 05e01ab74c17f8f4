"""How fuzzed requests are pointed at this project, shared by the strategy tests
(test_fuzzing.py) and the schemathesis command's hooks (schemathesis_hooks.py)."""

import os
from typing import Any

from schemathesis.generation.modes import GenerationMode

from tests.e2e.conftest import ADMIN_KEY, FLAGS_KEY, TOKEN

EXISTING = ("fuzz-draft", "fuzz-running")
ADMIN_PATHS = ("/experiments", "/webhooks")
# A webhook's URL on a public IP literal (no DNS lookup): half the generated webhooks get it, so
# that creating one (up to a project's 10, then 409) is explored beyond the URL's refusal.
PUBLIC_WEBHOOK_URL = "https://93.184.215.14/fuzz"
# The id of a webhook test_fuzzing.py created (the schemathesis command reads it from here).
EXISTING_WEBHOOK = "ABACUS_FUZZ_WEBHOOK_ID"


def is_positive(case: Any) -> bool:
    return case.meta is None or case.meta.generation.mode == GenerationMode.POSITIVE


def with_project_data(case: Any) -> None:
    """Half of the experiment keys pointed at experiments that exist, half of the generated
    experiments given a valid split of variants, and the project token in valid app bodies, so
    that more than the 401, 404 and 422 paths is explored. A negative case keeps what was
    generated wrong."""
    _point_half_the_keys_at_existing_experiments(case)
    if case.path.startswith("/experiments"):
        _valid_split_for_half(case)
    elif case.path.startswith("/webhooks"):
        _point_half_the_webhooks_at_real_ones(case)
    elif is_positive(case):
        _with_project_token(case)


def _point_half_the_keys_at_existing_experiments(case: Any) -> None:
    if case.path_parameters and "key" in case.path_parameters and len(str(case.path_parameters["key"])) % 2:
        case.path_parameters["key"] = EXISTING[len(str(case.path_parameters["key"])) % 4 // 2]


def _point_half_the_webhooks_at_real_ones(case: Any) -> None:
    """Half the generated webhooks get a public URL (a generated one is nearly always refused),
    half the webhook ids the existing webhook's (rotated, or deleted once)."""
    creating = case.path == "/webhooks" and case.method == "POST"
    if creating and is_positive(case) and isinstance(case.body, dict) and len(str(case.body.get("url", ""))) % 2:
        case.body["url"] = PUBLIC_WEBHOOK_URL
    existing = os.environ.get(EXISTING_WEBHOOK)
    if existing and case.path_parameters and len(str(case.path_parameters.get("webhook_id", ""))) % 2:
        case.path_parameters["webhook_id"] = existing


def _valid_split_for_half(case: Any) -> None:
    """JSON Schema cannot say "weights sum to 100, one control": half of the generated experiments
    get a valid split, so that fuzzed targeting, metrics and texts get stored."""
    creating = case.path == "/experiments" and case.method == "POST"
    if creating and is_positive(case) and isinstance(case.body, dict) and len(str(case.body.get("key", ""))) % 2:
        case.body["variants"] = [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}]
        case.body["overrides"] = {}


def _with_project_token(case: Any) -> None:
    if isinstance(case.body, dict):
        case.body["token" if case.path in ("/assign", "/events") else "api_key"] = TOKEN
    elif isinstance(case.body, list):
        for event in case.body:
            if isinstance(event, dict):
                event["api_key"] = TOKEN


def with_admin_key(case: Any) -> None:
    """The project's admin key on admin routes, in place of a generated one (a negative case
    that carries none stays without)."""
    headers = case.headers if case.headers is not None else {}
    if case.path.startswith(ADMIN_PATHS) and (is_positive(case) or "Authorization" in headers):
        case.headers = {**headers, "Authorization": f"Bearer {ADMIN_KEY}"}


FLAG_DEFINITIONS = ("/flags/definitions", "/api/feature_flag/local_evaluation", "/api/feature_flag/local_evaluation/")


def with_flags_key(case: Any) -> None:
    """The project's flags key on the flag definitions' routes, as with_admin_key does."""
    headers = case.headers if case.headers is not None else {}
    if case.path in FLAG_DEFINITIONS and (is_positive(case) or "Authorization" in headers):
        case.headers = {**headers, "Authorization": f"Bearer {FLAGS_KEY}"}
