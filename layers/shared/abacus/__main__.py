"""The operator's command line.

  python -m abacus project create NAME            a project; prints its token, admin key and flags
                                                   key once
  python -m abacus project rotate ID [--token] [--admin-key] [--flags-key]
                                                   new keys; the old ones stop working
  python -m abacus project delete ID --yes         the project and everything stored for it
  python -m abacus results KEY --project ID [--date YYYY-MM-DD]
                                                   an experiment's results, as the report shows them

It talks to the tables with the operator's AWS credentials: the table names come from the
environment (PROJECTS_TABLE..., the stack's outputs), and AWS_ENDPOINT_URL_DYNAMODB points it at
the local stack's moto server (on loopback it needs no region or credentials). A failure is one
line on stderr: exit status 2 for what was asked (no such project, a bad date), 1 when AWS or
DynamoDB failed (no region, no credentials, a table not found, no answer).
"""

import argparse
import json
import os
import sys

from abacus import local_endpoint


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "project" and args.action == "rotate" and not (args.token or args.admin_key or args.flags_key):
        parser.error("rotate: say which keys: --token, --admin-key, --flags-key")
    local_endpoint.fill_in(os.environ)  # before abacus reads its settings: --help needs none

    from botocore.exceptions import BotoCoreError, ClientError
    from pynamodb.exceptions import PynamoDBException

    from abacus.errors import AbacusError
    from abacus.storage.failures import describe

    # Every failure is a line on stderr: 2 for what was asked, 1 for AWS or DynamoDB.
    try:
        return _run(args)
    except AbacusError as error:
        return _fail(error.message, 2)
    except (PynamoDBException, BotoCoreError, ClientError) as error:
        return _fail(describe(error), 1)
    except ValueError as error:
        return _fail(str(error), 2)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m abacus", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    project = commands.add_parser("project", help="manage projects").add_subparsers(dest="action", required=True)
    create = project.add_parser("create", help="create a project")
    create.add_argument("name")
    rotate = project.add_parser("rotate", help="replace a project's keys")
    rotate.add_argument("project_id")
    rotate.add_argument("--token", action="store_true", help="a new project token")
    rotate.add_argument("--admin-key", action="store_true", help="a new admin key")
    rotate.add_argument("--flags-key", action="store_true", help="a new flags key (local evaluation's)")
    delete = project.add_parser("delete", help="delete a project and everything stored for it")
    delete.add_argument("project_id")
    delete.add_argument("--yes", action="store_true", required=True, help="yes, delete it: there is no undo")
    shown = commands.add_parser("results", help="print an experiment's results")
    shown.add_argument("key")
    shown.add_argument("--project", required=True, help="the project id")
    shown.add_argument("--date", help="a past day (default: the latest snapshot)")
    return parser


def _run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from abacus import projects, report, results
    from abacus.documents import NewProject, RotatedKeys

    if args.command == "results":
        shown = results.snapshot(args.project, args.key, args.date)
        print(shown["message"] if shown["status"] == "pending" else report.text(shown, args.key))
    elif args.action == "delete":
        deleted = projects.delete(args.project_id, datetime.now(UTC))
        print(json.dumps({"project_id": args.project_id, "deleted": deleted}, indent=2))
    else:
        answer: NewProject | RotatedKeys = (
            projects.create(args.name)
            if args.action == "create"
            else projects.rotate(args.project_id, token=args.token, admin_key=args.admin_key, flags_key=args.flags_key)
        )
        print(json.dumps(answer, indent=2))
        print(
            "Keep the admin key and the flags key now: Abacus stores only their hashes and cannot show them "
            "again (the public token is on the console's Implementation page).",
            file=sys.stderr,
        )
    return 0


def _fail(message: str, status: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
