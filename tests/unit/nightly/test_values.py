"""A user's values of each metric from their events (abacus.nightly.values), without storage: the
attribution window from the exposure, the cut-off, the pre-exposure window, filters, a sum's
numbers, a funnel's steps in order, and when values stored by an earlier night still hold."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from abacus.experiments.metrics_spec import MetricSpec, components
from abacus.nightly import values
from abacus.nightly.sums import PageSums
from tests.unit.nightly.plain import Event, Stored, computed, run

EXPOSED = datetime(2026, 11, 10, 12, tzinfo=UTC)
DAY = timedelta(days=1)


def metric(**fields: object) -> MetricSpec:
    return MetricSpec.model_validate(fields)


BOUGHT = metric(event="buy", window_days=2)
ORDERS = metric(event="buy", kind="count", window_days=2)
REVENUE = metric(event="buy", kind="sum", property="amount", window_days=2)


def buy(at: datetime, amount: object = 1.0) -> Event:
    return Event("buy", at, {"amount": amount})


def test_the_window_runs_from_the_exposure_up_to_its_end_and_counts_only_summable_numbers():
    events = [
        buy(EXPOSED - timedelta(minutes=1), 100.0),  # before the exposure
        buy(EXPOSED, 5.0),  # at the exposure: counted
        buy(EXPOSED + DAY, 7.5),
        buy(EXPOSED + DAY, "n/a"),  # counted, not summed
        buy(EXPOSED + DAY, True),  # a bool is not a number
        buy(EXPOSED + DAY, 1e16),  # beyond the bound (numbers.MAX_VALUE)
        buy(EXPOSED + 2 * DAY, 1000.0),  # at the window's end: outside it
        Event("view", EXPOSED + timedelta(hours=1), {"amount": 3.0}),  # another event
    ]
    got, pending = computed([BOUGHT, ORDERS, REVENUE], EXPOSED, events, cutoff=EXPOSED + 3 * DAY)
    assert got.values == [1.0, 5.0, 12.5]
    assert got.pre_values == []  # no pre-exposure window asked for
    assert pending is False


def test_the_pre_exposure_window_counts_the_days_before_the_exposure():
    events = [
        buy(EXPOSED - 15 * DAY, 50.0),  # before the 14-day window
        buy(EXPOSED - 14 * DAY, 20.0),  # its first instant
        buy(EXPOSED - timedelta(minutes=1), 100.0),
        buy(EXPOSED, 5.0),  # after it: the window proper
    ]
    got, _ = computed([BOUGHT, ORDERS, REVENUE], EXPOSED, events, cutoff=EXPOSED + 3 * DAY, pre_days=14)
    assert got.values == [1.0, 1.0, 5.0]
    assert got.pre_values == [1.0, 2.0, 120.0]


def test_the_cutoff_ends_the_window_early_and_an_event_past_it_inside_the_window_is_pending():
    cutoff = EXPOSED + DAY
    inside, at_cutoff, past_window = EXPOSED + timedelta(hours=1), cutoff, EXPOSED + 3 * DAY
    got, pending = computed([ORDERS], EXPOSED, [buy(inside), buy(at_cutoff), buy(past_window)], cutoff)
    assert (got.values, pending) == ([1.0], True)
    got, pending = computed([ORDERS], EXPOSED, [buy(inside), buy(past_window)], cutoff)
    assert (got.values, pending) == ([1.0], False)  # past the window: no later cut-off counts it


def test_only_events_meeting_every_filter_count():
    pro_checkouts = metric(
        event="purchase",
        kind="count",
        filters=[
            {"property": "plan", "operator": "eq", "value": "pro"},
            {"property": "path", "operator": "contains", "value": "/checkout"},
        ],
    )
    at = EXPOSED + timedelta(hours=1)
    events = [
        Event("purchase", at, {"plan": "pro", "path": "/checkout/done"}),
        Event("purchase", at, {"plan": "pro", "path": "/x/checkout"}),
        Event("purchase", at, {"plan": "pro", "path": "/home"}),
        Event("purchase", at, {"plan": "free", "path": "/checkout"}),
        Event("purchase", at, {}),
        Event("view", at, {"plan": "pro", "path": "/checkout"}),
    ]
    assert computed([pro_checkouts], EXPOSED, events, EXPOSED + DAY)[0].values == [2.0]


CHECKOUT_STEPS: list[dict] = [
    {"event": "view_cart"},
    {"event": "start_checkout", "filters": [{"property": "plan", "operator": "eq", "value": "pro"}]},
    {"event": "purchase"},
]
CHECKOUT_FUNNEL = {"kind": "funnel", "steps": CHECKOUT_STEPS, "window_days": 7}


def test_a_funnel_counts_users_who_did_its_steps_in_order_within_the_window():
    """How far each user got, by hand: steps out of order, a step failing its filter, a first
    step before the exposure, a last step after the 7-day window, a second round."""
    funnel = metric(**CHECKOUT_FUNNEL)
    pro = {"plan": "pro"}
    # user: (variant, [(event, minutes after exposure, properties)], steps reached)
    users = {
        "all-in-order": ("control", [("view_cart", 1, {}), ("start_checkout", 2, pro), ("purchase", 3, {})], 3),
        "same-minute": ("control", [("purchase", 5, {}), ("start_checkout", 5, pro), ("view_cart", 5, {})], 3),
        "paid-first": ("control", [("purchase", 1, {}), ("view_cart", 2, {}), ("start_checkout", 3, pro)], 2),
        "free-plan": ("control", [("view_cart", 1, {}), ("start_checkout", 2, {"plan": "free"}),
                                  ("purchase", 3, {})], 1),
        "before-exposure": ("b", [("view_cart", -5, {}), ("start_checkout", 2, pro), ("purchase", 3, {})], 0),
        "too-late": ("b", [("view_cart", 1, {}), ("start_checkout", 2, pro), ("purchase", 8 * 24 * 60, {})], 2),
        "twice-round": ("b", [("start_checkout", 1, pro), ("view_cart", 2, {}), ("purchase", 3, {}),
                              ("start_checkout", 4, pro), ("purchase", 5, {})], 3),
    }  # fmt: skip
    sums = PageSums(["control", "b"], [funnel])
    for variant, steps, reached in users.values():
        events = [Event(name, EXPOSED + timedelta(minutes=m), props) for name, m, props in reversed(steps)]
        got, _ = computed([funnel], EXPOSED, events, EXPOSED + 10 * DAY)
        assert got.values == [float(reached >= step) for step in (1, 2, 3)], steps  # one component per step
        sums.add_user(variant, got, False)
    reached_steps = sums.funnel_steps([funnel], 0, ["control", "b"])
    got_counts = {v: [step["conversions"][v] for step in reached_steps] for v in ("control", "b")}
    assert got_counts == {"control": [4, 3, 2], "b": [2, 2, 1]}
    assert [step["event"] for step in reached_steps] == ["view_cart", "start_checkout", "purchase"]


def test_a_funnels_steps_change_its_stored_values_fingerprint():
    """Values stored for a funnel are reused only for the same steps in the same order."""
    funnel = MetricSpec.model_validate(CHECKOUT_FUNNEL)
    reordered = MetricSpec.model_validate({**CHECKOUT_FUNNEL, "steps": CHECKOUT_STEPS[::-1]})
    longer = MetricSpec.model_validate({**CHECKOUT_FUNNEL, "steps": [*CHECKOUT_STEPS, {"event": "repeat"}]})
    keys_ = {values.metrics_key([m]) for m in (funnel, reordered, longer)}
    assert len(keys_) == 3
    assert [len(part.steps or []) for part in funnel.components()] == [1, 2, 3]


def test_the_pre_exposure_window_is_part_of_the_fingerprint():
    assert values.metrics_key([REVENUE], 14) != values.metrics_key([REVENUE], 7) != values.metrics_key([REVENUE])


CUTOFF = EXPOSED + 5 * DAY
KEY = values.metrics_key([BOUGHT])


def stored(metric_values: list[float], **fields: object) -> Stored:
    """A user whose values the night before computed (not pending), unless `fields` say otherwise."""
    made = {
        "exposed_at": EXPOSED,
        "metric_values": metric_values,
        "values_exposed_at": EXPOSED,
        "values_cutoff": CUTOFF - DAY,
        "values_metrics": KEY,
        "values_pending": False,
    }
    return Stored(**(made | fields))  # type: ignore[arg-type]


def current(user: Stored, active: set[str] | None = None) -> bool:
    return values.values_are_current(user, components([BOUGHT]), CUTOFF, KEY, active or set())


def test_stored_values_hold_until_something_they_depend_on_changes():
    assert current(stored([0.0]))
    assert current(stored([1.0]), active={"u"}), "a conversion cannot be undone by more events"
    assert not current(stored([0.0]), active={"u"}), "sent events since: computed again"
    assert not current(stored([0.0], values_pending=True)), "events past the earlier cut-off"
    assert current(stored([0.0], values_pending=True, values_cutoff=CUTOFF)), "the same cut-off"
    assert not current(stored([0.0], values_cutoff=CUTOFF + DAY)), "computed for a later cut-off"
    assert not current(stored([0.0], values_metrics="other")), "other metrics"
    assert not current(stored([0.0], values_exposed_at=EXPOSED - DAY)), "another first exposure"
    assert not current(replace(stored([0.0]), metric_values=None)), "nothing stored"
    assert not current(stored([1e16])), "stored before values beyond the bound were ignored"


def test_values_whose_windows_settled_before_the_last_run_are_final():
    """A 7-day window ending 11-17 12:00 is settled once a run started 14 days (late events) and
    10 minutes (writes in flight) after it; values are final only when they covered the window."""
    weekly = components([metric(event="buy", kind="count", window_days=7)])
    key = values.metrics_key(weekly)
    end = EXPOSED + 7 * DAY
    settled_since = end + 14 * DAY + timedelta(minutes=10)
    later = settled_since + DAY
    this = run(weekly, later, since=settled_since)
    user = stored([3.0], values_metrics=key, values_cutoff=end - DAY, values_pending=False)
    final = values.final_values(this, user, EXPOSED)
    assert final == values.Final([3.0], None)
    assert final.complete(0) == values.UserValues([3.0], [])
    assert final.complete(14) is None, "the pre-exposure values are not final"
    assert values.final_values(this._replace(since=settled_since - timedelta(minutes=1)), user, EXPOSED).values == [
        None
    ]
    pending = stored([3.0], values_metrics=key, values_cutoff=end - DAY, values_pending=True)
    assert values.final_values(this, pending, EXPOSED).values == [None], "events past its cut-off were not counted"
    whole = stored([3.0], values_metrics=key, values_cutoff=end, values_pending=True)
    assert values.final_values(this, whole, EXPOSED).values == [3.0], "its cut-off covered the whole window"
    assert values.final_values(this._replace(since=None), user, EXPOSED).values == [None]


def test_events_are_read_from_the_oldest_window_still_open():
    this = run([BOUGHT], CUTOFF, pre_days=14)
    open_pre = values.Final([None], None)
    assert values.events_start(this, EXPOSED, open_pre) == EXPOSED - 14 * DAY
    assert values.events_start(this, EXPOSED, values.Final([None], [0.0])) == EXPOSED
    assert values.events_start(this._replace(pre_days=0), EXPOSED, open_pre) == EXPOSED


def test_values_recomputed_unchanged_are_not_written_again():
    same = values.UserValues([0.0], [])
    assert values.stored_values_still_hold(stored([0.0]), same, KEY, pending=False)
    assert not values.stored_values_still_hold(stored([0.0]), same, KEY, pending=True)
    assert not values.stored_values_still_hold(stored([0.0], values_pending=True), same, KEY, pending=False)
    assert not values.stored_values_still_hold(stored([1.0]), same, KEY, pending=False)
    assert not values.stored_values_still_hold(stored([0.0]), same, "other", pending=False)
