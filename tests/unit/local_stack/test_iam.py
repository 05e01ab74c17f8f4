"""The local IAM check (abacus_local/iam.py): policies read as SAM deploys them, calls named as IAM
names them, evaluated as IAM evaluates them (against moto's own evaluator as the reference), and
refused as AWS refuses them."""

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st
from moto.iam.access_control import IAMPolicy, PermissionResult

from abacus_local import iam
from abacus_local.template import Template
from tests.conftest import function_policies

TABLE = "arn:aws:dynamodb:us-east-1:123456789012:table/"
QUEUE = "arn:aws:sqs:us-east-1:123456789012:"

# A template of SAM's policy templates, as a user of SAM would write them.
WITH_POLICY_TEMPLATES = {
    "Transform": "AWS::Serverless-2016-10-31",
    "Resources": {
        "Reader": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Runtime": "python3.13",
                "Handler": "app.handler",
                "CodeUri": "functions/assign/",
                "Policies": [
                    {"DynamoDBReadPolicy": {"TableName": {"Ref": "Things"}}},
                    {"SQSSendMessagePolicy": {"QueueName": {"Fn::GetAtt": ["Work", "QueueName"]}}},
                ],
                "Events": {
                    "Queue": {"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": ["Work", "Arn"]}}},
                },
            },
        },
        "Things": {
            "Type": "AWS::DynamoDB::Table",
            "Properties": {
                "BillingMode": "PAY_PER_REQUEST",
                "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"}],
                "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}],
            },
        },
        "Work": {"Type": "AWS::SQS::Queue"},
    },
}


def test_sam_policy_templates_are_expanded_to_their_documented_actions():
    reader = iam.function_policies(Template(WITH_POLICY_TEMPLATES))["Reader"]
    # DynamoDBReadPolicy: GetItem, Scan, Query, BatchGetItem, DescribeTable (and PartiQL reads) on the table.
    for action in ("GetItem", "Query", "Scan", "BatchGetItem", "DescribeTable"):
        assert reader.allows(f"dynamodb:{action}", TABLE + "Things")
        assert reader.allows(f"dynamodb:{action}", TABLE + "Things/index/any")
    for action in ("PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem"):
        assert not reader.allows(f"dynamodb:{action}", TABLE + "Things")
    assert not reader.allows("dynamodb:GetItem", TABLE + "Other")
    # SQSSendMessagePolicy: sqs:SendMessage* on the queue, nothing else of it.
    assert reader.allows("sqs:SendMessage", QUEUE + "Work")
    assert not reader.allows("sqs:SendMessage", QUEUE + "Elsewhere")
    assert not reader.allows("sqs:PurgeQueue", QUEUE + "Work")
    # The SQS event adds the managed AWSLambdaSQSQueueExecutionRole, with which Lambda polls.
    assert reader.allows("sqs:ReceiveMessage", QUEUE + "Work")
    assert reader.allows("sqs:DeleteMessage", QUEUE + "Work")


def test_the_templates_functions_get_their_inline_statements_and_what_sam_adds():
    policies = function_policies()
    assert set(policies) == {
        "AssignFunction", "IngestFunction", "ResultsFunction", "NightlyWorkerFunction", "AutomationFunction",
    }  # fmt: skip
    worker, results = policies["NightlyWorkerFunction"], policies["ResultsFunction"]
    assert worker.role == "NightlyWorkerFunctionRole"
    assert worker.allows("dynamodb:Query", TABLE + "EventsTable/index/by-receipt")
    assert not worker.allows("dynamodb:Scan", TABLE + "EventsTable/index/by-receipt")
    assert worker.allows("sqs:ReceiveMessage", QUEUE + "NightlyWorkQueue")  # its event source mapping
    assert not results.allows("sqs:ReceiveMessage", QUEUE + "NightlyWorkQueue")
    assert results.allows("sqs:SendMessage", QUEUE + "NightlyDeadLetters")  # SAM's DeadLetterQueue policy
    assert not policies["AssignFunction"].allows("dynamodb:Scan", TABLE + "ExperimentsTable")
    automation = policies["AutomationFunction"]
    assert automation.allows("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/AlertsBus")
    assert not automation.allows("events:PutEvents", "arn:aws:events:us-east-1:123456789012:event-bus/default")
    assert automation.allows("sqs:ReceiveMessage", QUEUE + "AlertsQueue")  # its event source mapping


def test_calls_are_named_as_iam_names_them():
    region = "us-east-1"
    assert iam.requested("dynamodb", "Query", {"TableName": "T", "IndexName": "by-x"}, region) == [
        ("dynamodb:Query", TABLE + "T/index/by-x")
    ]
    batch: dict = {"RequestItems": {"B": [], "A": []}}
    assert iam.requested("dynamodb", "BatchWriteItem", batch, region) == [
        ("dynamodb:BatchWriteItem", TABLE + "A"),
        ("dynamodb:BatchWriteItem", TABLE + "B"),
    ]
    transaction = {"TransactItems": [{"Put": {"TableName": "A"}}, {"ConditionCheck": {"TableName": "B"}}]}
    assert iam.requested("dynamodb", "TransactWriteItems", transaction, region) == [
        ("dynamodb:ConditionCheckItem", TABLE + "B"),
        ("dynamodb:PutItem", TABLE + "A"),
    ]
    sent = {"QueueUrl": "http://127.0.0.1:5000/123456789012/Work", "Entries": []}
    assert iam.requested("sqs", "SendMessageBatch", sent, region) == [("sqs:SendMessage", QUEUE + "Work")]
    with pytest.raises(iam.UnknownCall):
        iam.requested("s3", "GetObject", {"Bucket": "b", "Key": "k"}, region)


