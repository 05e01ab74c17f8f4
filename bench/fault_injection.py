"""Fault injection at several rates (issue #7): the workload of tests/integration/test_faults.py
(create and launch an experiment, 40 users' exposure and purchase events sent twice each, the
nightly job until it finishes, then once more) under DynamoDB faults injected into moto: throttling,
500s, timeouts before and after the write, unprocessed batch items. botocore's retry backoff is
skipped (not waited). Prints what was injected, how often clients had to send again (503), how
many nightly runs it took, and whether every event was stored once and the snapshot equals the
fault-free one.

Run: .venv/bin/python bench/fault_injection.py [seeds]
"""

import os
import sys
from datetime import UTC, datetime, timedelta

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ["POWERTOOLS_LOG_LEVEL"] = "ERROR"

from _pytest.monkeypatch import MonkeyPatch

import tests.conftest  # noqa: F401 - the test environment (credentials, region, no cache)
from abacus_local.template import Template
from tests.integration import test_faults as workload


def main(seeds: int) -> None:
    template = Template()
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    with workload.fresh_stack(template):
        expected = workload.run_workload(start)
    sent = {e["uuid"] for batch in workload.exposure_and_purchase_batches(start) for e in batch}
    print("injected: throttling/500/timeout before/timeout after/unprocessed; 503s: requests clients sent again")
    print("rate  seed  injected           503s  nightly runs  events     snapshot")
    for rate in (0.05, 0.1, 0.2, 0.3):
        for seed in range(seeds):
            patch = MonkeyPatch()
            faults = workload.Faults(rate, seed)
            faults.install(patch)
            patch.setattr("botocore.endpoint.time", workload.NoWaiting)
            workload.CLIENT_RETRIES.clear()
            workload.NIGHTLY_RUNS.clear()
            with workload.fresh_stack(template):
                faults.enabled = True
                got = workload.run_workload(start, faults, nightly_fault_rate=min(0.4, rate * 2))
                faults.enabled = False
                stored = [item["uuid"]["S"] for item in workload.scan("EventsTable")]
            patch.undo()
            kinds = "/".join(str(faults.injected[kind]) for kind in workload.FAULT_KINDS)
            once = "each once" if sorted(stored) == sorted(sent) else f"WRONG {len(stored)}/{len(sent)}"
            same = "identical" if got == expected else "DIFFERENT"
            retries = sum(workload.CLIENT_RETRIES.values())
            print(f"{rate:<5} {seed:<5} {kinds:<18} {retries:<5} {workload.NIGHTLY_RUNS[0]:<13} {once:<10} {same}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3)
