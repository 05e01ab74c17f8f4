"""The nightly job's sufficient statistics: per variant, each metric component's sums of its users'
values (squares, cubes, with a pre-exposure window its mixed sums; a ratio's numerator times
denominator; a percentile cap's histograms, capping.py; the primary metric's per breakdown value,
breakdown_sums.py), and exposures per variant and day. They add up: a page's sums merge into the
run's, and survive the JSON a page is stored as; statistics() gives what abacus.stats analyses.

Pure: no storage (abacus.nightly.computation stores and reads the pages)."""

from collections import Counter
from datetime import UTC, datetime
from typing import Any, cast

from abacus.core.documents import CapReport, FunnelStepCounts, RatioTotals
from abacus.experiments.metrics_spec import Cap, MetricSpec, components
from abacus.nightly import breakdown_sums, capping
from abacus.nightly.values import CONVERTED, UserValues
from abacus.stats.analysis import VariantData
from abacus.stats.ratio import RatioSums, linearized


class _Sums:
    """One metric's running sums per variant: of the values, their squares, and with a
    pre-exposure window, of the pre-exposure values, their squares and value times pre-value.
    A capped metric's values are capped: at its value as they are added (`capped` counts the
    users lowered), or at its percentile once every user is in (their histograms, capping.py).
    For the skewness correction (abacus.stats.skewness), the sums of cubes: of the values, of the
    pre-exposure values, and the two mixed ones (value^2 pre-value, value pre-value^2); None once a
    page stored before they were kept is added in (the total is then unknown)."""

    FIELDS = ("values", "squares", "pre", "pre_squares", "cross", "capped")
    CUBE_FIELDS = ("cubes", "pre_cubes", "cross_value_squared", "cross_pre_squared")

    def __init__(self, variant_keys: list[str], cap: Cap | None = None) -> None:
        self.values = dict.fromkeys(variant_keys, 0.0)
        self.squares = dict.fromkeys(variant_keys, 0.0)
        self.pre = dict.fromkeys(variant_keys, 0.0)
        self.pre_squares = dict.fromkeys(variant_keys, 0.0)
        self.cross = dict.fromkeys(variant_keys, 0.0)
        self.capped = dict.fromkeys(variant_keys, 0.0)
        self.cap_value = cap.value if cap is not None else None
        self.histograms: dict[str, capping.Histogram] | None = None
        if cap is not None and cap.percentile is not None:
            self.histograms = {variant: capping.Histogram() for variant in variant_keys}
        # A percentile cap's values are capped from the histograms, which keep no cubes: none kept.
        kept = None if self.histograms is not None else variant_keys
        self.cubes: dict[str, float] | None = None if kept is None else dict.fromkeys(kept, 0.0)
        self.pre_cubes: dict[str, float] | None = None if kept is None else dict.fromkeys(kept, 0.0)
        self.cross_value_squared: dict[str, float] | None = None if kept is None else dict.fromkeys(kept, 0.0)
        self.cross_pre_squared: dict[str, float] | None = None if kept is None else dict.fromkeys(kept, 0.0)

    def add(self, variant: str, value: float, pre_value: float | None) -> float:
        """Adds a user's value; returns it as counted (capped)."""
        if self.histograms is not None:
            self.histograms[variant].add(value, pre_value or 0.0)
        if self.cap_value is not None and value > self.cap_value:
            value = self.cap_value
            self.capped[variant] += 1
        self.values[variant] += value
        self.squares[variant] += value * value
        if pre_value is not None:
            self.pre[variant] += pre_value
            self.pre_squares[variant] += pre_value * pre_value
            self.cross[variant] += pre_value * value
        self._add_cubes(variant, value, pre_value)
        return value

    def _add_cubes(self, variant: str, value: float, pre_value: float | None) -> None:
        if self.cubes is not None:
            self.cubes[variant] = self.cubes.get(variant, 0.0) + value * value * value
        if pre_value is None:
            return
        for name, term in (
            ("pre_cubes", pre_value * pre_value * pre_value),
            ("cross_value_squared", value * value * pre_value),
            ("cross_pre_squared", value * pre_value * pre_value),
        ):
            if (sums := getattr(self, name)) is not None:
                sums[variant] = sums.get(variant, 0.0) + term

    def merge(self, other: "_Sums") -> None:
        for name in self.FIELDS:
            mine, theirs = getattr(self, name), getattr(other, name)
            for variant, total in theirs.items():
                mine[variant] = mine.get(variant, 0.0) + total
        for name in self.CUBE_FIELDS:
            mine, theirs = getattr(self, name), getattr(other, name)
            setattr(self, name, None if mine is None or theirs is None else _added(mine, theirs))
        if other.histograms is not None:
            if self.histograms is None:
                self.histograms = {}
            for variant, histogram in other.histograms.items():
                self.histograms.setdefault(variant, capping.Histogram()).merge(histogram)

    def to_json(self, bins_each: int) -> dict[str, Any]:
        stored: dict[str, Any] = {name: getattr(self, name) for name in self.FIELDS}
        for name in self.CUBE_FIELDS:  # zeros left out: a breakdown's many segments hold mostly zeros
            if (sums := getattr(self, name)) is not None:
                stored[name] = _nonzero(sums)
        if self.histograms is not None:
            for histogram in self.histograms.values():
                histogram.limit(bins_each)
            stored["histograms"] = {variant: h.to_json() for variant, h in self.histograms.items()}
        return stored

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> "_Sums":
        sums = cls([])
        for name in cls.FIELDS:  # pages stored before caps have no `capped`
            setattr(sums, name, {variant: float(total) for variant, total in stored.get(name, {}).items()})
        for name in cls.CUBE_FIELDS:  # pages stored before cubes were kept have none: unknown
            cubes = stored.get(name)
            setattr(sums, name, None if cubes is None else {variant: float(total) for variant, total in cubes.items()})
        if "histograms" in stored:
            sums.histograms = {v: capping.Histogram.from_json(h) for v, h in stored["histograms"].items()}
        return sums

    def percentile_cap(self, metric: MetricSpec) -> float | None:
        """The cap of a metric capped at a percentile, from every user's value (None: no users)."""
        if metric.cap is None or metric.cap.percentile is None or self.histograms is None:
            return None
        return capping.percentile_cap(list(self.histograms.values()), metric.cap.percentile)

    def variant_data(
        self, metric: MetricSpec, variant: str, exposures: int, with_covariate: bool, cap: float | None
    ) -> VariantData:
        """What abacus.stats analyses of a variant; `cap`: the metric's percentile cap."""
        pre_sum = self.pre.get(variant, 0.0) if with_covariate else None
        pre_squares = self.pre_squares.get(variant, 0.0) if with_covariate else None
        cross = self.cross.get(variant, 0.0) if with_covariate else None
        cubes = self._cubes(variant, with_covariate)
        if metric.kind in CONVERTED:
            conversions = round(self.values.get(variant, 0.0))
            return VariantData(variant, exposures, conversions, 0.0, 0.0, pre_sum, pre_squares, cross, *cubes)
        values, squares = self.values.get(variant, 0.0), self.squares.get(variant, 0.0)
        if cap is not None and self.histograms is not None:
            values, squares, capped_cross, _ = capping.capped_sums(self.histograms[variant], cap)
            cross = capped_cross if with_covariate else None
        return VariantData(variant, exposures, 0, values, squares, pre_sum, pre_squares, cross, *cubes)

    def _cubes(self, variant: str, with_covariate: bool) -> tuple[float | None, ...]:
        """VariantData's sum_cubes, pre_sum_cubes, cross_sum_outcome_squared, cross_sum_pre_squared."""
        found = [None if (sums := getattr(self, name)) is None else sums.get(variant, 0.0) for name in self.CUBE_FIELDS]
        return (found[0], *(found[1:] if with_covariate else (None, None, None)))

    def lowered(self, variant: str, cap: float | None) -> int:
        """Users whose value the cap lowered (`cap`: the metric's percentile cap, if any)."""
        if cap is not None and self.histograms is not None:
            return capping.capped_sums(self.histograms[variant], cap)[3]
        return round(self.capped.get(variant, 0.0))


