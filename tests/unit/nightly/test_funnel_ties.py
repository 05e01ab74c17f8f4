"""A funnel's steps taken by events at the same instant: the result is the same whatever order the
events are stored in (their uuids sort them), and it is what a brute force finds: some choice of
distinct events, one a step, matching each step and in time order (equal times allowed)."""

import itertools
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from abacus.experiments.metrics_spec import MetricSpec
from abacus.nightly import values
from abacus.storage.events import EventItem

EXPOSED = datetime(2026, 11, 20, 12, tzinfo=UTC)
END = EXPOSED + timedelta(days=7)


def funnel(*steps: tuple[str, str | None]) -> MetricSpec:
    """A funnel of (event, the page its step takes, None: any) steps."""
    return MetricSpec.model_validate(
        {
            "kind": "funnel",
            "window_days": 7,
            "steps": [{"event": name, "filters": [] if page is None else [on_page(page)]} for name, page in steps],
        }
    )


def on_page(page: str) -> dict:
    return {"property": "page", "operator": "eq", "value": page}


def event(name: str, page: str, minute: int, serial: int) -> EventItem:
    at = EXPOSED + timedelta(minutes=minute)
    return EventItem(
        "test#u",
        f"uuid-{serial}",
        event=name,
        distinct_id="u",
        timestamp=at,
        received_at=at,
        properties={"page": page},
        expires_at=0,
        receipt_day="test#2026-11-20#00",
        receipt=f"{at.isoformat()}#uuid-{serial}",
    )


def converts(metric: MetricSpec, events: list[EventItem]) -> bool:
    return values._user_value(metric, events, EXPOSED, END) == 1.0


def brute_force(steps: list[tuple[str, str | None]], events: list[tuple[str, str, int]]) -> bool:
    """Some ordered choice of distinct events takes every step, in time order (ties allowed)."""
    return any(
        all(takes(step, drawn) for step, drawn in zip(steps, chosen, strict=True))
        and all(earlier[2] <= later[2] for earlier, later in itertools.pairwise(chosen))
        for chosen in itertools.permutations(events, len(steps))
    )


def takes(step: tuple[str, str | None], drawn: tuple[str, str, int]) -> bool:
    (wanted, page), (name, seen, _) = step, drawn
    return name == wanted and (page is None or seen == page)


def test_a_home_view_and_a_checkout_view_at_one_instant_convert_in_either_order():
    """The issue's case: `view` then `view where page = checkout`, both views at the same instant.
    The home view takes the first step and the checkout view the second, whichever sorts first."""
    metric = funnel(("view", None), ("view", "checkout"))
    home, checkout = event("view", "home", 5, 1), event("view", "checkout", 5, 2)
    assert converts(metric, [home, checkout])
    assert converts(metric, [checkout, home])
    # One event never takes two steps: a checkout view alone does not do both.
    assert not converts(metric, [checkout])
    # A second step before the first is not in order, at any storage order.
    earlier_checkout = event("view", "checkout", 4, 3)
    assert not converts(metric, [home, earlier_checkout]) and not converts(metric, [earlier_checkout, home])


def test_a_tie_that_needs_an_earlier_step_moved_to_another_event():
    """Three steps at one instant where the first-fitting choice for step 1 (the checkout view, a
    `view`) blocks step 3; moving step 1 to the home view lets all three be taken."""
    metric = funnel(("view", None), ("buy", None), ("view", "checkout"))
    stamped = [event("view", "checkout", 1, 1), event("buy", "checkout", 1, 2), event("view", "home", 1, 3)]
    for order in itertools.permutations(stamped):
        assert converts(metric, list(order)), [e.uuid for e in order]


STEPS = st.lists(
    st.tuples(st.sampled_from(["view", "buy"]), st.sampled_from([None, "home", "checkout"])), min_size=2, max_size=4
)
EVENTS = st.lists(
    st.tuples(st.sampled_from(["view", "buy"]), st.sampled_from(["home", "checkout"]), st.integers(0, 2)),
    min_size=1,
    max_size=7,
)


@settings(max_examples=400, deadline=None, derandomize=True)
@given(steps=STEPS, drawn=EVENTS, order=st.randoms(use_true_random=False))
def test_ties_match_a_brute_force_whatever_the_storage_order(steps, drawn, order):
    """Events on three instants (so many share one), in every order the storage could give them
    (the listed one and a shuffle of it): the funnel's result is the brute force's."""
    metric = funnel(*steps)
    events = [event(name, page, minute, serial) for serial, (name, page, minute) in enumerate(drawn)]
    expected = brute_force(steps, drawn)
    shuffled = list(events)
    order.shuffle(shuffled)
    assert converts(metric, events) == expected
    assert converts(metric, shuffled) == expected
    assert converts(metric, events[::-1]) == expected
