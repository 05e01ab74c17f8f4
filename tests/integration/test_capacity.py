"""Capacity per partition key (issue 15): the recorder's arithmetic against DynamoDB's documented
examples and against requests of known sizes on moto, the size of the event items ingest writes,
and the issue's three rates and the token rate limit's counters at 1,000 execution environments,
none of which may put a partition key over 1,000 write units or 3,000 read units a second
(tests.capacity has the rules, tests.capacity_scenarios the traffic)."""

from collections import Counter
from datetime import UTC, datetime
from functools import partial
from typing import Any

import boto3
import pytest

from tests.capacity import (
    KB,
    WHOLE_TABLE,
    CapacityRecorder,
    Charge,
    KeyRate,
    Request,
    batch_get_read_units,
    item_size,
    key_rates,
    over_limits,
    query_read_units,
    read_units,
    value_size,
    write_units,
)
from tests.capacity_scenarios import (
    SCENARIOS,
    check,
    deployed_caches,
    launch_sample_experiment,
    measure,
    post_posthog_batch,
    rate_limit_shares,
    user_batch,
)
from tests.conftest import answer, invoke, sample_event

# The arithmetic, against the Developer Guide's own examples and hand counts --------------------


@pytest.mark.parametrize(
    ("value", "size"),
    [
        ({"S": "Abacus"}, 6),
        ({"S": "ü€"}, 5),  # UTF-8 bytes, not characters
        ({"N": "123.45"}, 4),  # 5 significant digits: 3 bytes, plus 1
        ({"N": "-0.0012300"}, 3),  # leading and trailing zeros trimmed: 123
        ({"N": "1E+30"}, 2),
        ({"N": "0"}, 1),
        ({"B": b"\x00\x01\x02"}, 3),  # raw bytes, not their base64
        ({"BOOL": True}, 1),
        ({"NULL": True}, 1),
        ({"M": {}}, 3),  # an empty map: its 3 bytes
        ({"L": [{"S": "ab"}, {"BOOL": False}]}, 3 + (2 + 1) + (1 + 1)),  # 3, and 1 byte an element
        ({"M": {"a": {"S": "xy"}, "n": {"N": "7"}}}, 3 + (1 + 2 + 1) + (1 + 2 + 1)),  # element names count
        ({"SS": ["ab", "c"]}, 3),
    ],
)
def test_value_sizes(value, size):
    assert value_size(value) == size


def test_an_item_is_its_names_and_values():
    item = {"user_id": {"S": "p#u"}, "n": {"N": "42"}, "é": {"BOOL": False}}
    assert item_size(item) == (7 + 3) + (1 + 2) + (2 + 1)
    assert item_size(None) == 0


def test_read_units_as_the_developer_guide_counts_them():
    # "reading a 3,500-byte item consumes the same throughput as reading a 4 KB item"
    assert read_units(3500, consistent=True) == 1 and read_units(3500, consistent=False) == 0.5
    # an 8 KB item: 2 units strongly consistent, 1 eventually consistent, 4 transactional
    assert (read_units(8 * KB, True), read_units(8 * KB, False), read_units(8 * KB, True, transactional=True)) == (
        2,
        1,
        4,
    )
    # "If you read a 10 KB item, DynamoDB rounds the item size to 12 KB"
    assert read_units(10 * KB, True) == 3
    # BatchGetItem of 1.5 KB and 6.5 KB items counts 12 KB (4 KB + 8 KB), not 8 KB
    assert batch_get_read_units([1536, 6656], True) == 3 and query_read_units([1536, 6656], True) == 2
    # a Query of 10 items of 40.8 KB in all reads 44 KB; 1,500 items of 64 bytes 96 KB
    assert query_read_units([4178] * 10, True) == 11 and query_read_units([4178] * 10, False) == 5.5
    assert query_read_units([64] * 1500, True) == 24
    assert read_units(0, False) == 0.5  # an item not found costs the minimum


def test_write_units_as_the_developer_guide_counts_them():
    # "writing a 500-byte item consumes the same throughput as writing a 1 KB item"
    assert write_units(500) == 1 and write_units(KB) == 1 and write_units(KB + 1) == 2
    assert write_units(3584) == 4 and write_units(0) == 1
    assert write_units(KB, transactional=True) == 2 and write_units(1536, transactional=True) == 4


