"""A/A experiments through the alert path (issue 32): how many ever alert "ship" when nothing differs,
over twice the planned length; and, for power, an A/B whose true lift is the mde.

Each simulated experiment is a running experiment with a snapshot every night, made as the nightly
job makes it: that night's users' sums as a stored page (PageSums.from_json of the page JSON, the
sums PageSums.add_user would give: the bench checks this on a few hundred users per case first),
merged into the run's PageSums (PageSums.merge), analysed by abacus.nightly.snapshot.analysis itself
(the experiment's spec, so the same Settings, plan and earlier looks as the job), with the earlier
nights' analyses as `earlier` after a round trip through JSON (allow_nan=False, as the results table
stores them). Each night's stored analysis goes through abacus.alerts.detect.alerts (running: final
is False); an experiment "alerts ship" on the first night an alert of kind "decision" has a decision
starting "ship" (ship:<variant>, the control included). An experiment's planned day is the first
night its `sample_reached` alert fires (every variant at the plan's exposures); it runs to twice that
night, the nights after the design's final look included.

The cases (the experiment's defaults otherwise: CUPED on, a 14-day pre-exposure window; the users
are new, so every pre-exposure value is 0 and no adjustment is made, as the nightly job finds):
- conversion, baseline 10% (the metric's planning baseline), mde 10% relative, 2 variants 50/50,
  2,200 users a day: planned 15,176 per variant (14,751 fixed-horizon, times the spending design's
  inflation), reached on night 14 (or 15);
- the same with 3 variants 34/33/33 and 4,000 users a day: 18,379 per variant, night 14;
- revenue per user (a `sum` metric): 10% of users buy, amounts log-normal (mu 3, sigma 1), per user
  mean 3.31 and sd 16.9 (skewed); no planning baseline, so the plan comes from the control at the
  first night and is kept (plans.py): 42,302 per variant from the true mean and sd, reached on
  night 14 at 6,000 users a day, but the first night's sd varies (plans of 26,000 to 166,000);
- the 2-variant conversion case with the treatment converting 11% (+10%, the mde): the share that
  alerts ship:b by the planned night and by twice it, and the median night of that alert (an A/B
  stops at its first ship alert: the design's smallest p-value over the looks keeps it).

Users arrive Poisson (the day's mean as above) and are split by the weights (a multinomial draw,
as hashing does); a user's value is known from their first night on (no attribution window
filling in: the windows' growth is left out). Experiments are seeded from (seed, case, experiment),
so the numbers do not depend on the workers, and a run's first N experiments are a smaller run's.

Bar (issue 32): at most 5% of A/A experiments ever alert ship; the rate is given with its 95%
Clopper-Pearson interval, and the script exits 1 when an interval lies wholly above 5%. Beside it,
the ship alerts an experiment should not get: one against the direction its treatment crossed the
boundary in (a treatment whose lift was negative the first night it was significant, shipped; the
control shipped over a treatment that crossed above it), a second ship alert naming another
variant, a ship alert after a no_effect one; and the rate without the ship alerts against the
crossing.

Run (from the repository root): .venv/bin/python bench/aa_alerts.py [experiments, 1000] [seed, 32]
[workers, 2] [cases, all: their numbers in CASES from 0, comma-separated]. About 8 minutes of CPU
for the default 1,000 per case (4 minutes on 2 free cores): each night is a full
snapshot.analysis (about 5 ms, half of it the spending boundaries).
"""

import json
import math
import multiprocessing
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import stats

from abacus.alerts.detect import Alert, alerts
from abacus.experiments.spec import ExperimentCreate
from abacus.nightly import snapshot
from abacus.nightly.sums import PageSums
from abacus.nightly.values import UserValues

type Floats = npt.NDArray[np.float64]

BAR = 0.05
START = datetime(2026, 1, 5, tzinfo=UTC)
# A guard: the revenue case's plan, from its first night's sd, is reached as late as night 82 (of
# 7,000 experiments); one past night 60 stops here, after its final look, short of twice its plan.
MOST_NIGHTS = 120
BUY_RATE, MU, SIGMA = 0.10, 3.0, 1.0  # the revenue metric's users


