"""The operator's command line.

  python -m abacus project create NAME            a project; prints its token, admin key and flags
                                                   key once
  python -m abacus project list [--limit N] [--after ID]
                                                   the projects (id, name, created_at), 100 a page
  python -m abacus project rotate ID [--token] [--admin-key] [--flags-key]
                                                   new keys; the old ones stop working
  python -m abacus project delete ID --yes         the project and everything stored for it
  python -m abacus project move-keys               moves the keys of projects created before the
                                                   credentials table to it (once, after upgrading)
  python -m abacus key create --project ID --name NAME
                                                   a named admin key for one person, printed once
  python -m abacus key list --project ID           the project's admin keys: id, name, created_at
  python -m abacus key revoke --project ID KEY_ID  that key and the console sessions it signed in
                                                   stop working at once
  python -m abacus experiment list --project ID [--status STATUS]
  python -m abacus experiment create --project ID FILE.json
                                                   a draft, from POST /experiments' JSON body (-: stdin)
  python -m abacus experiment launch|stop|archive --project ID KEY
  python -m abacus experiment ship --project ID KEY --variant VARIANT
                                                   experiments as the API answers them (JSON); each
                                                   change is in their history as done by
                                                   "operator (command line)", or by --by NAME
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
what was asked (no such project or experiment, a bad date or field, an action the experiment's
status refuses, a run that cannot finish), 1 when AWS or DynamoDB failed (no region, no
credentials, a table not found, no answer, no queue, a recompute not done within its wait).
"""

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from abacus.core.timeouts import RECOMPUTE_FOLLOW_SECONDS
from abacus.storage import local_endpoint

# Kept here too (abacus reads its settings when imported: --help must need none).
STATUSES = ("draft", "running", "complete", "archived")
ACTIONS = ("launch", "stop", "ship", "archive")

if TYPE_CHECKING:  # abacus reads its settings when imported: the commands import it once they are set
    from abacus.experiments.spec import ExperimentCreate
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
    listed = project.add_parser("list", help="list the projects: id, name, created_at")
    listed.add_argument("--limit", type=int, default=100, help="how many at most (1 to 1000; default 100)")
    listed.add_argument("--after", metavar="ID", help="list on from this project (the `next` of the page before)")
    rotate = project.add_parser("rotate", help="replace a project's keys")
    rotate.add_argument("project_id")
    rotate.add_argument("--token", action="store_true", help="a new project token")
    rotate.add_argument("--admin-key", action="store_true", help="a new admin key")
    rotate.add_argument("--flags-key", action="store_true", help="a new flags key (local evaluation's)")
    delete = project.add_parser("delete", help="delete a project and everything stored for it")
    delete.add_argument("project_id")
    delete.add_argument("--yes", action="store_true", required=True, help="yes, delete it: there is no undo")
    project.add_parser("move-keys", help="move keys kept in the projects table to the credentials table")
    _key_commands(commands)
    _experiment_commands(commands)
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


def _key_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    key = commands.add_parser("key", help="named admin keys, one a person")
    actions = key.add_subparsers(dest="action", required=True)
    create = actions.add_parser("create", help="a new admin key for one person, printed once")
    create.add_argument("--project", required=True, help="the project id")
    create.add_argument("--name", required=True, help="whose key it is (1 to 64 characters): the history says it")
    listed = actions.add_parser("list", help="the project's admin keys (never the keys themselves)")
    listed.add_argument("--project", required=True, help="the project id")
    revoke = actions.add_parser("revoke", help="revoke a named admin key and end the console sessions it signed in")
    revoke.add_argument("--project", required=True, help="the project id")
    revoke.add_argument("key_id", help="the key's id, as `key list` shows it (ak_...)")


