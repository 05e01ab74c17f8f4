"""The clients the tests and the local stack use wait at least as long as the API may take to
answer: the gateway's timeout, within which a recompute waits for its run. A fuzzed recompute
once waited its 20 s while schemathesis gave up after its default 10 s (issue 28)."""

from abacus.core.timeouts import GATEWAY_TIMEOUT_SECONDS, RECOMPUTE_WAIT_SECONDS
from abacus_local.client import REQUEST_TIMEOUT_S, AbacusClient
from abacus_local.template import Template
from tests.e2e import test_fuzzing, test_posthog_node, witness


def test_a_recompute_waits_inside_the_gateways_timeout():
    assert RECOMPUTE_WAIT_SECONDS < GATEWAY_TIMEOUT_SECONDS


def test_no_route_shortens_or_lengthens_the_gateways_timeout():
    """An HTTP API's integration waits 30 s unless an event sets TimeoutInMillis: none does."""
    for name, function in Template().of_type("AWS::Serverless::Function").items():
        for event, spec in function["Properties"].get("Events", {}).items():
            if spec["Type"] == "HttpApi":
                assert "TimeoutInMillis" not in spec["Properties"], (name, event)


def test_every_client_of_the_api_waits_longer_than_the_gateway():
    assert REQUEST_TIMEOUT_S > GATEWAY_TIMEOUT_SECONDS
    assert AbacusClient("http://127.0.0.1:1").timeout >= REQUEST_TIMEOUT_S
    assert test_fuzzing.CALL_TIMEOUT_S >= REQUEST_TIMEOUT_S  # schemathesis' own default is 10 s
    assert test_posthog_node.TIMEOUT_MS >= REQUEST_TIMEOUT_S * 1000
    assert witness.FORWARD_TIMEOUT_S >= REQUEST_TIMEOUT_S
