"""End to end over real HTTP: the local stack in its own process, as `make dev` runs it."""

import http.client
import json
import os
import random
import socket
import subprocess
import sys
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from abacus_local.stack import free_port
from abacus_local.template import ROOT
from tests.e2e.conftest import TOKEN, invoke_nightly


def test_assign_ingest_nightly_results_over_http(client, stack_url):
    key = "e2e-flow"
    client.create_experiment(
        {
            "key": key,
            "name": "E2E",
            "variants": [{"key": "control", "weight": 50}, {"key": "b", "weight": 50}],
            "primary_metric": {"event": "signup"},
        }
    )
    assert client.results(key)["status"] == "pending"
    client.launch(key)
    rng = random.Random(1)
    exposures, conversions, events = Counter[str](), Counter[str](), []
    for index in range(150):
        distinct_id = f"e2e user #{index} ü"
        variant = client.assign(distinct_id, [key])[key]
        assert client.assign(distinct_id, [key])[key] == variant  # sticky
        exposures[variant] += 1
        if rng.random() < 0.3:
            conversions[variant] += 1
            events.append({"event": "signup", "distinct_id": distinct_id, "uuid": f"s-{index}"})
            events.append({"event": "signup", "distinct_id": distinct_id, "uuid": f"s2-{index}"})  # counted once
    first = client.send_events(events)
    assert first == {"accepted": len(events), "duplicates": 0, "rejected": [], "refused_exposures": 0}
    assert client.send_events(events)["duplicates"] == len(events)

    tomorrow = datetime.now(UTC) + timedelta(days=1)
    summary = invoke_nightly(stack_url, tomorrow)
    assert summary["failed"] == 0 and summary["analysed"] >= 1
    results = client.results(key)
    assert results["status"] == "ready"
    assert results["date"] == datetime.now(UTC).date().isoformat()
    got = {row["key"]: (row["exposures"], row["conversions"]) for row in results["variants"]}
    assert got == {variant: (exposures[variant], conversions[variant]) for variant in ("control", "b")}

    client.stop(key)
    assert client.assign("e2e user #1 ü", [key])[key] == "control"


@pytest.mark.parametrize(
    ("method", "path", "body", "admin", "status"),
    [
        ("POST", "/experiments", {"key": "x"}, True, 422),
        ("POST", "/experiments", {"key": "x"}, False, 401),
        ("GET", "/experiments/missing", None, True, 404),
        ("POST", "/assign", {"token": TOKEN}, False, 422),
        ("POST", "/events", {"token": "wrong", "events": [{}]}, False, 401),
        ("GET", "/no-such-route", None, False, 404),
    ],
)
def test_errors_over_http(client, method, path, body, admin, status):
    got, answer = client.request(method, path, body, admin=admin)
    assert got == status, answer


def test_unreadable_body_is_400_over_http(stack_url):
    request = urllib.request.Request(
        stack_url + "/events", data=b"\xff\xfe{", method="POST", headers={"content-type": "application/json"}
    )
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=10)
    assert error.value.code == 400
    assert json.loads(error.value.read())["error"]["field"] == "body"


@pytest.mark.local_only  # the demo starts a local stack of its own
def test_make_demo_prints_a_result_and_leaves_nothing_running():
    port = free_port()
    env = os.environ | {"ABACUS_PORT": str(port), "ABACUS_DEMO_USERS": "400"}
    env.pop("ABACUS_TOKEN", None)
    finished = subprocess.run(
        [sys.executable, "-m", "abacus_local", "demo"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert "Sample ratio check" in finished.stdout and "one-page" in finished.stdout
    assert (
        "The report page:" in finished.stdout and (ROOT / ".abacus" / "demo-report.html").read_text().count("<svg") == 2
    )
    assert "token phc_local_dev" in finished.stdout
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0  # nothing listens any more


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND", "PURGE", "OPTIONS", "PUT", "HEAD"])
def test_a_method_no_route_has_gets_api_gateways_404(stack_url, method):
    """API Gateway answers any method a path has no route for with 404 {"message": "Not Found"}."""
    host, port = urlsplit(stack_url).hostname, urlsplit(stack_url).port
    for path in ("/assign", "/experiments/some-key", "/openapi.json", "/nowhere"):
        connection = http.client.HTTPConnection(host, port, timeout=10)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        assert response.status == 404, (method, path)
        assert body == (b"" if method == "HEAD" else b'{"message":"Not Found"}'), (method, path)
