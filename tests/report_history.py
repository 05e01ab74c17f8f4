"""Histories for the report's tests: an experiment's daily snapshots as the nightly job stores them,
each analysed by the stats engine from simulated users (a primary metric and two secondary ones),
without storage or handlers."""

import random
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import cast

from abacus.core.answers import Experiment
from abacus.core.documents import MetricAnalysis, MetricJson, Snapshot
from abacus.stats.analysis import CONVERSION, MEAN, Settings, VariantData, analyse

KEY = "new-checkout"
EXPERIMENT = cast(Experiment, {"key": KEY, "name": "One-page checkout", "status": "running"})
FIRST_DAY = date(2026, 9, 1)
PRIMARY: MetricJson = {"event": "purchase", "kind": "conversion", "window_days": 14}
SECONDARY: list[MetricJson] = [
    {"event": "add_to_cart", "kind": "conversion", "window_days": 14},
    {"event": "order", "kind": "sum", "property": "amount", "window_days": 14},
]
# Per variant, each metric's chance that a user does it (the sum metric's users spend 10 to 50).
RATES: dict[str, tuple[float, ...]] = {
    "control": (0.20, 0.40, 0.20),
    "one-page": (0.24, 0.44, 0.22),
    "two-page": (0.21, 0.39, 0.20),
}


class _Totals:
    """One variant's users so far: exposures, and per metric the users who did it and their sums."""

    def __init__(self) -> None:
        self.exposures = 0
        self.counts = [0, 0, 0]
        self.sum = 0.0
        self.sum_squares = 0.0

    def add_user(self, rng: random.Random, rates: tuple[float, ...]) -> None:
        self.exposures += 1
        for metric, rate in enumerate(rates):
            if rng.random() < rate:
                self.counts[metric] += 1
                if metric == 2:
                    amount = rng.uniform(10, 50)
                    self.sum += amount
                    self.sum_squares += amount * amount

    def data(self, key: str, metric: int) -> VariantData:
        if metric == 2:
            return VariantData(key, self.exposures, sum=self.sum, sum_squares=self.sum_squares)
        return VariantData(key, self.exposures, conversions=self.counts[metric])


def history(days: int, rates: Mapping[str, tuple[float, ...]] = RATES, users_per_day: int = 300) -> list[Snapshot]:
    """`days` daily snapshots, oldest first, of users arriving each day at their variant's rates."""
    rng = random.Random(days)
    totals = {key: _Totals() for key in rates}
    snapshots = []
    for day in range(days):
        for _ in range(users_per_day):
            key = rng.choice(list(rates))
            totals[key].add_user(rng, rates[key])
        settings = Settings(weights=dict.fromkeys(rates, 1.0), mde=0.05, days_running=day + 1)
        analyses: list[MetricAnalysis] = [
            cast(
                MetricAnalysis,
                {
                    **analyse(CONVERSION if metric["kind"] == "conversion" else MEAN, variants, settings),
                    "metric": metric,
                },
            )
            for metric, variants in (
                (spec, [totals[key].data(key, index) for key in rates])
                for index, spec in enumerate([PRIMARY, *SECONDARY])
            )
        ]
        cutoff = datetime.combine(FIRST_DAY + timedelta(days=day + 1), datetime.min.time(), UTC)
        snapshot = cast(
            Snapshot,
            {
                **analyses[0],
                "secondary_metrics": analyses[1:],
                "experiment": KEY,
                "date": (FIRST_DAY + timedelta(days=day)).isoformat(),
                "cutoff": cutoff.isoformat(),
                "computed_at": (cutoff + timedelta(hours=3)).isoformat(),
                "final": False,
            },
        )
        snapshots.append(snapshot)
    return snapshots
