"""The operator's command line.

  python -m abacus project create NAME            a project; prints its token and admin key once
  python -m abacus project rotate ID [--token] [--admin-key]
                                                   new keys; the old ones stop working
  python -m abacus project delete ID --yes         the project and everything stored for it
  python -m abacus results KEY --project ID [--date YYYY-MM-DD]
                                                   an experiment's results, as the report shows them

It talks to the tables with the operator's AWS credentials: the table names come from the
environment (PROJECTS_TABLE..., the stack's outputs), and AWS_ENDPOINT_URL_DYNAMODB points it at
the local stack's moto server.
"""

import argparse
import json
import sys


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m abacus", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    project = commands.add_parser("project", help="manage projects").add_subparsers(dest="action", required=True)
    create = project.add_parser("create", help="create a project")
    create.add_argument("name")
    rotate = project.add_parser("rotate", help="replace a project's keys")
    rotate.add_argument("project_id")
    rotate.add_argument("--token", action="store_true", help="a new project token")
    rotate.add_argument("--admin-key", action="store_true", help="a new admin key")
    delete = project.add_parser("delete", help="delete a project and everything stored for it")
    delete.add_argument("project_id")
    delete.add_argument("--yes", action="store_true", required=True, help="yes, delete it: there is no undo")
    shown = commands.add_parser("results", help="print an experiment's results")
    shown.add_argument("key")
    shown.add_argument("--project", required=True, help="the project id")
    shown.add_argument("--date", help="a past day (default: the latest snapshot)")
    args = parser.parse_args(argv)

    from abacus import projects  # after parsing: --help needs no AWS settings
    from abacus.documents import NewProject, RotatedKeys

    if args.command == "results":
        return _results(args.project, args.key, args.date)
    if args.action == "delete":
        return _delete(args.project_id)
    answer: NewProject | RotatedKeys
    try:
        if args.action == "create":
            answer = projects.create(args.name)
        else:
            if not (args.token or args.admin_key):
                parser.error("rotate: say --token, --admin-key or both")
            answer = projects.rotate(args.project_id, token=args.token, admin_key=args.admin_key)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=2))
    print("Keep the keys now: Abacus stores only their hashes and cannot show them again.", file=sys.stderr)
    return 0


def _delete(project_id: str) -> int:
    from datetime import UTC, datetime

    from abacus import projects

    try:
        deleted = projects.delete(project_id, datetime.now(UTC))
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps({"project_id": project_id, "deleted": deleted}, indent=2))
    return 0


def _results(project_id: str, key: str, date: str | None) -> int:
    from abacus import report, results
    from abacus.errors import AbacusError

    try:
        answer = results.snapshot(project_id, key, date)
    except AbacusError as error:
        print(f"error: {error.message}", file=sys.stderr)
        return 2
    print(answer["message"] if answer["status"] == "pending" else report.text(answer, key))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
