"""The operator's command line.

  python -m abacus project create NAME            a project; prints its token, admin key and flags
                                                   key once
  python -m abacus project rotate ID [--token] [--admin-key] [--flags-key]
                                                   new keys; the old ones stop working
  python -m abacus project delete ID --yes         the project and everything stored for it
  python -m abacus project move-keys               moves the keys of projects created before the
                                                   credentials table to it (once, after upgrading)
  python -m abacus results KEY --project ID [--date YYYY-MM-DD]
                                                   an experiment's results, as the report shows them
  python -m abacus results KEY --project ID --recompute [--date YYYY-MM-DD] [--wait SECONDS]
                                                   computes them now (or for that past day) through
                                                   the nightly job's queue, showing the run's
                                                   progress on stderr until its snapshot is stored

It talks to the tables with the operator's AWS credentials: the table names come from the
environment (PROJECTS_TABLE, CREDENTIALS_TABLE..., the stack's outputs; a recompute also needs RUNS_TABLE and
NIGHTLY_QUEUE_URL), and AWS_ENDPOINT_URL_DYNAMODB points it at the local stack's moto server (on
loopback it needs no region or credentials). A failure is one line on stderr: exit status 2 for
what was asked (no such project, a bad date, a run that cannot finish), 1 when AWS or DynamoDB
failed (no region, no credentials, a table not found, no answer, no queue, a recompute not done
within its wait).
"""

import argparse
import json
import os
import sys
from typing import TYPE_CHECKING

from abacus.core.timeouts import RECOMPUTE_FOLLOW_SECONDS
from abacus.storage import local_endpoint

if TYPE_CHECKING:  # abacus reads its settings when imported: the commands import it once they are set
    from abacus.results.snapshots import RunProgress


def main(argv: list[str]) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command == "project" and args.action == "rotate" and not (args.token or args.admin_key or args.flags_key):
        parser.error("rotate: say which keys: --token, --admin-key, --flags-key")
    local_endpoint.fill_in(os.environ)  # before abacus reads its settings: --help needs none

    from botocore.exceptions import BotoCoreError, ClientError
    from pynamodb.exceptions import PynamoDBException

    from abacus.core.errors import AbacusError
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
    project.add_parser("move-keys", help="move keys kept in the projects table to the credentials table")
    shown = commands.add_parser("results", help="print an experiment's results")
    shown.add_argument("key")
    shown.add_argument("--project", required=True, help="the project id")
    shown.add_argument("--date", help="a past day (default: the latest snapshot)")
    shown.add_argument(
        "--recompute",
        action="store_true",
        help="compute the snapshot now (with --date: of that day) through the nightly job's queue and wait for it",
    )
    shown.add_argument(
        "--wait",
        type=_seconds,
        default=RECOMPUTE_FOLLOW_SECONDS,
        metavar="SECONDS",
        help=f"how long --recompute waits for its snapshot (default {RECOMPUTE_FOLLOW_SECONDS:g})",
    )
    return parser


def _seconds(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text}: a number of seconds above 0")
    return value


def _run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from abacus import projects
    from abacus.core.answers import NewProject, RotatedKeys
    from abacus.results import snapshots
    from abacus.results.report import text_report

    if args.command == "results" and args.recompute:
        return _recompute(args)
    if args.command == "results":
        shown = snapshots.snapshot(args.project, args.key, args.date)
        print(shown["message"] if shown["status"] == "pending" else text_report.text(shown, args.key))
    elif args.action == "delete":
        deleted = projects.delete(args.project_id, datetime.now(UTC))
        print(json.dumps({"project_id": args.project_id, "deleted": deleted}, indent=2))
    elif args.action == "move-keys":
        print(json.dumps({"keys_moved": projects.move_keys()}, indent=2))
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


def _recompute(args: argparse.Namespace) -> int:
    """Starts a recompute, shows its run's progress on stderr until its snapshot is stored (printed
    as `results` prints it) or `--wait` seconds pass."""
    from datetime import UTC, datetime

    from abacus.core.settings import settings
    from abacus.results import snapshots
    from abacus.results.report import text_report

    if not settings.nightly_queue_url:
        return _fail("no queue for the recompute's work: set NIGHTLY_QUEUE_URL (the NightlyWorkQueueUrl output)", 1)
    started = snapshots.start_recompute(args.project, args.key, datetime.now(UTC), as_of=args.date)
    progress = snapshots.follow(started, args.wait, _ProgressLines(started.date))
    if progress is not None and progress.error is not None:
        raise snapshots.failure(started, progress.error)
    if progress is None or not progress.merged:
        done = f"{progress.shards_done} of {progress.shards}" if progress else "no record of its"
        return _fail(
            f"the snapshot of {started.date} is not stored after {args.wait:g} s ({done} shards done): its run "
            f"goes on through the nightly job's queue; read it later with `python -m abacus results {args.key} "
            f"--project {args.project} --date {started.date}` (a unit of work that failed five times waits in "
            "NightlyWorkDeadLetters: redrive it once its cause is fixed)",
            1,
        )
    shown = snapshots.snapshot(args.project, args.key, started.date)
    print(shown["message"] if shown["status"] == "pending" else text_report.text(shown, args.key))
    return 0


class _ProgressLines:
    """A line on stderr for each change of a run's progress, and every REPEAT_S seconds meanwhile."""

    REPEAT_S = 10.0

    def __init__(self, date: str) -> None:
        import time

        self.date, self.clock, self.started = date, time.monotonic, time.monotonic()
        self.last: tuple[int, int, bool] | None = None  # shards done, shards, merged
        self.printed_at = 0.0

    def __call__(self, progress: "RunProgress") -> None:
        now, state = self.clock(), (progress.shards_done, progress.shards, progress.merged)
        if state == self.last and now - self.printed_at < self.REPEAT_S:
            return
        self.last, self.printed_at = state, now
        stored = ", stored" if progress.merged else ""
        print(
            f"recomputing the snapshot of {self.date}: {progress.shards_done} of {progress.shards} shards done"
            f"{stored} ({now - self.started:.0f} s)",
            file=sys.stderr,
            flush=True,
        )


def _fail(message: str, status: int) -> int:
    print(f"error: {message}", file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