def test_key_rates_scale_each_key_to_the_target_rate():
    requests = [
        Request("BatchWriteItem", (Charge("T", None, "a", 0, 1), Charge("T", "ix", "day", 0, 1))),
        Request("BatchWriteItem", (Charge("T", None, "b", 0, 1), Charge("T", "ix", "day", 0, 1))),
        Request("GetItem", (Charge("T", None, "a", 0.5, 0),)),
    ]
    rates = {(rate.target, rate.partition_key): rate for rate in key_rates(requests, traffic=2, rate=1500)}
    assert rates["T/index/ix", "day"].write_units == 1500 and rates["T/index/ix", "day"].over_limit
    assert rates["T", "a"] == ("T", "a", 375.0, 750.0) and not rates["T", "a"].over_limit
    assert [rate.partition_key for rate in over_limits(rates.values())] == ["day"]


# The recorder on moto, with requests of known sizes ----------------------------------------------

EVENTS, ASSIGNMENTS = "EventsTable", "AssignmentsTable"


def padded(item: dict[str, Any], size: int) -> dict[str, Any]:
    """`item` with a `pad` string that makes it exactly `size` bytes."""
    return item | {"pad": {"S": "x" * (size - item_size(item) - len("pad"))}}


def event_item(uuid: str, size: int, day: str = "p#2026-11-25", event: str = "purchase") -> dict:
    keys = {"user_id": {"S": "p#u"}, "uuid": {"S": uuid}, "receipt_day": {"S": day}, "receipt": {"S": f"t#{uuid}"}}
    return padded(keys | {"event": {"S": event}, "distinct_id": {"S": "u"}}, size)


def assignment_key(distinct_id: str = "u") -> dict:
    return {"experiment_id": {"S": "p#exp"}, "distinct_id": {"S": distinct_id}}


@pytest.fixture
def recorded(tables):
    """A raw DynamoDB client whose requests a recorder records."""
    client = boto3.client("dynamodb", region_name="us-east-1")
    recorder = CapacityRecorder()
    with recorder.recording([client]):
        yield client, recorder


def last(recorder: CapacityRecorder) -> set[Charge]:
    return set(recorder.requests[-1].charges)


def test_writes_cost_the_larger_item_and_their_index_entries(recorded):
    client, recorder = recorded
    client.put_item(TableName=EVENTS, Item=event_item("1", 1500))
    # 1,500 bytes: 2 units on the user's key; the index entry (keys, distinct_id, event) fits in 1
    assert last(recorder) == {Charge(EVENTS, None, "p#u", 0, 2), Charge(EVENTS, "by-receipt", "p#2026-11-25", 0, 1)}
    client.put_item(TableName=EVENTS, Item=event_item("1", 900))  # replaced by a smaller one: the larger counts
    assert last(recorder) == {Charge(EVENTS, None, "p#u", 0, 2)}  # nothing projected changed
    client.put_item(TableName=EVENTS, Item=event_item("1", 900, event="refund"))
    assert last(recorder) == {Charge(EVENTS, None, "p#u", 0, 1), Charge(EVENTS, "by-receipt", "p#2026-11-25", 0, 1)}
    client.put_item(TableName=EVENTS, Item=event_item("1", 900, day="p#2026-11-26", event="refund"))
    assert last(recorder) == {  # moved to another index key: a delete there, a put here
        Charge(EVENTS, None, "p#u", 0, 1),
        Charge(EVENTS, "by-receipt", "p#2026-11-25", 0, 1),
        Charge(EVENTS, "by-receipt", "p#2026-11-26", 0, 1),
    }
    client.delete_item(TableName=EVENTS, Key={"user_id": {"S": "p#u"}, "uuid": {"S": "1"}})
    assert last(recorder) == {Charge(EVENTS, None, "p#u", 0, 1), Charge(EVENTS, "by-receipt", "p#2026-11-26", 0, 1)}


def test_updates_cost_the_larger_of_before_and_after_and_failed_conditions_cost_too(recorded):
    client, recorder = recorded
    grow = {"TableName": ASSIGNMENTS, "Key": assignment_key(), "UpdateExpression": "SET #p = :pad"}
    grow["ExpressionAttributeNames"] = {"#p": "pad"}  # a reserved word
    client.update_item(**grow, ExpressionAttributeValues={":pad": {"S": "x" * 900}})
    assert last(recorder) == {Charge(ASSIGNMENTS, None, "p#exp", 0, 1)}  # 933 bytes after
    client.update_item(**grow, ExpressionAttributeValues={":pad": {"S": "x" * 1100}}, ReturnValues="ALL_NEW")
    assert last(recorder) == {Charge(ASSIGNMENTS, None, "p#exp", 0, 2)}  # 1,133 after (as answered)
    client.update_item(**grow, ExpressionAttributeValues={":pad": {"S": "x"}})
    assert last(recorder) == {Charge(ASSIGNMENTS, None, "p#exp", 0, 2)}  # 1,133 before
    with pytest.raises(client.exceptions.ConditionalCheckFailedException):
        client.update_item(
            **grow, ExpressionAttributeValues={":pad": {"S": "y"}}, ConditionExpression="attribute_not_exists(#p)"
        )
    assert last(recorder) == {Charge(ASSIGNMENTS, None, "p#exp", 0, 1)}  # refused, still charged
    client.update_item(TableName=EVENTS, Key={"user_id": {"S": "p#u"}, "uuid": {"S": "2"}}, **_set_day("p#d"))
    assert last(recorder) == {Charge(EVENTS, None, "p#u", 0, 1)}  # no receipt: not in the index


