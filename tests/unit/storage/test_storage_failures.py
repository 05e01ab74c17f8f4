"""What a failed DynamoDB request means: only a failed uniqueness condition is a taken key, and any
other failure gets a sentence naming what is wrong (the operator's command line prints it)."""

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
    ReadTimeoutError,
)
from pynamodb.exceptions import CancellationReason, GetError, PutError, QueryError, TransactWriteError
from pynamodb.exceptions import VerboseClientError as DynamoDBError

from abacus.storage.base import condition_failed
from abacus.storage.failures import describe


def answer(code: str, message: str = "", table: str = "ProjectsTable", reasons=()) -> DynamoDBError:
    """DynamoDB's error answer as PynamoDB raises it (with the table it was asked about)."""
    verbose = {"request_id": "r1", "table_name": table}
    return DynamoDBError(
        {"Error": {"Code": code, "Message": message}}, "PutItem", verbose, cancellation_reasons=reasons
    )


def test_only_a_failed_condition_is_a_taken_key():
    assert condition_failed(PutError(cause=answer("ConditionalCheckFailedException")))
    canceled = [None, CancellationReason("ConditionalCheckFailed")]
    assert condition_failed(
        TransactWriteError(
            "Failed to write transaction items", answer("TransactionCanceledException", reasons=canceled)
        )
    )
    conflict = [CancellationReason("TransactionConflict"), None]
    assert not condition_failed(
        TransactWriteError(
            "Failed to write transaction items", answer("TransactionCanceledException", reasons=conflict)
        )
    )
    assert not condition_failed(PutError(cause=NoRegionError()))
    assert not condition_failed(PutError(cause=NoCredentialsError()))
    assert not condition_failed(PutError(cause=answer("ResourceNotFoundException", "Requested resource not found")))
    assert not condition_failed(PutError(cause=answer("ThrottlingException")))


@pytest.mark.parametrize(
    ("error", "sentence"),
    [
        (PutError(cause=NoRegionError()), "no AWS region: set AWS_REGION"),
        (GetError(cause=NoCredentialsError()), "no AWS credentials (Unable to locate credentials): set AWS_PROFILE"),
        (
            GetError(cause=PartialCredentialsError(provider="env", cred_var="AWS_SECRET_ACCESS_KEY")),
            "no AWS credentials",
        ),
        (
            GetError(cause=answer("ResourceNotFoundException", "Requested resource not found", "Shop-ProjectsTable")),
            "table Shop-ProjectsTable not found",
        ),
        (
            QueryError(cause=EndpointConnectionError(endpoint_url="http://127.0.0.1:9")),
            'could not reach DynamoDB: Could not connect to the endpoint URL: "http://127.0.0.1:9"',
        ),
        (QueryError(cause=ReadTimeoutError(endpoint_url="https://x")), "could not reach DynamoDB: "),
        (
            GetError(
                cause=answer("UnrecognizedClientException", "The security token included in the request is invalid")
            ),
            "DynamoDB refused the request (UnrecognizedClientException): The security token included",
        ),
        (NoRegionError(), "no AWS region"),  # botocore's own, outside PynamoDB
        (ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"}}, "Scan"), "DynamoDB refused"),
    ],
)
def test_every_other_failure_says_what_is_wrong_in_a_line(error, sentence):
    described = describe(error)
    assert described.startswith(sentence), described
    assert "\n" not in described
    assert "already belongs" not in described
