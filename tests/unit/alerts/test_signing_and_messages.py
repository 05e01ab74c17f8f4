"""Webhook signatures (checked against hmac computed here from the documented recipe), the
backoff between attempts, and the alert's document: Slack-compatible text, the numbers behind it."""

import hashlib
import hmac
import json
from datetime import UTC, datetime

from abacus.alerts import follow_up, messages, signing
from abacus.alerts.detect import alerts


def test_the_signature_is_the_documented_hmac_of_the_raw_body():
    body = json.dumps({"kind": "decision", "timestamp": 1_800_000_000}).encode()
    expected = "sha256=" + hmac.new(b"whsec_x", body, hashlib.sha256).hexdigest()
    assert signing.signature("whsec_x", body) == expected
    assert signing.verify("whsec_x", body, expected, 1_800_000_000, now=1_800_000_100)
    assert not signing.verify("whsec_x", body, expected, 1_800_000_000, now=1_800_000_000 + 301)  # a replay
    assert not signing.verify("whsec_y", body, expected, 1_800_000_000, now=1_800_000_000)
    assert not signing.verify("whsec_x", body + b" ", expected, 1_800_000_000, now=1_800_000_000)
    assert signing.new_secret() != signing.new_secret() and signing.new_secret().startswith("whsec_")


def test_backoff_doubles_from_the_setting_up_to_sqs_longest_visibility(monkeypatch):
    from abacus.core.settings import settings

    object.__setattr__(settings, "webhook_retry_seconds", 60)
    try:
        assert [follow_up.backoff(n) for n in range(1, 9)] == [60, 120, 240, 480, 960, 1920, 3840, 7680]
        assert follow_up.backoff(20) == 12 * 3600
    finally:
        object.__setattr__(settings, "webhook_retry_seconds", 0)


def test_the_template_dead_letters_after_the_attempts_the_code_counts(template):
    queue = template.resources["AlertsQueue"]["Properties"]
    assert queue["RedrivePolicy"]["maxReceiveCount"] == follow_up.MAX_ATTEMPTS


def test_the_document_carries_the_decision_its_numbers_and_a_slack_text():
    analysis = {
        "metric": {"event": "purchase", "kind": "conversion"},
        "variants": [
            {"key": "control", "exposures": 1200, "conversions": 120, "mean": 0.1},
            {
                "key": "one-page",
                "exposures": 1180,
                "conversions": 177,
                "mean": 0.15,
                "lift": {"absolute": 0.05, "relative": 0.5, "relative_ci": [0.2, 0.8]},
                "p_value": 0.001,
                "p_value_adjusted": 0.002,
            },
        ],
        "verdict": {"decision": "ship", "variant": "one-page", "reason": "'one-page' beats 'control' by +50.0%"},
        "srm": {"p_value": 0.7, "mismatch": False},
    }
    (alert,) = alerts(analysis, None, datetime(2026, 11, 10, tzinfo=UTC), False)
    document = messages.document(
        alert, alert_key="abc", project="p", experiment="new-checkout", experiment_name="One-page checkout",
        snapshot_date="2026-11-09", analysis=analysis, report_url="https://x/console/experiments/new-checkout",
        now=datetime(2026, 11, 10, 3, tzinfo=UTC),
    )  # fmt: skip
    assert document["numbers"][1] == {
        "key": "one-page", "exposures": 1180, "conversions": 177, "mean": 0.15, "lift": 0.5, "interval": [0.2, 0.8],
        "p_value": 0.002,
    }  # fmt: skip
    text = document["text"]
    assert text.startswith(":white_check_mark: *One-page checkout* (`new-checkout`): ship 'one-page'")
    assert "`one-page`: +50.0% [+20.0%, +80.0%] on 1,180 exposed" in text
    assert "<https://x/console/experiments/new-checkout|Open it in Abacus>" in text
    assert json.loads(json.dumps(document)) == document  # JSON as it is sent
    assert messages.DETAIL_TYPES[document["kind"]] == "Experiment decision reached"


def test_a_bandit_s_numbers_are_its_stratified_means_as_its_verdict_read_them():
    pooled = [
        {"key": "control", "exposures": 1200, "conversions": 70, "mean": 0.058},
        {
            "key": "b", "exposures": 2800, "conversions": 253, "mean": 0.09,
            "lift": {"absolute": 0.032, "relative": 0.55, "relative_ci": [0.3, 0.8]}, "p_value_adjusted": 1e-6,
        },
    ]  # fmt: skip
    stratified = [
        {"key": "control", "exposures": 1200, "mean": 0.075, "standard_error": 0.003, "interval": [0.07, 0.08],
         "probability_best": 0.02, "expected_loss": 0.0075},
        {"key": "b", "exposures": 2800, "mean": 0.0825, "standard_error": 0.002, "interval": [0.079, 0.086],
         "probability_best": 0.98, "expected_loss": 0.00001,
         "lift": {"absolute": 0.0075, "relative": 0.1, "relative_ci": [0.01, 0.2]}},
    ]  # fmt: skip
    analysis = {
        "metric": {"event": "purchase", "kind": "conversion"},
        "variants": pooled,
        "bandit": {"variants": stratified},
        "verdict": {"decision": "ship", "variant": "b", "reason": "'b' is best with a 98.0% probability"},
        "srm": {"p_value": 0.7, "mismatch": False},
    }
    assert messages.numbers(analysis) == [
        {"key": "control", "exposures": 1200, "mean": 0.075},
        {"key": "b", "exposures": 2800, "mean": 0.0825, "lift": 0.1, "interval": [0.01, 0.2]},
    ]
    # Until the bandit has an estimate, the pooled rows are all there is.
    assert messages.numbers(analysis | {"bandit": {"variants": []}})[1]["lift"] == 0.55


def test_the_receivers_check_in_docs_alerts_md_accepts_a_delivery_and_refuses_a_forgery_or_a_replay():
    """docs/alerts.md's Python verification, run as written against a body signed as deliveries are."""
    import re
    import time
    from pathlib import Path

    import pytest

    docs = (Path(__file__).parents[3] / "docs" / "alerts.md").read_text()
    (code,) = re.findall(r"```python\n(.*?)```", docs, re.S)
    namespace: dict = {}
    exec(code, namespace)  # noqa: S102 - the documentation's own snippet
    body = json.dumps({"kind": "decision", "timestamp": int(time.time())}).encode()
    assert namespace["verified"]("whsec_s", body, signing.signature("whsec_s", body))["kind"] == "decision"
    with pytest.raises(PermissionError, match="not signed"):
        namespace["verified"]("whsec_other", body, signing.signature("whsec_s", body))
    old = json.dumps({"kind": "decision", "timestamp": int(time.time()) - 3600}).encode()
    with pytest.raises(PermissionError, match="replay"):
        namespace["verified"]("whsec_s", old, signing.signature("whsec_s", old))