@dataclass(frozen=True)
class Timeline:
    """The experiment as abacus.nightly.snapshot reads it (running since START)."""

    status: str = "running"
    started_at: datetime | None = START
    stopped_at: datetime | None = None


@dataclass(frozen=True)
class Case:
    name: str
    weights: tuple[int, ...]  # control first, then b, c
    metric: dict[str, Any]
    users_per_day: int
    lift: float  # the true relative lift of b (the other treatments have none)

    @property
    def keys(self) -> list[str]:
        return ["control", "b", "c"][: len(self.weights)]

    def spec(self) -> ExperimentCreate:
        variants = [{"key": key, "weight": weight} for key, weight in zip(self.keys, self.weights, strict=True)]
        return ExperimentCreate.model_validate(
            {"key": "aa", "name": "A/A", "variants": variants, "primary_metric": self.metric,
             "minimum_detectable_effect": 0.10}
        )  # fmt: skip

    def values(self, rng: np.random.Generator, users: int, variant: str) -> Floats:
        """The users' values of the metric in `variant`."""
        lift = self.lift if variant == "b" else 0.0
        if self.metric["kind"] == "conversion":
            return (rng.random(users) < self.metric["baseline"] * (1 + lift)).astype(np.float64)
        bought = rng.random(users) < BUY_RATE
        return np.where(bought, rng.lognormal(MU, SIGMA, users) * (1 + lift), 0.0)


CONVERSION = {"event": "signup", "kind": "conversion", "baseline": 0.10}
REVENUE = {"event": "purchase", "kind": "sum", "property": "amount"}
CASES = [
    Case("conversion 10%, 2 variants, A/A", (50, 50), CONVERSION, 2200, 0.0),
    Case("conversion 10%, 3 variants, A/A", (34, 33, 33), CONVERSION, 4000, 0.0),
    Case("revenue per user, 2 variants, A/A", (50, 50), REVENUE, 6000, 0.0),
    Case("conversion 10% vs 11% (the mde), A/B", (50, 50), CONVERSION, 2200, 0.10),
]


class Outcome(NamedTuple):
    """One experiment's alerts: the night each (kind, decision) first fired."""

    planned_night: int | None  # the first night with `sample_reached`
    nights: int
    first: dict[str, int]  # "kind:decision" -> night
    planned_exposures: int | None
    other_way: tuple[str, ...]  # the ship alerts against the direction of the crossing (Directions)
    # The first no_effect alert's reason: "an effect that large is ruled out" (True) or the
    # planned sample reached without a significant difference (False); None: no such alert.
    ruled_out: bool | None


class Directions:
    """Each treatment's direction when it first became significant (the sign of its lift that
    night): the direction of the evidence, which stays (the p-value is the smallest over the
    looks) while tonight's lift may change sign."""

    def __init__(self) -> None:
        self.sign: dict[str, float] = {}

    def update(self, analysis: Any) -> None:
        for row in analysis["variants"]:
            if row.get("significant") and row["key"] not in self.sign:
                self.sign[row["key"]] = math.copysign(1.0, row["lift"]["absolute"])

    def against(self, decision: str, treatments: list[str]) -> bool:
        """Whether a ship decision goes against the evidence: a treatment shipped that crossed
        below the control, or the control shipped over a treatment that crossed above it."""
        variant = decision.split(":", 1)[1]
        if variant == "control":
            return any(self.sign.get(key, -1.0) > 0 for key in treatments)
        return self.sign.get(variant, 1.0) < 0


def page(night: date, values: dict[str, Floats]) -> dict[str, Any]:
    """A page of one night's users as the nightly job stores it (PageSums.to_json's shape): the
    exposures, the metric's sums of values, squares and cubes, and the pre-exposure sums (all 0)."""
    keys = list(values)
    zeros = dict.fromkeys(keys, 0.0)
    sums = {
        "values": {key: float(v.sum()) for key, v in values.items()},
        "squares": {key: float((v * v).sum()) for key, v in values.items()},
        "cubes": {key: float((v * v * v).sum()) for key, v in values.items()},
        "pre": zeros, "pre_squares": zeros, "cross": zeros, "capped": zeros,
        "pre_cubes": {}, "cross_value_squared": {}, "cross_pre_squared": {},
    }  # fmt: skip
    exposures = {key: len(v) for key, v in values.items()}
    return {"exposures": exposures, "metrics": [sums], "exposures_by_day": {night.isoformat(): exposures}}