def _set_day(day: str) -> dict:
    return {"UpdateExpression": "SET receipt_day = :day", "ExpressionAttributeValues": {":day": {"S": day}}}


def test_reads_cost_what_they_read_whatever_they_return(recorded):
    client, recorder = recorded
    for uuid, size in (("a", 1536), ("b", 6656), ("c", 2048)):
        client.put_item(TableName=EVENTS, Item=event_item(uuid, size))
    key = {"user_id": {"S": "p#u"}, "uuid": {"S": "b"}}
    client.get_item(TableName=EVENTS, Key=key, ProjectionExpression="event")
    client.get_item(TableName=EVENTS, Key=key, ConsistentRead=True)
    client.get_item(TableName=EVENTS, Key=key | {"uuid": {"S": "none"}})
    assert [request.charges[0].read_units for request in recorder.requests[-3:]] == [1.0, 2.0, 0.5]
    keys = [key | {"uuid": {"S": uuid}} for uuid in "ab"]
    client.batch_get_item(RequestItems={EVENTS: {"Keys": keys, "ConsistentRead": True}})
    assert sum(charge.read_units for charge in recorder.requests[-1].charges) == 3  # 4 KB + 8 KB
    client.query(
        TableName=EVENTS,
        KeyConditionExpression="user_id = :u",
        FilterExpression="#e = :nothing",
        ExpressionAttributeNames={"#e": "event"},
        ExpressionAttributeValues={":u": {"S": "p#u"}, ":nothing": {"S": "none"}},
    )  # 10,240 bytes read, none returned: 12 KB eventually consistent
    assert last(recorder) == {Charge(EVENTS, None, "p#u", 1.5, 0)}
    client.query(
        TableName=EVENTS,
        IndexName="by-receipt",
        KeyConditionExpression="receipt_day = :d",
        ExpressionAttributeValues={":d": {"S": "p#2026-11-25"}},
    )  # three small index entries
    assert last(recorder) == {Charge(EVENTS, "by-receipt", "p#2026-11-25", 0.5, 0)}
    client.scan(TableName=EVENTS, FilterExpression="attribute_not_exists(user_id)")  # the whole table, 10 KB
    assert last(recorder) == {Charge(EVENTS, None, WHOLE_TABLE, 1.5, 0)}


def test_batches_and_transactions(recorded):
    client, recorder = recorded
    puts = [{"PutRequest": {"Item": event_item(uuid, 1100)}} for uuid in "xy"]
    client.batch_write_item(RequestItems={EVENTS: puts})
    assert Counter(recorder.requests[-1].charges) == {
        Charge(EVENTS, None, "p#u", 0, 2): 2,
        Charge(EVENTS, "by-receipt", "p#2026-11-25", 0, 1): 2,
    }
    client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": EVENTS, "Item": event_item("z", 1500)}},
            {"Update": {"TableName": ASSIGNMENTS, "Key": assignment_key(), **_set_variant("control")}},
        ]
    )
    assert last(recorder) == {
        Charge(EVENTS, None, "p#u", 0, 4),
        Charge(EVENTS, "by-receipt", "p#2026-11-25", 0, 2),
        Charge(ASSIGNMENTS, None, "p#exp", 0, 2),
    }
    client.transact_get_items(TransactItems=[{"Get": {"TableName": EVENTS, "Key": _event_key("z")}}])
    assert last(recorder) == {Charge(EVENTS, None, "p#u", 2, 0)}


def _set_variant(variant: str) -> dict:
    return {"UpdateExpression": "SET variant = :v", "ExpressionAttributeValues": {":v": {"S": variant}}}


def _event_key(uuid: str) -> dict:
    return {"user_id": {"S": "p#u"}, "uuid": {"S": uuid}}


def test_the_recorder_hooks_pynamodbs_clients(project):
    from abacus.storage import assignments

    recorder = CapacityRecorder()
    with recorder.recording():
        assert assignments.get("test#new-checkout", "nobody") is None
    assert recorder.requests == [Request("GetItem", (Charge(ASSIGNMENTS, None, "test#new-checkout", 0.5, 0),))]
    assignments.get("test#new-checkout", "nobody")
    assert len(recorder.requests) == 1  # unhooked once the block ends


