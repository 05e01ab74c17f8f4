"""The stats engine's costs (issues #3 and #12): cold import of abacus.stats from the built stats
layer, and the time to analyse one metric with 2 and 10 variants: the always-valid test without
a plan, and the nightly default (CUPED with the group-sequential test over 30 nightly looks).

The import runs in a bare interpreter (`-S -B`: no site-packages, no bytecode written) that sees
only ResultsFunction's layers and the runtime's SDK, as in Lambda; run `sam build` first.

Run: .venv/bin/python bench/stats_speed.py [import runs]
"""

import json
import statistics
import subprocess
import sys
import time

from abacus.core.documents import MetricKind
from abacus.stats.analysis import Settings, VariantData, analyse
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


def _variants(kind: MetricKind, count: int, exposures: int, covariate: bool) -> list[VariantData]:
    """`count` variants of `exposures` users each; with a pre-exposure covariate's sums when asked."""
    made = []
    for i in range(count):
        key = "control" if i == 0 else f"v{i}"
        pre = (0.3 * exposures, 0.3 * exposures, 0.06 * exposures + i) if covariate else (None, None, None)
        if kind == "conversion":
            made.append(VariantData(key, exposures, exposures // 10 + 37 * i * exposures // 50_000, 0.0, 0.0, *pre))
        else:
            scale = exposures / 50_000
            made.append(VariantData(key, exposures, 0, (600_000 + 900 * i) * scale, (9e7 + 1e5 * i) * scale, *pre))
    return made


def analysis_ms(kind: MetricKind, count: int, looks: int = 0, repeats: int = 300) -> list[float]:
    """Without looks: the always-valid test, no covariate. With looks: CUPED and the spending
    design, tonight's look after `looks - 1` earlier nights of 2,000 users per variant."""
    if looks:
        variants = _variants(kind, count, 2_000 * looks, covariate=True)
        earlier = [_variants(kind, count, 2_000 * night, covariate=True) for night in range(1, looks)]
        settings = Settings(planned_exposures=62_000, previous_looks=earlier, days_running=looks)
    else:
        variants = _variants(kind, count, 50_000, covariate=False)
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
    for looks, label in ((0, "mSPRT, no covariate"), (30, "CUPED + spending, 30 looks")):
        for kind in ("conversion", "mean"):
            for count in (2, 10):
                times = analysis_ms(kind, count, looks, repeats=100 if looks else 300)
                print(
                    f"analyse {kind:<10} {count:>2} variants ({label}): median {statistics.median(times):.2f} ms, "
                    f"p99 {sorted(times)[int(len(times) * 0.99) - 1]:.2f} ms"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
