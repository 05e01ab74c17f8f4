"""Capacity per partition key (issue 15): issue 15's three scenarios through the real handlers on
moto, and the token rate limit's counters at 1,000 execution environments
(tests/capacity_scenarios.py), every DynamoDB request charged its units by DynamoDB's rules
(tests/capacity.py), and each partition key's units a second at the issue's rates, against a
partition's 1,000 write units and 3,000 read units a second.

Run: .venv/bin/python bench/capacity.py [units of traffic per scenario; default 2000, 1000 for the counters]
"""

import os
import sys
import time

os.environ.update({"POWERTOOLS_LOG_LEVEL": "WARNING"})

from tests.capacity import MAX_READ_UNITS_PER_KEY, MAX_WRITE_UNITS_PER_KEY, over_limits
from tests.capacity_scenarios import SCENARIOS, backend, measure, table


def main() -> int:
    count = int(sys.argv[1]) if len(sys.argv) > 1 else None
    print(f"limits per partition key: {MAX_WRITE_UNITS_PER_KEY:,} WCU/s, {MAX_READ_UNITS_PER_KEY:,} RCU/s\n")
    failing = []
    for scenario in SCENARIOS:
        started = time.perf_counter()
        with backend():
            measured = measure(scenario, count)
        print(table(measured))
        print(f"  ({time.perf_counter() - started:.0f} s)\n")
        failing += [(scenario.name, rate) for rate in over_limits(measured.rates)]
    print(f"{len(failing)} partition key(s) over a limit:")
    for name, rate in failing:
        print(f"  {name}: {rate.target} {rate.partition_key}: {rate.load:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