# The event items ingest writes ------------------------------------------------------------------


def stored_event_sizes() -> list[int]:
    items = boto3.client("dynamodb", region_name="us-east-1").scan(TableName=EVENTS)["Items"]
    return [item_size(item) for item in items]


def event_write_units(recorder: CapacityRecorder) -> list[float]:
    return [c.write_units for r in recorder.requests for c in r.charges if c.target == EVENTS and c.write_units]


def test_posthog_python_events_cost_one_write_unit_each(project):
    recorder = CapacityRecorder()
    with recorder.recording():
        assert answer(invoke("IngestFunction", sample_event("posthog_batch")))[0] == 200
    sizes = stored_event_sizes()
    assert len(sizes) == 2 and max(sizes) < KB, sizes
    assert event_write_units(recorder) == [1, 1]
    index_writes = [c for r in recorder.requests for c in r.charges if c.index_name == "by-receipt"]
    assert [c.write_units for c in index_writes] == [1, 1]


def test_posthog_js_pageviews_cost_one_write_unit_each(project):
    launch_sample_experiment()
    recorder = CapacityRecorder()
    with deployed_caches(), recorder.recording():
        post_posthog_batch(user_batch("visitor-1", 5, datetime.now(UTC)))
    sizes = stored_event_sizes()
    check(len(sizes) == 5, sizes)
    assert max(sizes) < KB, f"event items of {min(sizes)}-{max(sizes)} bytes"
    assert event_write_units(recorder) == [1] * 5


# The rates --------------------------------------------------------------------------------

EVENTS_SCENARIO, NEW_USERS, RETURNING_USERS, RATE_LIMIT = SCENARIOS


def assert_within_limits(scenario, count: int) -> None:
    measured = measure(scenario, count)
    check(bool(measured.rates), "nothing was recorded")
    over = [
        f"{rate.target} {rate.partition_key}: {rate.read_units:,.0f} RCU/s, {rate.write_units:,.0f} WCU/s"
        for rate in over_limits(measured.rates)
    ]
    assert over == [], f"{scenario.name} at {scenario.rate:,.0f}/s"


def test_10000_events_a_second_into_one_project(project):
    assert_within_limits(EVENTS_SCENARIO, 600)


def test_5000_new_users_a_second_in_one_experiment(project):
    assert_within_limits(NEW_USERS, 300)


def test_50000_returning_assignments_a_second_in_one_experiment(project):
    assert_within_limits(RETURNING_USERS, 300)


# The token rate limit's counters ----------------------------------------------------------------

SHARES = 200  # environments recorded, each sharing once; scaled to the scenario's 1,000


def at(rates: list[KeyRate], environments: int, scenario=RATE_LIMIT) -> list[KeyRate]:
    """The same keys' units a second with `environments` sharing once a second (units scale linearly)."""
    scale = environments / scenario.rate
    return [rate._replace(read_units=rate.read_units * scale, write_units=rate.write_units * scale) for rate in rates]


def test_the_rate_limit_counters_of_1000_environments_sharing_once_a_second(project):
    from abacus.storage.rate_limits import SHARDS

    rates = measure(RATE_LIMIT, SHARES).rates
    assert over_limits(rates) == []
    assert len(rates) == SHARDS and {rate.partition_key.rsplit("#", 1)[1] for rate in rates} == {
        f"{shard:02d}" for shard in range(SHARDS)
    }
    # Every environment reads every shard (half a unit each), and writes its own.
    assert {rate.read_units for rate in rates} == {500} and sum(rate.write_units for rate in rates) == 1000
    assert max(rate.write_units for rate in rates) <= 2 * 1000 / SHARDS
    # The reads set the ceiling, as every environment reads every key: 6,000 environments (3,000 units a key).
    assert over_limits(at(rates, 6000)) == [] and len(over_limits(at(rates, 6001))) == SHARDS


def test_one_counter_key_would_take_every_environments_write(project):
    """One counter key a project and minute (shards=1; the layout before the shards wrote it the
    same, without the read): every environment's write on it, so it is at its write limit from
    1,000 environments on and over it beyond, where each of 16 shards takes a sixteenth on average."""
    (key,) = measure(RATE_LIMIT._replace(drive=partial(rate_limit_shares, shards=1)), SHARES).rates
    assert (key.write_units, key.read_units, key.load) == (1000, 500, 1.0)
    assert over_limits(at([key], 1000)) == [] and over_limits(at([key], 1001)) == at([key], 1001)
    assert over_limits(at([key], 2000)) == at([key], 2000)
