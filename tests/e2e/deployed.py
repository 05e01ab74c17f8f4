"""`make e2e-aws`: the end-to-end tests against a running stack, with a throwaway project.

  AWS_SAM_STACK_NAME=abacus-e2e make e2e-aws          a deployed stack (your AWS credentials)
  make e2e-local                                       the same, against a local stack

It reads the stack's outputs (CloudFormation's, or the local stack's from the same template),
creates a project with fresh keys in the stack's tables, runs the end-to-end tests that make sense
against any stack (all but those marked local_only) one after another against it, and deletes the
project and everything stored for it, whatever the tests did. Arguments after `--` go to pytest.

The tests invoke the nightly job, which analyses every running experiment of the stack: point it
at a stack kept for testing, not at production.
"""

import argparse
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from abacus_local.template import ROOT

# Stack output -> the environment variable that abacus reads it from.
TABLE_OUTPUTS = {
    "ProjectsTableName": "PROJECTS_TABLE",
    "CredentialsTableName": "CREDENTIALS_TABLE",
    "ExperimentsTableName": "EXPERIMENTS_TABLE",
    "AssignmentsTableName": "ASSIGNMENTS_TABLE",
    "EventsTableName": "EVENTS_TABLE",
    "ResultsTableName": "RESULTS_TABLE",
    "PersonsTableName": "PERSONS_TABLE",
}
NOT_CONFIGURED = """make e2e-aws runs the end-to-end tests against a deployed stack: set AWS_SAM_STACK_NAME to
its name (and AWS credentials and region for its account), for example
    sam deploy --stack-name abacus-e2e --resolve-s3 --capabilities CAPABILITY_IAM
    AWS_SAM_STACK_NAME=abacus-e2e make e2e-aws
Use a stack kept for testing: the tests run the nightly job over the whole stack.
make e2e-local runs the same tests the same way against a local stack."""


def deployed_outputs(stack_name: str) -> dict[str, str]:
    """The deployed stack's outputs, from CloudFormation; the region it is in goes to the
    environment, where abacus reads it (a profile's region would otherwise be missed)."""
    import boto3

    session = boto3.session.Session()
    if session.region_name:
        os.environ.setdefault("AWS_DEFAULT_REGION", session.region_name)
    stack = session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]
    return {output["OutputKey"]: output["OutputValue"] for output in stack.get("Outputs", [])}


@contextmanager
def local_stack() -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    """A local stack: its outputs, and what reaches it (its moto server, its Invoke API)."""
    from abacus_local.stack import LocalStack, free_port

    # The stack's own project gets fresh keys too: no key of the stack is a constant of the source.
    os.environ["ABACUS_TOKEN"] = f"phc_local_{secrets.token_hex(12)}"
    os.environ["ABACUS_ADMIN_KEY"] = f"abacus_local_{secrets.token_hex(12)}"
    os.environ["ABACUS_FLAGS_KEY"] = f"phs_local_{secrets.token_hex(12)}"
    with LocalStack(port=free_port(), log_level="WARNING") as stack:
        reach = {
            "AWS_ENDPOINT_URL_DYNAMODB": stack.dynamodb_url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_DEFAULT_REGION": "us-east-1",
            "ABACUS_E2E_LAMBDA_ENDPOINT": stack.url,
        }
        yield stack.outputs(), reach


@contextmanager
def throwaway_project() -> Iterator[dict[str, Any]]:
    """A project with fresh keys, deleted with everything of it afterwards."""
    from abacus import projects

    created = projects.create(f"e2e {datetime.now(UTC):%Y-%m-%d %H:%M:%S}")
    print(f"throwaway project {created['project_id']}", flush=True)
    try:
        yield dict(created)
    finally:
        deleted = projects.delete(created["project_id"], datetime.now(UTC))
        print(f"deleted project {created['project_id']}: {deleted}", flush=True)


def run_tests(outputs: dict[str, str], project: dict[str, Any], pytest_args: list[str]) -> int:
    environment = os.environ | {
        "ABACUS_E2E_API_URL": outputs["ApiUrl"],
        "ABACUS_E2E_TOKEN": project["token"],
        "ABACUS_E2E_ADMIN_KEY": project["admin_key"],
        "ABACUS_E2E_FLAGS_KEY": project["flags_key"],
        # The alias the schedule invokes (a local stack has none: its function's name).
        "ABACUS_E2E_RESULTS_FUNCTION": outputs.get("ResultsFunctionAliasArn", outputs["ResultsFunctionName"]),
    }
    # One stack for every test: one test at a time, so that their nightly runs do not overlap.
    command = [sys.executable, "-m", "pytest", "tests/e2e", "-m", "not local_only", "-p", "no:xdist", *pytest_args]
    return subprocess.run(command, cwd=ROOT, env=environment, check=False).returncode


def against(outputs: dict[str, str], pytest_args: list[str]) -> int:
    """Runs the tests against the stack whose outputs these are (the environment reaches it)."""
    missing = [name for name in ("ApiUrl", "ResultsFunctionName", *TABLE_OUTPUTS) if name not in outputs]
    if missing:
        print(f"the stack has no output {', '.join(missing)}: deploy the current template.yaml", file=sys.stderr)
        return 2
    os.environ.update({variable: outputs[output] for output, variable in TABLE_OUTPUTS.items()})
    with throwaway_project() as project:
        return run_tests(outputs, project, pytest_args)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.e2e.deployed", description=__doc__.splitlines()[0])
    parser.add_argument("--local", action="store_true", help="against a local stack started for the run")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest")
    args = parser.parse_args(argv)
    if args.local:
        with local_stack() as (outputs, reach):
            os.environ.update(reach)
            return against(outputs, args.pytest_args)
    stack_name = os.environ.get("AWS_SAM_STACK_NAME")
    if not stack_name:
        print(NOT_CONFIGURED, file=sys.stderr)
        return 2
    return against(deployed_outputs(stack_name), args.pytest_args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