def _nonzero(sums: dict[str, float]) -> dict[str, float]:
    return {variant: total for variant, total in sums.items() if total != 0}


def _floats(stored: dict[str, Any]) -> dict[str, float]:
    return {variant: float(total) for variant, total in stored.items()}


def _added(mine: dict[str, float], theirs: dict[str, float]) -> dict[str, float]:
    return {variant: mine.get(variant, 0.0) + theirs.get(variant, 0.0) for variant in mine.keys() | theirs.keys()}


class PageSums:
    """The sufficient statistics of some of an experiment's users (a page of a shard, or all):
    exposures per variant, each component's sums (components()) and, per ratio metric, the sum of
    its numerator times its denominator. Sums of pages add up to the experiment's."""

    def __init__(self, variant_keys: list[str], metrics: list[MetricSpec], breakdowns: int = 0) -> None:
        self.exposures: Counter[str] = Counter()
        # Persons counted in a variant (their first) who were also exposed to another under some
        # other id before their ids were joined (PostHog's $multiple): counted once, and reported.
        self.in_several_variants: Counter[str] = Counter()
        self.exposures_by_day: dict[str, Counter[str]] = {}  # first exposures per UTC day and variant
        self.metrics = [_Sums(variant_keys, metric.cap) for metric in components(metrics)]
        self.ratios = _ratio_positions(metrics)  # (numerator, denominator) component indexes
        self.ratio_cross = [dict.fromkeys(variant_keys, 0.0) for _ in self.ratios]
        # Per ratio, the sums of numerator^2 denominator and numerator denominator^2 (the skewness
        # correction's, abacus.stats.ratio); None once a page stored before them is added in.
        self.ratio_cubes: list[list[dict[str, float]]] | None = [
            [dict.fromkeys(variant_keys, 0.0), dict.fromkeys(variant_keys, 0.0)] for _ in self.ratios
        ]
        # Per breakdown, the primary metric's sums per value (breakdown_sums.py).
        self.breakdowns: list[breakdown_sums.Segments[PageSums]] = []
        self.primary_components = len(metrics[0].components()) if metrics else 1
        # A bandit's: per phase of the users' assignment, per variant, the primary metric's
        # [users, sum, sum of squares] (abacus.stats.bandits' cells), keyed by the phase's number.
        self.phase_cells: dict[str, dict[str, list[float]]] = {}
        if breakdowns:
            segment = [breakdown_sums.segment_metric(metrics[0])]
            make = lambda: PageSums(variant_keys, segment)  # noqa: E731 (one line, used right here)
            self.breakdowns = [breakdown_sums.Segments(make) for _ in range(breakdowns)]

    def add_user(
        self,
        variant: str,
        computed: UserValues,
        with_covariate: bool,
        exposed_at: datetime | None = None,
        breakdown_values: list[Any] | None = None,
        in_several_variants: bool = False,
        phase: int | None = None,
    ) -> None:
        """Adds a user; `phase`: a bandit's phase of their assignment (None: not a bandit)."""
        self.exposures[variant] += 1
        if in_several_variants:
            self.in_several_variants[variant] += 1
        if exposed_at is not None:
            self.exposures_by_day.setdefault(exposed_at.astimezone(UTC).date().isoformat(), Counter())[variant] += 1
        counted = [
            self.metrics[index].add(variant, value, computed.pre_values[index] if with_covariate else None)
            for index, value in enumerate(computed.values)
        ]
        for index, ((numerator, denominator), cross) in enumerate(zip(self.ratios, self.ratio_cross, strict=True)):
            n, d = counted[numerator], counted[denominator]
            cross[variant] += n * d
            if self.ratio_cubes is not None:
                squares_cross, cross_squares = self.ratio_cubes[index]
                squares_cross[variant] += n * n * d
                cross_squares[variant] += n * d * d
        if phase is not None:
            outcome = counted[self.primary_components - 1]  # a funnel's: its last step
            cell = self.phase_cells.setdefault(str(phase), {}).setdefault(variant, [0.0, 0.0, 0.0])
            cell[0] += 1
            cell[1] += outcome
            cell[2] += outcome * outcome
        if self.breakdowns:
            first = self.primary_components
            primary = UserValues(computed.values[:first], computed.pre_values[:first])
            for index, segments in enumerate(self.breakdowns):
                value = breakdown_values[index] if breakdown_values and index < len(breakdown_values) else None
                segments.of(value).add_user(variant, primary, with_covariate)

    def merge(self, other: "PageSums") -> None:
        self.exposures.update(other.exposures)
        self.in_several_variants.update(other.in_several_variants)
        for day, counts in other.exposures_by_day.items():
            self.exposures_by_day.setdefault(day, Counter()).update(counts)
        for mine, theirs in zip(self.metrics, other.metrics, strict=True):
            mine.merge(theirs)
        for my_cross, their_cross in zip(self.ratio_cross, other.ratio_cross, strict=True):
            for variant, total in their_cross.items():
                my_cross[variant] = my_cross.get(variant, 0.0) + total
        if self.ratio_cubes is None or other.ratio_cubes is None:
            self.ratio_cubes = None
        else:
            self.ratio_cubes = [
                [_added(mine, theirs) for mine, theirs in zip(my_pair, their_pair, strict=True)]
                for my_pair, their_pair in zip(self.ratio_cubes, other.ratio_cubes, strict=True)
            ]
        for my_segments, their_segments in zip(self.breakdowns, other.breakdowns, strict=False):
            my_segments.merge(their_segments)
        _merge_cells(self.phase_cells, other.phase_cells)

    def to_json(self) -> dict[str, Any]:
        """As a page stores them: percentile caps' histograms share capping.PAGE_BINS, and each
        breakdown keeps its page's most common values (breakdown_sums.PAGE_VALUES)."""
        histograms = sum(len(sums.histograms) for sums in self.metrics if sums.histograms is not None)
        bins_each = max(capping.MIN_BINS, capping.PAGE_BINS // max(1, histograms))
        stored: dict[str, Any] = {"exposures": dict(self.exposures)}
        stored["metrics"] = [sums.to_json(bins_each) for sums in self.metrics]
        stored["exposures_by_day"] = {day: dict(counts) for day, counts in self.exposures_by_day.items()}
        if self.in_several_variants:
            stored["in_several_variants"] = dict(self.in_several_variants)
        if self.ratios:
            stored["ratio_cross"] = self.ratio_cross
            if self.ratio_cubes is not None:
                stored["ratio_cubes"] = [[_nonzero(part) for part in pair] for pair in self.ratio_cubes]
        if self.phase_cells:
            stored["phase_cells"] = self.phase_cells
        if self.breakdowns:
            stored["breakdowns"] = [
                segments.to_json(breakdown_sums.PAGE_VALUES, PageSums.to_json) for segments in self.breakdowns
            ]
        return stored

    @classmethod
    def from_json(cls, stored: dict[str, Any]) -> "PageSums":
        sums = cls([], [])
        sums.exposures = Counter({variant: int(count) for variant, count in stored["exposures"].items()})
        several = stored.get("in_several_variants", {})
        sums.in_several_variants = Counter({variant: int(count) for variant, count in several.items()})
        sums.exposures_by_day = {  # pages stored before exposures were counted by day have none
            day: Counter({variant: int(count) for variant, count in counts.items()})
            for day, counts in stored.get("exposures_by_day", {}).items()
        }
        sums.metrics = [_Sums.from_json(metric) for metric in stored["metrics"]]
        sums.ratio_cross = [
            {variant: float(total) for variant, total in cross.items()} for cross in stored.get("ratio_cross", [])
        ]
        cubes = stored.get("ratio_cubes", [] if not sums.ratio_cross else None)  # None: stored before them
        sums.ratio_cubes = None if cubes is None else [[_floats(part) for part in pair] for pair in cubes]
        sums.breakdowns = [
            breakdown_sums.Segments.from_json(segments, PageSums.from_json) for segments in stored.get("breakdowns", [])
        ]
        sums.phase_cells = {
            phase: {variant: [float(x) for x in cell] for variant, cell in cells.items()}
            for phase, cells in stored.get("phase_cells", {}).items()
        }
        return sums

    def statistics(self, metrics: list[MetricSpec], variant_keys: list[str], pre_days: int) -> list[list[VariantData]]:
        """Per metric, per variant: what abacus.stats analyses, capped values where capped; a
        ratio as the delta method linearizes it (abacus.stats.ratio)."""
        analysed = []
        for metric, (first, ratio) in zip(metrics, _positions(metrics), strict=True):
            if ratio is None:
                sums = self.metrics[first + len(metric.components()) - 1]  # a funnel's: its last step
                cap = sums.percentile_cap(metric)
                exposures = self.exposures
                analysed.append([sums.variant_data(metric, v, exposures[v], bool(pre_days), cap) for v in variant_keys])
            else:
                analysed.append([linearized(self.ratio_sums(first, ratio, v)) for v in variant_keys])
        return analysed

    def ratio_sums(self, first: int, ratio: int, variant: str) -> RatioSums:
        numerator, denominator = self.metrics[first], self.metrics[first + 1]
        return RatioSums(
            variant,
            self.exposures[variant],
            numerator.values.get(variant, 0.0),
            numerator.squares.get(variant, 0.0),
            denominator.values.get(variant, 0.0),
            denominator.squares.get(variant, 0.0),
            self.ratio_cross[ratio].get(variant, 0.0),
            *self._ratio_cubes(numerator, denominator, ratio, variant),
        )

    def _ratio_cubes(self, numerator: _Sums, denominator: _Sums, ratio: int, variant: str) -> list[float | None]:
        """RatioSums' cubes and mixed sums (None each where they were not all kept)."""
        if numerator.cubes is None or denominator.cubes is None or self.ratio_cubes is None:
            return [None, None, None, None]
        squares_cross, cross_squares = self.ratio_cubes[ratio]
        return [
            numerator.cubes.get(variant, 0.0),
            denominator.cubes.get(variant, 0.0),
            squares_cross.get(variant, 0.0),
            cross_squares.get(variant, 0.0),
        ]

    def ratio_totals(
        self, metrics: list[MetricSpec], index: int, variant_keys: list[str]
    ) -> dict[str, RatioTotals] | None:
        """A ratio metric's numerator and denominator sums per variant (None: not a ratio)."""
        first, ratio = _positions(metrics)[index]
        if ratio is None:
            return None
        totals = {v: self.ratio_sums(first, ratio, v) for v in variant_keys}
        return {v: {"numerator": t.numerator, "denominator": t.denominator} for v, t in totals.items()}

    def funnel_steps(self, metrics: list[MetricSpec], index: int, variant_keys: list[str]) -> list[FunnelStepCounts]:
        """A funnel metric's users per variant who got as far as each step ([]: not a funnel)."""
        metric = metrics[index]
        first = _positions(metrics)[index][0]
        return [
            {
                **cast(FunnelStepCounts, step.model_dump(mode="json", exclude_defaults=True)),
                "conversions": {v: round(self.metrics[first + reached].values.get(v, 0.0)) for v in variant_keys},
            }
            for reached, step in enumerate(metric.steps or [])
        ]

    def cap_report(self, metrics: list[MetricSpec], index: int, variant_keys: list[str]) -> CapReport | None:
        """What the `index`-th metric's cap was and whom it lowered (None: the metric has no cap)."""
        metric = metrics[index]
        first = _positions(metrics)[index][0]
        if metric.kind == "ratio":  # a ratio's parts take a cap value each: the first one capped
            capped = [(n, part) for n, part in enumerate(metric.components()) if part.cap is not None]
            if not capped:
                return None
            position, part = capped[0]
            sums = self.metrics[first + position]
            parts: CapReport = {"value": part.cap.value if part.cap else None, "users_capped": {}}
            parts["users_capped"] = {v: sums.lowered(v, None) for v in variant_keys}
            parts["part"] = "numerator" if position == 0 else "denominator"
            return parts
        if metric.cap is None:
            return None
        sums = self.metrics[first]
        cap = metric.cap.value if metric.cap.value is not None else sums.percentile_cap(metric)
        report: CapReport = {"value": cap, "users_capped": {v: sums.lowered(v, cap) for v in variant_keys}}
        if metric.cap.percentile is not None:
            report["percentile"] = metric.cap.percentile
        return report


def _merge_cells(mine: dict[str, dict[str, list[float]]], theirs: dict[str, dict[str, list[float]]]) -> None:
    """Adds a bandit's phase cells ([users, sum, sum of squares]) into `mine`."""
    for phase, cells in theirs.items():
        my_cells = mine.setdefault(phase, {})
        for variant, cell in cells.items():
            my_cells[variant] = [a + b for a, b in zip(my_cells.get(variant, [0.0, 0.0, 0.0]), cell, strict=True)]


def _positions(metrics: list[MetricSpec]) -> list[tuple[int, int | None]]:
    """Per metric: the index of its first component (components()), and a ratio's among ratios."""
    positions: list[tuple[int, int | None]] = []
    component = ratios = 0
    for metric in metrics:
        positions.append((component, ratios if metric.kind == "ratio" else None))
        ratios += metric.kind == "ratio"
        component += len(metric.components())
    return positions


def _ratio_positions(metrics: list[MetricSpec]) -> list[tuple[int, int]]:
    """Each ratio metric's numerator and denominator component indexes."""
    return [(first, first + 1) for first, ratio in _positions(metrics) if ratio is not None]
