"""The local stack's moto server reads a Query's partition only (abacus_local/moto_server.py): its
answers must be moto's own, whatever the query. Random tables and queries (key conditions, sort
order, limits and paging, filters, projections, an index), each asked with and without the patch."""

import itertools
import sys
import threading

import boto3
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from abacus_local import moto_server

TABLE = "Items"
PARTITIONS = ["a", "b", "c", "d#1"]


def create_table(client) -> None:
    client.create_table(
        TableName=TABLE,
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
            {"AttributeName": "day", "AttributeType": "S"},
        ],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by-day",
                "KeySchema": [{"AttributeName": "day", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )


items = st.lists(
    st.fixed_dictionaries(
        {
            "pk": st.sampled_from(PARTITIONS),
            "sk": st.text("xyz019", min_size=1, max_size=4),
            "day": st.sampled_from(["mon", "tue"]),
            "n": st.integers(0, 9),
        }
    ),
    max_size=40,
)
queries = st.fixed_dictionaries(
    {
        "pk": st.sampled_from([*PARTITIONS, "missing"]),
        "range": st.sampled_from([None, "=", "<", ">=", "between", "begins_with"]),
        "bound": st.text("xyz019", min_size=1, max_size=2),
        "forward": st.booleans(),
        "limit": st.one_of(st.none(), st.integers(1, 7)),
        "filter": st.booleans(),
        "project": st.booleans(),
        "index": st.booleans(),
    }
)


def key_condition(query: dict) -> tuple[str, dict]:
    partition = "day" if query["index"] else "pk"
    values = {":p": {"S": "mon" if query["index"] else query["pk"]}, ":s": {"S": query["bound"]}}
    condition = f"{partition} = :p"
    if query["range"] == "between":
        values[":t"] = {"S": query["bound"] + "z"}
        condition += " AND sk BETWEEN :s AND :t"
    elif query["range"] == "begins_with":
        condition += " AND begins_with(sk, :s)"
    elif query["range"]:
        condition += f" AND sk {query['range']} :s"
    else:
        del values[":s"]
    return condition, values


def every_page(client, query: dict) -> list:
    """Every page of the query's answer, as the client sees them."""
    condition, values = key_condition(query)
    request = {
        "TableName": TABLE,
        "KeyConditionExpression": condition,
        "ExpressionAttributeValues": values,
        "ScanIndexForward": query["forward"],
    }
    if query["index"]:
        request["IndexName"] = "by-day"
    if query["limit"]:
        request["Limit"] = query["limit"]
    if query["filter"]:
        request["FilterExpression"] = "n > :n"
        values[":n"] = {"N": "4"}
    if query["project"]:
        request["ProjectionExpression"] = "sk, n"
    pages = []
    while True:
        answer = client.query(**request)
        pages.append((answer["Items"], answer["Count"], answer["ScannedCount"], answer.get("LastEvaluatedKey")))
        if "LastEvaluatedKey" not in answer:
            return pages
        request["ExclusiveStartKey"] = answer["LastEvaluatedKey"]


A_PARTITION = [{"pk": "a", "sk": f"x{n}", "day": "mon", "n": n} for n in range(6)]
WHOLE_PARTITION = {"pk": "a", "range": None, "bound": "x", "forward": True}
WHOLE_PARTITION |= {"limit": None, "filter": False, "project": False, "index": False}


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(stored=items, asked=st.lists(queries, min_size=1, max_size=4))
@example(stored=A_PARTITION, asked=[WHOLE_PARTITION, {**WHOLE_PARTITION, "limit": 4, "forward": False}])
def test_queries_answer_as_moto_does(stored, asked):
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        create_table(client)
        for item in stored:
            client.put_item(
                TableName=TABLE,
                Item={
                    "pk": {"S": item["pk"]},
                    "sk": {"S": item["sk"]},
                    "day": {"S": item["day"]},
                    "n": {"N": str(item["n"])},
                },
            )
        for query in asked:
            expected = every_page(client, query)
            uninstall = moto_server.install()
            try:
                assert every_page(client, query) == expected, query
            finally:
                uninstall()


def test_a_get_item_never_sees_an_item_while_another_thread_updates_it():
    """moto's UpdateItem changes the stored item in place; without one_request_at_a_time (installed
    by tests/conftest.py, and by the local stack's server) a GetItem reading it meanwhile fails with
    "dictionary keys changed during iteration" within a few hundred reads at this switch interval."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads switch between almost every bytecode, as on a busy machine
    try:
        with mock_aws():
            client = boto3.client("dynamodb", region_name="us-east-1")
            create_table(client)
            key = {"pk": {"S": "run"}, "sk": {"S": "header"}}
            client.put_item(TableName=TABLE, Item=key)
            done = threading.Event()

            def update_forever() -> None:
                for n in itertools.count():
                    if done.is_set():
                        return
                    client.update_item(
                        TableName=TABLE,
                        Key=key,
                        UpdateExpression=f"SET a{n % 40} = :v REMOVE a{(n + 20) % 40}",
                        ExpressionAttributeValues={":v": {"S": "x"}},
                    )

            writer = threading.Thread(target=update_forever)
            writer.start()
            try:
                for _ in range(600):
                    assert client.get_item(TableName=TABLE, Key=key, ConsistentRead=True)["Item"]["pk"] == key["pk"]
            finally:
                done.set()
                writer.join()
    finally:
        sys.setswitchinterval(interval)
