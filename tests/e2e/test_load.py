"""50 concurrent clients against the local stack, a fixed number of rounds each (the same work
however busy the machine; the time is bounded only as a safety net): no errors, a user's variant
never changes, every exposure recorded once and every purchase counted once (checked in the
nightly job's results). bench/load_test.py runs it for a time and reports the latencies."""

from datetime import UTC, datetime, timedelta

from abacus_local import loadtest
from tests.e2e.conftest import TOKEN, invoke_nightly

CLIENTS, ROUNDS, SAFETY_SECONDS = 50, 6, 600


def test_fifty_clients_without_errors_and_every_exposure_recorded_once(stack_url, client):
    loadtest.prepare(client)
    report = loadtest.run(stack_url, TOKEN, CLIENTS, SAFETY_SECONDS, rounds=ROUNDS)
    assert not report.errors, report.summary()
    assert len(report.latencies["assign"]) == CLIENTS * ROUNDS, report.summary()
    assert len(report.users) > 200, report.summary()  # from a pool of 2,000: clients meet on some
    assert all(len(variants) == 1 for variants in report.variants.values()), "a user's variant changed"

    invoke_nightly(stack_url, datetime.now(UTC) + timedelta(days=1), client, loadtest.EXPERIMENT)
    results = client.results(loadtest.EXPERIMENT)
    assert sum(row["exposures"] for row in results["variants"]) == len(report.users)
    buyers = {user for user in report.purchases.values()}
    assert sum(row["conversions"] for row in results["variants"]) == len(buyers)
    counted = results["secondary_metrics"][0]["variants"]
    assert round(sum(row["mean"] * row["exposures"] for row in counted)) == len(report.purchases)