def draw_night(case: Case, rng: np.random.Generator) -> dict[str, Floats]:
    users = rng.multinomial(rng.poisson(case.users_per_day), np.array(case.weights) / sum(case.weights))
    return {key: case.values(rng, int(n), key) for key, n in zip(case.keys, users, strict=True)}


def stored(analysis: Any) -> Any:
    """The analysis as the results table gives it back (FiniteJSONAttribute)."""
    return json.loads(json.dumps(analysis, allow_nan=False))


def simulate(task: tuple[int, int, int]) -> Outcome:
    """One experiment, night by night, to twice its planned night (an A/B to its ship alert)."""
    case_index, experiment, seed = task
    case = CASES[case_index]
    rng = np.random.default_rng([seed, case_index, experiment])
    spec, timeline = case.spec(), Timeline()
    total = PageSums(case.keys, spec.all_metrics())
    earlier: list[Any] = []
    seen = Seen(case.keys[1:])
    night, planned_night = 0, None
    while (planned_night is None or night < 2 * planned_night) and night < MOST_NIGHTS:
        night += 1
        cutoff = START + timedelta(days=night)
        total.merge(PageSums.from_json(page((cutoff - timedelta(days=1)).date(), draw_night(case, rng))))
        analysis = stored(snapshot.analysis(spec, timeline, cutoff, total, earlier))
        earlier.append(analysis)
        seen.night(night, analysis, alerts(analysis, timeline.started_at, cutoff, final=False))
        planned_night = seen.first.get("sample_reached:reached")
        if case.lift and shipped_on(seen.first) is not None:
            break  # an A/B's question is answered (a crossed boundary stays crossed: min p over the looks)
    planned = earlier[-1].get("planned_exposures")
    return Outcome(planned_night, night, seen.first, planned, tuple(seen.other_way), seen.ruled_out)


class Seen:
    """An experiment's alerts so far: the night each first fired, the ship alerts against the
    direction of the crossing, and what its first no_effect alert said."""

    def __init__(self, treatments: list[str]) -> None:
        self.treatments = treatments
        self.first: dict[str, int] = {}
        self.directions = Directions()
        self.other_way: list[str] = []
        self.ruled_out: bool | None = None

    def night(self, night: int, analysis: Any, found: list[Alert]) -> None:
        self.directions.update(analysis)
        for alert in found:
            key = f"{alert['kind']}:{alert['decision']}"
            if key in self.first:
                continue  # sent already
            self.first[key] = night
            if alert["kind"] != "decision":
                continue
            if alert["decision"].startswith("ship") and self.directions.against(alert["decision"], self.treatments):
                self.other_way.append(alert["decision"])
            if alert["decision"] == "no_effect":
                self.ruled_out = "ruled out" in alert["summary"]


def check_pages(case: Case, rng: np.random.Generator) -> None:
    """The bench's pages hold the sums PageSums.add_user gives for the same users (pre-exposure
    values 0, as for new users with CUPED on), and their analyses agree."""
    spec = case.spec()
    metrics = spec.all_metrics()
    values = draw_night(case, rng)
    values = {key: v[:150] for key, v in values.items()}
    by_user = PageSums(case.keys, metrics)
    for key, drawn in values.items():
        for value in drawn:
            by_user.add_user(key, UserValues([float(value)], [0.0]), True, START + timedelta(hours=1))
    ours = PageSums.from_json(page(START.date(), values))

    def seen(sums: PageSums) -> list[Any]:
        analysis = snapshot.analysis(spec, Timeline(), START + timedelta(days=1), sums, [])
        return [sums.statistics(metrics, case.keys, 14)[0], analysis]

    assert _close(seen(by_user), seen(ours)), f"{case.name}: the pages differ from add_user's"


def _close(theirs: Any, mine: Any) -> bool:
    """Equal but for the order floats were added in."""
    a, b = json.loads(json.dumps(theirs, default=asdict)), json.loads(json.dumps(mine, default=asdict))
    return _shape(a) == _shape(b) and bool(np.allclose(_numbers(a), _numbers(b), rtol=1e-12, atol=0))