# Resources and actions over a small alphabet, so that patterns and values often meet (moto's
# evaluator knows only the * wildcard and compares actions case-sensitively: ? and case are below).
_text = st.text(alphabet="ab*:/", max_size=6)
_statement = st.fixed_dictionaries(
    {
        "Effect": st.sampled_from(["Allow", "Deny"]),
        "Action": st.lists(st.sampled_from(["dynamodb:GetItem", "dynamodb:*", "sqs:Send*", "*"]), min_size=1),
        "Resource": st.lists(_text.map(lambda tail: "arn:x:" + tail), min_size=1, max_size=2),
    }
)


@settings(max_examples=400, deadline=None)
@given(
    statements=st.lists(_statement, min_size=1, max_size=4),
    action=st.sampled_from(["dynamodb:GetItem", "dynamodb:PutItem", "sqs:SendMessage"]),
    resource=_text.filter(lambda tail: "*" not in tail).map(lambda tail: "arn:x:" + tail),
)
def test_evaluation_agrees_with_motos_evaluator(statements, action, resource):
    ours = iam.FunctionPolicy("F", "FRole", tuple(iam.statements_of({"Statement": statements}, str)))
    reference = IAMPolicy(json.dumps({"Version": "2012-10-17", "Statement": statements}))
    expected = reference.is_action_permitted(action, resource) == PermissionResult.PERMITTED
    assert ours.allows(action, resource) == expected


def test_wildcards_and_case_as_iam_documents_them():
    statements = [{"Effect": "Allow", "Action": "DynamoDB:Get?tem", "Resource": TABLE + "T?/index/*"}]
    policy = iam.FunctionPolicy("F", "FRole", tuple(iam.statements_of({"Statement": statements}, str)))
    assert policy.allows("dynamodb:GetItem", TABLE + "T1/index/by-x")  # actions ignore case
    assert not policy.allows("dynamodb:GetItem", TABLE + "t1/index/by-x")  # resources do not
    assert not policy.allows("dynamodb:GetItem", TABLE + "T12/index/by-x")  # ? is one character
    assert not policy.allows("dynamodb:GetItems", TABLE + "T1/index/by-x")


def test_deny_wins_and_a_condition_never_allows():
    statements = [
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "dynamodb:DeleteItem", "Resource": TABLE + "Keep"},
        {"Effect": "Allow", "Action": "sqs:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
        {"Effect": "Allow", "NotAction": "dynamodb:*", "NotResource": QUEUE + "Secret"},
    ]
    policy = iam.FunctionPolicy("F", "FRole", tuple(iam.statements_of({"Statement": statements}, str)))
    assert policy.allows("dynamodb:DeleteItem", TABLE + "Other")
    assert not policy.allows("dynamodb:DeleteItem", TABLE + "Keep")
    assert policy.allows("sqs:SendMessage", QUEUE + "Open")  # by NotAction, not by the conditional Allow
    assert not policy.allows("sqs:SendMessage", QUEUE + "Secret")


@pytest.mark.access_denied
def test_a_call_outside_the_policy_fails_as_aws_fails_it_and_is_reported(tables, iam_denials):
    client = boto3.client("dynamodb", region_name="us-east-1")
    with iam.acting_as("IngestFunction"):
        client.get_item(TableName="CredentialsTable", Key={"pk": {"S": "cred#x"}})  # granted
        with pytest.raises(ClientError) as refused:
            client.scan(TableName="EventsTable")
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        "User: arn:aws:sts::123456789012:assumed-role/IngestFunctionRole/IngestFunction is not authorized to "
        f"perform: dynamodb:Scan on resource: {TABLE}EventsTable because no identity-based policy allows "
        "the dynamodb:Scan action"
    )
    client.scan(TableName="EventsTable")  # the test itself is nobody's function: not checked
    assert [str(denial) for denial in iam.denials[-1:]] == [
        f"AccessDenied: IngestFunction may not dynamodb:Scan on {TABLE}EventsTable (template.yaml does not grant it)"
    ]


@pytest.mark.access_denied
def test_a_thread_a_handler_starts_acts_as_its_function(tables):
    import threading

    client = boto3.client("sqs", region_name="us-east-1")
    url = client.get_queue_url(QueueName="NightlyWorkQueue")["QueueUrl"]
    outcome: list[str] = []

    def purge() -> None:
        try:
            client.purge_queue(QueueUrl=url)
            outcome.append("purged")
        except ClientError as error:
            outcome.append(error.response["Error"]["Code"])

    with iam.acting_as("NightlyWorkerFunction"):
        thread = threading.Thread(target=purge)
        thread.start()
    thread.join()
    assert outcome == ["AccessDenied"]
