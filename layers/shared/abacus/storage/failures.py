"""A DynamoDB request that failed, said in one sentence for the operator's command line: what is
missing (a region, credentials, a table), what could not be reached, or what DynamoDB refused."""

import os
import re

from botocore.exceptions import (
    ClientError,
    HTTPClientError,
    NoCredentialsError,
    NoRegionError,
    PartialCredentialsError,
)
from botocore.exceptions import ConnectionError as EndpointUnreachable
from pynamodb.exceptions import PynamoDBException

from abacus.core.settings import settings

# Each table's variable, and the stack output that gives its name.
TABLE_VARIABLES = {
    "PROJECTS_TABLE": "ProjectsTableName",
    "CREDENTIALS_TABLE": "CredentialsTableName",
    "EXPERIMENTS_TABLE": "ExperimentsTableName",
    "ASSIGNMENTS_TABLE": "AssignmentsTableName",
    "EVENTS_TABLE": "EventsTableName",
    "RESULTS_TABLE": "ResultsTableName",
    "PERSONS_TABLE": "PersonsTableName",
}
# PynamoDB names the table of a refused request only in its error's text.
_TABLE_IN_ERROR = re.compile(r"on table \(([^)]*)\)")


def describe(error: Exception) -> str:
    """What went wrong, in a line: `error` is PynamoDB's (its cause botocore's) or botocore's own."""
    cause = error.cause if isinstance(error, PynamoDBException) and error.cause is not None else error
    if isinstance(cause, NoRegionError):
        return "no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region) to the stack's region"
    if isinstance(cause, NoCredentialsError | PartialCredentialsError):
        return (
            f"no AWS credentials ({cause}): set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(the local stack takes any)"
        )
    if isinstance(cause, EndpointUnreachable | HTTPClientError):
        return f"could not reach DynamoDB: {cause}"
    if isinstance(cause, ClientError):
        code = cause.response.get("Error", {}).get("Code")
        if code == "ResourceNotFoundException":
            return _missing_table(str(cause))
        return f"DynamoDB refused the request ({code}): {cause.response.get('Error', {}).get('Message', '')}"
    return f"DynamoDB failed: {cause}"


def _missing_table(error_text: str) -> str:
    found = _TABLE_IN_ERROR.search(error_text)
    table = found.group(1) if found else "?"
    where = f"in {settings.region or 'the configured region'}"
    if endpoint := os.environ.get("AWS_ENDPOINT_URL_DYNAMODB"):
        where += f" at {endpoint}"
    variable = next((name for name in TABLE_VARIABLES if getattr(settings, name.lower()) == table), None)
    if variable is None:
        return f"table {table} not found in {where}: the tables' names come from {', '.join(TABLE_VARIABLES)}"
    return f"table {table} not found in {where}: set {variable} to the stack's {TABLE_VARIABLES[variable]} output"