def _numbers(tree: Any) -> list[float]:
    if isinstance(tree, dict):
        return [x for key in sorted(tree) for x in _numbers(tree[key])]
    if isinstance(tree, list):
        return [x for item in tree for x in _numbers(item)]
    return [float(tree)] if isinstance(tree, int | float) and not isinstance(tree, bool) else []


def _shape(tree: Any) -> Any:
    if isinstance(tree, dict):
        return {key: _shape(value) for key, value in tree.items()}
    if isinstance(tree, list):
        return [_shape(item) for item in tree]
    return None if isinstance(tree, int | float) and not isinstance(tree, bool) else tree


def interval(count: int, total: int) -> str:
    ci = stats.binomtest(count, total).proportion_ci(0.95, method="exact")
    return f"{count / total:6.2%} [{ci.low:6.2%}, {ci.high:6.2%}]"


def above_bar(count: int, total: int) -> bool:
    return bool(stats.binomtest(count, total).proportion_ci(0.95, method="exact").low > BAR)


def shipped_on(first: dict[str, int]) -> tuple[int, str] | None:
    """The first night a ship alert fired, and its decision."""
    ships = [(night, key) for key, night in first.items() if key.startswith("decision:ship")]
    return min(ships) if ships else None


def shipped(outcome: Outcome) -> tuple[int, str] | None:
    return shipped_on(outcome.first)


def spread(numbers: list[int]) -> str:
    return f"{statistics.median(numbers):g} ({min(numbers)}-{max(numbers)})"


def report_aa(outcomes: list[Outcome]) -> bool:
    """Prints an A/A case; True when its rate lies wholly above the bar."""
    n = len(outcomes)
    ships = [s for o in outcomes if (s := shipped(o)) is not None]
    exceeded = above_bar(len(ships), n)
    verdict = (
        "ABOVE 5% BY ITS INTERVAL" if exceeded else "bar met" if len(ships) <= BAR * n else "above 5% on the point"
    )
    print(f"  ever alert ship:                    {interval(len(ships), n)}  {verdict}")
    by_decision = Counter(key.split(":", 1)[1] for _, key in ships)
    print(f"    first ship alert:                 {dict(sorted(by_decision.items()))}")
    if ships:
        print(f"    its night:                        median {spread([night for night, _ in ships])}")
    late = sum(1 for o in outcomes if (s := shipped(o)) and s[0] > (o.planned_night or MOST_NIGHTS))
    print(f"    after the planned night:          {late}")
    report_contradictions(outcomes)
    backed = sum(any(key[len("decision:") :] not in o.other_way for key in o.first if key.startswith("decision:ship"))
                 for o in outcomes)  # fmt: skip
    print(f"  ever alert ship, with the crossing: {interval(backed, n)}")
    no_effect = [o for o in outcomes if "decision:no_effect" in o.first]
    nights = f", night {spread([o.first['decision:no_effect'] for o in no_effect])}" if no_effect else ""
    print(f"  ever alert no_effect:               {interval(len(no_effect), n)}{nights}")
    srm = sum(any(key.startswith("srm:") for key in o.first) for o in outcomes)
    which = Counter(key for o in outcomes for key in o.first if key.startswith("srm:"))
    print(f"  ever alert srm (a broken split):    {interval(srm, n)}  {dict(sorted(which.items()))}")
    return exceeded


def report_contradictions(outcomes: list[Outcome]) -> None:
    """The ship alerts an experiment should not get: against the direction its treatment crossed
    in, a second one naming another variant, one after a no_effect alert."""
    against = Counter(decision for o in outcomes for decision in o.other_way)
    print(f"    against the crossing's direction: {sum(map(bool, (o.other_way for o in outcomes)))} experiments "
          f"{dict(sorted(against.items()))}")  # fmt: skip
    several = sum(sum(key.startswith("decision:ship") for key in o.first) > 1 for o in outcomes)
    print(f"    two ship alerts or more:          {several} experiments")
    after = sum(
        1
        for o in outcomes
        if (s := shipped(o)) and "decision:no_effect" in o.first and s[0] > o.first["decision:no_effect"]
    )
    print(f"    after a no_effect alert:          {after} experiments")