def _experiment_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    experiment = commands.add_parser("experiment", help="list, create, launch, stop, ship or archive experiments")
    actions = experiment.add_subparsers(dest="action", required=True)
    listed = actions.add_parser("list", help="the project's experiments (JSON, as GET /experiments answers)")
    listed.add_argument("--project", required=True, help="the project id")
    listed.add_argument("--status", help=f"only those in this status: {', '.join(STATUSES)}")
    create = actions.add_parser("create", help="a draft, from the JSON body POST /experiments takes")
    create.add_argument("--project", required=True, help="the project id")
    create.add_argument("file", metavar="FILE.json", help="the experiment's JSON (-: read it from stdin)")
    for action in ACTIONS:
        acted = actions.add_parser(action, help=f"{action} an experiment")
        acted.add_argument("--project", required=True, help="the project id")
        acted.add_argument("key", help="the experiment's key")
        if action == "ship":
            acted.add_argument("--variant", required=True, help="the variant everyone gets from now on")
    for parser in [create, *(actions.choices[action] for action in ACTIONS)]:
        parser.add_argument("--by", metavar="NAME", help="who acts, for its history (default: operator)")


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
    if args.command == "key":
        return _key(args)
    if args.command == "experiment":
        return _experiment(args)
    if args.command == "project" and args.action == "list":
        _print_json(projects.list_projects(args.limit, args.after))
        return 0
    if args.command == "results":
        shown = snapshots.snapshot(args.project, args.key, args.date)
        print(text_report.results_text(shown, args.key))
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


def _key(args: argparse.Namespace) -> int:
    from abacus import projects

    if args.action == "create":
        _print_json(projects.create_admin_key(args.project, args.name))
        print(
            "Give this admin key to its holder now: Abacus stores only its hash and cannot show it again. "
            f"`python -m abacus key revoke --project {args.project} KEY_ID` revokes it.",
            file=sys.stderr,
        )
    elif args.action == "list":
        _print_json({"project_id": args.project, "admin_keys": projects.admin_keys(args.project)})
    else:
        _print_json({"project_id": args.project, "revoked": projects.revoke_admin_key(args.project, args.key_id)})
    return 0


def _experiment(args: argparse.Namespace) -> int:
    """The experiment commands: what they answer is the API's JSON (definitions.to_api)."""
    from datetime import UTC, datetime

    from abacus.experiments import definitions
    from abacus.projects import checked_name
    from abacus.storage import project_items

    if project_items.created_at(args.project) is None:
        raise ValueError(f"no project '{args.project}'")
    if args.action == "list":
        if args.status is not None and args.status not in STATUSES:
            raise ValueError(f"--status: '{args.status}' is none of {', '.join(STATUSES)}")
        _print_json({"experiments": _all_experiments(args.project, args.status)})
        return 0
    by = f"{checked_name(args.by, '--by')} (command line)" if args.by else "operator (command line)"
    now = datetime.now(UTC)
    if args.action == "create":
        item = definitions.create(args.project, _experiment_file(args.file), now, by=by)
    else:
        variant = getattr(args, "variant", None)  # ship's
        item = definitions.apply(args.project, args.key, args.action, now, variant=variant, by=by)
    _print_json(definitions.to_api(item))
    return 0


def _all_experiments(project_id: str, status: str | None) -> list[object]:
    """Every experiment of the project (of `status`), a page of 100 at a time."""
    from abacus.experiments import definitions

    listed: list[object] = []
    after = None
    while True:
        page = definitions.page(project_id, 100, after, status)
        listed.extend(page["experiments"])
        after = page["next"]
        if after is None:
            return listed


def _experiment_file(path: str) -> "ExperimentCreate":
    """The experiment a JSON file describes, checked as POST /experiments checks its body: strict
    JSON, then ExperimentCreate (Invalid naming every field at fault)."""
    from pydantic import ValidationError

    from abacus.core.errors import Invalid, field_errors
    from abacus.experiments.spec import ExperimentCreate
    from abacus.http.api import strict_json

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ValueError(f"{path}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not UTF-8 text") from None
    try:
        body = strict_json(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error.msg}, line {error.lineno})") from None
    try:
        return ExperimentCreate.model_validate(body)
    except ValidationError as error:
        raise Invalid.of(field_errors(error.errors())) from None


def _print_json(answer: object) -> None:
    """An answer as the API writes it (NaN and Infinity, which no JSON parser takes, as null)."""
    from abacus.core.numbers import nulled

    print(json.dumps(nulled(answer), indent=2, allow_nan=False))


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
    print(text_report.results_text(shown, args.key))
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
