"""The console's pages (issue 17), rendered by Jinja2 from templates/console with autoescaping:
pure functions of what the routes read, so that they can be tested without a request.

Only ResultsFunction imports this module: assign and ingest never load the console."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from abacus import lifecycle, report
from abacus.console_session import Session
from abacus.documents import Experiment, Snapshot
from abacus.storage.results import SnapshotItem

_templates = Environment(
    loader=PackageLoader("abacus", "templates/console"),
    autoescape=select_autoescape(default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
STATUSES = [
    (lifecycle.DRAFT, "Creation (draft)"),
    (lifecycle.RUNNING, "Running"),
    (lifecycle.COMPLETE, "Complete"),
    (lifecycle.ARCHIVED, "Archived"),
]
_STATUS_WORDS = dict(STATUSES)


@dataclass(frozen=True)
class ListedExperiment:
    key: str
    name: str
    status: str
    days_running: str
    exposures: str
    verdict: str


def listed(experiment: Experiment, latest: SnapshotItem | None, now: datetime) -> ListedExperiment:
    """An experiment's row of the list: its status, days running, exposures and verdict so far."""
    started, stopped = experiment.get("started_at"), experiment.get("stopped_at")
    days = "–"
    if started:
        end = datetime.fromisoformat(stopped) if stopped else now
        days = f"{max(0.0, (end - datetime.fromisoformat(started)).total_seconds() / 86400):.1f}"
    exposures = verdict = "–"
    if latest is not None:
        exposures = f"{sum(row['exposures'] for row in latest.analysis['variants']):,}"
        verdict = report.verdict_sentence(latest.analysis)
    return ListedExperiment(
        experiment["key"],
        experiment.get("name") or experiment["key"],
        _STATUS_WORDS.get(experiment["status"], experiment["status"]),
        days,
        exposures,
        verdict,
    )


@dataclass(frozen=True)
class Action:
    name: str  # experiments.apply's action, or "recompute"
    words: str


RECOMPUTE = Action("recompute", "Recompute now")
# What each status lets the results page do (lifecycle.py refuses the rest with a 409).
ACTIONS = {
    lifecycle.RUNNING: [RECOMPUTE, Action("stop", "Stop"), Action("ship", "Ship variant")],
    lifecycle.COMPLETE: [RECOMPUTE, Action("ship", "Ship variant"), Action("archive", "Archive")],
}
_WORDS = {action.name: action.words for actions in ACTIONS.values() for action in actions}


def consequence(action: str, experiment: Experiment, variant: str | None) -> str:
    """What an action does, in words, for its confirmation."""
    if action == "stop":
        return (
            "No new user will be exposed. Users already in keep their variant until you ship one, and the results "
            "go on counting their events until their windows close."
        )
    if action == "ship":
        return f"Every user, in the experiment or not, gets '{variant}' from now on, and the experiment stops."
    served = experiment.get("shipped_variant") or "control"
    return f"Nothing about the experiment can change any more; it keeps serving '{served}' to everyone."


def sign_in_page(error: str | None = None) -> str:
    return _templates.get_template("sign_in.html").render(session=None, error=error)


def experiments_page(session: Session, rows: list[ListedExperiment], status: str | None, next_after: str | None) -> str:
    return _templates.get_template("experiments.html").render(
        session=session, rows=rows, status=status, statuses=STATUSES, next_after=next_after
    )


def experiment_page(session: Session, experiment: Experiment, history: list[Snapshot]) -> str:
    # The report's results section: its HTML is built escaped, by report.py.
    results: Any = Markup(report.results_section(history))  # noqa: S704 (escaped where it is built)
    return _templates.get_template("experiment.html").render(
        session=session,
        actions=ACTIONS.get(experiment["status"], []),
        experiment=experiment,
        status=_STATUS_WORDS.get(experiment["status"], experiment["status"]),
        results_html=results,
    )


def message_page(session: Session | None, title: str, message: str) -> str:
    return _templates.get_template("message.html").render(session=session, title=title, message=message)


def confirm_page(session: Session, experiment: Experiment, action: str, variant: str | None) -> str:
    return _templates.get_template("confirm.html").render(
        session=session,
        experiment=experiment,
        action=action,
        variant=variant,
        words=_WORDS.get(action, action),
        consequence=consequence(action, experiment, variant),
    )