def report_ab(outcomes: list[Outcome]) -> None:
    n = len(outcomes)
    right = [(s[0], o) for o in outcomes if (s := shipped(o)) and s[1] == "decision:ship:b"]
    # Stopped at the alert: one before its plan was reached has no planned night yet.
    by_plan = sum(o.planned_night is None or night <= o.planned_night for night, o in right)
    print(f"  alert ship:b by the planned night:  {interval(by_plan, n)}  (the plan's power: 80%)")
    print(f"  alert ship:b by twice it:           {interval(len(right), n)}")
    if right:
        print(f"    its night:                        median {spread([night for night, _ in right])}")
    wrong = sum(1 for o in outcomes if (s := shipped(o)) and s[1] != "decision:ship:b")
    print(f"  alert ship:control first:           {wrong}")
    print(f"  ship alerts against the crossing:   {sum(map(bool, (o.other_way for o in outcomes)))}")
    over = sum(o.ruled_out is False for o in outcomes)
    print(f"  alert no_effect, the plan's end:    {interval(over, n)}  (the test over, no difference found)")
    ruled_out = sum(bool(o.ruled_out) for o in outcomes)
    print(f"  alert no_effect, +10% ruled out:    {interval(ruled_out, n)}  (the true lift, said excluded)")


def run(experiments: int, seed: int, workers: int, cases: list[int]) -> dict[int, list[Outcome]]:
    tasks = [(c, e, seed) for c in cases for e in range(experiments)]
    found: dict[int, list[Outcome]] = {c: [] for c in cases}
    with multiprocessing.Pool(workers) as pool:
        for (case_index, _, _), outcome in zip(tasks, pool.imap(simulate, tasks, chunksize=20), strict=True):
            found[case_index].append(outcome)
    return found


def report(case: Case, outcomes: list[Outcome]) -> bool:
    """Prints a case; True when it is an A/A whose rate lies wholly above the bar."""
    planned = [o.planned_night for o in outcomes if o.planned_night is not None]
    plans = [o.planned_exposures for o in outcomes if o.planned_exposures is not None]
    print(f"\n{case.name}: {case.users_per_day} users a day, weights {'/'.join(map(str, case.weights))}")
    print(f"  plan per variant: median {spread(plans)}; planned night {spread(planned)}; "
          f"nights simulated {spread([o.nights for o in outcomes])}")  # fmt: skip
    if unreached := sum(o.planned_night is None and shipped(o) is None for o in outcomes):
        print(f"  PLAN NOT REACHED by night {MOST_NIGHTS} in {unreached}")
    if short := sum(o.planned_night is not None and o.nights < 2 * o.planned_night and not case.lift for o in outcomes):
        print(f"  stopped at night {MOST_NIGHTS}, short of twice the plan: {short}")
    if case.lift:
        report_ab(outcomes)
        return False
    return report_aa(outcomes)


def main() -> int:
    """Arguments: experiments per case, seed, workers, and the cases to run (their numbers in
    CASES, from 0, comma-separated; all when not given)."""
    args = sys.argv[1:4] + ["1000", "32", "2"][len(sys.argv[1:4]) :]
    experiments, seed, workers = (int(a) for a in args)
    cases = [int(c) for c in sys.argv[4].split(",")] if len(sys.argv) > 4 else list(range(len(CASES)))
    began = time.perf_counter()
    rng = np.random.default_rng([seed, 99])
    for case in CASES:
        check_pages(case, rng)
    print(f"A/A and A/B through the alert path: {experiments} experiments per case, seed {seed}, {workers} workers")
    print("The pages' sums match PageSums.add_user's for the same users, and their analyses (every case).")
    found = run(experiments, seed, workers, cases)
    exceeded = [report(CASES[index], outcomes) for index, outcomes in found.items()]
    command = " ".join(["bench/aa_alerts.py", *sys.argv[1:]])
    print(f"\n.venv/bin/python {command}: {time.perf_counter() - began:.0f} s")
    return 1 if any(exceeded) else 0


if __name__ == "__main__":
    sys.exit(main())
