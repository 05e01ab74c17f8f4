"""The stats engine's costs (issue #3): cold import of abacus.stats from the built stats layer,
and the time to analyse one metric with 2 and 10 variants.

The import runs in a bare interpreter (`-S -B`: no site-packages, no bytecode written) that sees
only ResultsFunction's layers and the runtime's SDK, as in Lambda; run `sam build` first.

Run: .venv/bin/python bench/stats_speed.py [import runs]
"""

import json
import statistics
import subprocess
import sys
import time

from abacus.documents import MetricKind
from abacus.stats import Settings, VariantData, analyse
from abacus_local.template import ROOT, Template
from bench.built import lambda_path, runtime_sdk_dir

PROBE = """
import json, sys, time
sys.path[:0] = sys.argv[1:]
started = time.perf_counter()
import abacus.stats
print(json.dumps({"ms": (time.perf_counter() - started) * 1000}))
"""


def cold_import_ms(runs: int) -> list[float]:
    template, sdk = Template(), runtime_sdk_dir()
    paths = lambda_path(template, "ResultsFunction", sdk)[1:]  # the layers and the SDK
    times = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-S", "-B", "-c", PROBE, *paths], capture_output=True, text=True, check=True, cwd=ROOT
        )
        times.append(json.loads(out.stdout.strip().splitlines()[-1])["ms"])
    return times


def analysis_ms(kind: MetricKind, count: int, repeats: int = 300) -> list[float]:
    if kind == "conversion":
        variants = [VariantData("control" if i == 0 else f"v{i}", 50_000, 5_000 + 37 * i) for i in range(count)]
    else:
        variants = [
            VariantData("control" if i == 0 else f"v{i}", 50_000, sum=600_000 + 900 * i, sum_squares=9e7 + 1e5 * i)
            for i in range(count)
        ]
    settings = Settings(weights={v.key: 1 for v in variants}, days_running=7)
    analyse(kind, variants, settings)  # warm
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        analyse(kind, variants, settings)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> int:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    imports = cold_import_ms(runs)
    print(
        f"cold import of abacus.stats (built layers, {runs} fresh interpreters): "
        f"median {statistics.median(imports):.0f} ms, min {min(imports):.0f}, max {max(imports):.0f}"
    )
    for kind in ("conversion", "mean"):
        for count in (2, 10):
            times = analysis_ms(kind, count)
            print(
                f"analyse {kind:<10} {count:>2} variants: median {statistics.median(times):.2f} ms, "
                f"p99 {sorted(times)[int(len(times) * 0.99) - 1]:.2f} ms"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
