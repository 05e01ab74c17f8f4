"""The console's pages (issue 17), rendered by Jinja2 from templates/console with autoescaping:
pure functions of what the routes read, so that they can be tested without a request.

Only ResultsFunction imports this module: assign and ingest never load the console."""

import base64
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from abacus.assignment.live_check import LiveCheck
from abacus.console import experiment_form
from abacus.console.sessions import Session
from abacus.core.answers import Experiment
from abacus.core.documents import Snapshot
from abacus.experiments import lifecycle
from abacus.experiments.spec import AutomationSpec, ExperimentFields
from abacus.results import snapshots
from abacus.results.report import html_page, sentences
from abacus.storage.results import SnapshotItem

_templates = Environment(
    loader=PackageLoader("abacus.console", "templates"),
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
STATUS_NAMES = frozenset(_STATUS_WORDS)


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
        verdict = sentences.verdict_sentence(latest.analysis)
    if experiment["status"] in (lifecycle.COMPLETE, lifecycle.ARCHIVED):
        # What it serves now, not a verdict of an experiment that no longer runs ("keep running").
        served = experiment.get("shipped_variant")
        verdict = f"shipped '{served}'" if served else "stopped: serves 'control'"
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
DUPLICATE = Action("duplicate", "Duplicate as a new draft")
ACTIONS = {
    lifecycle.DRAFT: [Action("launch", "Launch"), Action("archive", "Archive"), Action("delete", "Delete"), DUPLICATE],
    lifecycle.RUNNING: [RECOMPUTE, Action("stop", "Stop"), Action("ship", "Ship variant"), DUPLICATE],
    lifecycle.COMPLETE: [RECOMPUTE, Action("ship", "Ship variant"), Action("archive", "Archive"), DUPLICATE],
    lifecycle.ARCHIVED: [DUPLICATE],
}
_WORDS = {action.name: action.words for actions in ACTIONS.values() for action in actions}


def consequence(action: str, experiment: Experiment, variant: str | None) -> str:
    """What an action does, in words, for its confirmation."""
    if action == "stop":
        return (
            "No new user will be exposed. Users already in keep their variant until you ship one, and the results "
            "go on counting their events until their windows close."
        )
    if action == "launch":
        return (
            "Users start getting variants and their exposures count from now. The variants, weights and metrics "
            "are frozen while it runs; to change them, stop it and create another."
        )
    if action == "ship":
        return f"Every user, in the experiment or not, gets '{variant}' from now on, and the experiment stops."
    if action == "delete":
        return "The draft is deleted, and its key is free for a new experiment. It never ran: there are no results."
    if experiment["status"] == lifecycle.DRAFT:
        return "The draft is kept, read-only, and never launched; duplicate it to start again from its definition."
    served = experiment.get("shipped_variant") or "control"
    return f"Nothing about the experiment can change any more; it keeps serving '{served}' to everyone."


def sign_in_page(error: str | None = None) -> str:
    return _templates.get_template("sign_in.html").render(session=None, error=error)


def experiments_page(session: Session, rows: list[ListedExperiment], status: str | None, next_after: str | None) -> str:
    return _templates.get_template("experiments.html").render(
        session=session, rows=rows, status=status, statuses=STATUSES, next_after=next_after
    )


class Script:
    """A script of templates/console, inlined in a page, and its hash for the page's
    Content-Security-Policy (script-src allows it alone)."""

    def __init__(self, name: str) -> None:
        self.text = resources.files("abacus.console").joinpath("templates", name).read_text()
        digest = base64.b64encode(hashlib.sha256(self.text.encode()).digest()).decode()
        self.source = f"'sha256-{digest}'"

    def markup(self) -> Any:
        return Markup(self.text)  # noqa: S704 - our own file, no input in it


CHECK_SCRIPT, IMPLEMENTATION_SCRIPT = Script("check.js"), Script("implementation.js")
TOKEN_PLACEHOLDER = "phc_your_project_token"  # noqa: S105 - a placeholder, replaced in the browser


def _status(experiment: Experiment) -> str:
    return _STATUS_WORDS.get(experiment["status"], experiment["status"])


# How often the Results page reloads itself while a recompute's run goes on (a meta refresh: no
# script needed), until its snapshot is stored or snapshots.RECOMPUTE_BOUND has passed.
RECOMPUTE_REFRESH_SECONDS = 3


@dataclass(frozen=True)
class RecomputeNotice:
    """What the Results page says of a recompute it follows, and whether it reloads itself."""

    sentence: str
    shards_done: int
    shards: int
    refresh_seconds: int | None
    trouble: bool  # it failed, is late, or is not known


def _duration(seconds: float) -> str:
    whole = max(0, int(seconds))
    return f"{whole} s" if whole < 60 else f"{whole // 60} min {whole % 60:02d} s"


def recompute_notice(progress: snapshots.RunProgress | None, now: datetime) -> RecomputeNotice:
    """The notice of a recompute from its run's progress (None: no such run is kept)."""
    if progress is None:
        words = "This recompute's run is no longer kept (runs expire after 16 days): the results below are the latest."
        return RecomputeNotice(words, 0, 0, None, trouble=True)
    done, shards, date = progress.shards_done, progress.shards, progress.date
    if progress.error is not None:
        words = f"The recompute could not finish: {progress.error}. The snapshots stored before are unchanged."
        return RecomputeNotice(words, done, shards, None, trouble=True)
    if progress.merged:
        return RecomputeNotice(f"Recomputed: the snapshot of {date} is stored, below.", done, shards, None, False)
    bound = int(snapshots.RECOMPUTE_BOUND.total_seconds() // 60)
    if progress.late(now):
        words = (
            f"The snapshot of {date} is still not stored {bound} minutes after the recompute started ({done} of "
            f"{shards} shards of its users done), so this page no longer reloads itself. Its run goes on through "
            "the nightly job's queue: reload this page to look again. A unit of its work that failed five times "
            "waits in the NightlyWorkDeadLetters queue: redrive it once the cause is fixed and the run carries on "
            '(docs/nightly.md, "What fails, and where it goes"), or recompute again.'
        )
        return RecomputeNotice(words, done, shards, None, trouble=True)
    words = (
        f"Recomputing the snapshot of {date}: {done} of {shards} shards of its users done, "
        f"{_duration((now - progress.started).total_seconds())} since it started. This page reloads itself every "
        f"{RECOMPUTE_REFRESH_SECONDS} seconds until the snapshot is stored, for up to {bound} minutes."
    )
    return RecomputeNotice(words, done, shards, RECOMPUTE_REFRESH_SECONDS, trouble=False)


def experiment_page(
    session: Session,
    experiment: Experiment,
    history: list[Snapshot],
    date: str | None,
    preview: str | None,
    recompute: RecomputeNotice | None = None,
    alerts: Sequence[Mapping[str, Any]] = (),
) -> str:
    """The Results page: the results as of `date` (default the latest), the days to choose from,
    the actions of the status; for a draft, what a user previewing gets; how a recompute it
    follows is going; and the alerts sent, with their deliveries."""
    shown = [snapshot for snapshot in history if date is None or snapshot["date"] <= date]
    # The report's results section: its HTML is built escaped, by report/html_page.py.
    results: Any = Markup(html_page.results_section(shown))  # noqa: S704 (escaped where it is built)
    return _templates.get_template("experiment.html").render(
        session=session,
        actions=ACTIONS.get(experiment["status"], []),
        experiment=experiment,
        status=_status(experiment),
        results_html=results,
        dates=[snapshot["date"] for snapshot in reversed(history)],
        date=shown[-1]["date"] if shown else None,
        preview=preview,
        previewed=experiment.get("overrides", {}).get(preview) if preview else None,
        tab="results",
        recompute=recompute,
        alerts=alerts,
    )


def form_page(
    session: Session,
    values: Mapping[str, str],
    checked: experiment_form.Checked | None,
    key: str | None,
    seen: experiment_form.TrafficSeen | None = None,
    status: str = lifecycle.DRAFT,
    event_names: Sequence[str] = (),
) -> str:
    """The Creation form: empty (the daily users `seen` filled in), an experiment's values (editing
    a draft; a launched experiment's, read-only but for what its status lets change), or what was
    sent with its errors."""
    editable = lifecycle.EDITABLE[status]
    every = set(ExperimentFields.model_fields)
    frozen = experiment_form.form_fields_of(every - editable) if editable is not None else set()
    seen_hint = None
    if seen is not None:
        seen_hint = f"Seen: about {seen.daily_users:,} users a day reach the flag of '{seen.experiment}' (its results)."
    # A new form shows the automation's default runtime (an empty field means it too).
    values = {experiment_form.AUTOMATION_FIELDS["minimum_days"]: str(AutomationSpec().minimum_days), **values}
    return _templates.get_template("experiment_form.html").render(
        seen_hint=seen_hint,
        session=session,
        values=values,
        errors=checked.errors if checked else {},
        plan=checked.plan
        if checked
        else experiment_form.plan_sentence(experiment_form.read(values)[0], values.get("daily_users")),
        key=key,
        experiment={"key": key, "status": status},
        status=status,
        frozen=frozen,
        editable=sorted(editable) if editable is not None else None,
        action=f"/console/experiments/{key}/edit" if key else "/console/new",
        rows=experiment_form.VARIANT_ROWS,
        event_names=event_names,  # the project's received event names, the metric fields' suggestions
        tab="creation",
        script=CHECK_SCRIPT.markup(),
    )


def implementation_page(
    session: Session, experiment: Experiment, live: LiveCheck | None, base_url: str, token: str | None
) -> str:
    """The snippets with this experiment's key and the project's token, ready to paste, and the
    live check. A project created before its token was kept readable (`token` None) gets a field
    to type it in, which the page's script puts in the snippets."""
    variants = [variant["key"] for variant in experiment["variants"]]
    return _templates.get_template("implementation.html").render(
        session=session,
        experiment=experiment,
        status=_status(experiment),
        token=token or TOKEN_PLACEHOLDER,
        token_known=token is not None,
        base_url=base_url,
        treatment=variants[1] if len(variants) > 1 else variants[0],
        metric_event=_first_event(experiment),
        group_type=experiment.get("group_type"),
        tab="implementation",
        script=IMPLEMENTATION_SCRIPT.markup(),
        **live_values(live),
    )


def _first_event(experiment: Experiment) -> str:
    metric = experiment["primary_metric"]
    if metric.get("event"):
        return str(metric["event"])
    parts = [*(metric.get("steps") or []), metric.get("numerator") or {}]
    return next((str(part["event"]) for part in parts if part.get("event")), "purchase")


def live_values(live: LiveCheck | None) -> dict[str, Any]:
    """What the live check shows: counts, shares, the sample ratio so far and how fresh it is."""
    if live is None:
        return {"live": None}
    # Imported here, not with the module: the live check is the one page that computes statistics,
    # and scipy would add most of a second to every cold console page (issue 33).
    from abacus.stats.srm import THRESHOLD, sample_ratio_mismatch

    exposures = [row.exposures for row in live.variants]
    total = sum(exposures)
    shares = {row.key: f"{row.exposures / total:.1%}" if total else "–" for row in live.variants}
    check = sample_ratio_mismatch(exposures, [row.weight for row in live.variants])
    if total == 0:
        srm = "No exposure yet: is the flag called, and are users in the rollout and the targeting?"
    elif live.shares_moved:
        srm = (
            "A bandit whose shares have moved since its launch: the exposures so far fit no one set of weights. Its "
            "results check the split against each phase's shares."
        )
    elif check["mismatch"]:
        srm = (
            f"Early warning: the exposures so far do not fit the weights (p = {check['p_value']:.2g} < {THRESHOLD}). "
            "Check that every variant reports its exposure the same way."
        )
    else:
        srm = f"The exposures so far fit the weights (sample ratio p = {check['p_value']:.2g})."
    read = live.read_at.strftime("%H:%M:%S UTC")
    last = "No event yet."
    if live.last_received_at is not None:
        seconds = max(0, int((live.read_at - live.last_received_at).total_seconds()))
        when = f"{live.last_received_at:%Y-%m-%d %H:%M:%S} UTC"
        last = f"Last exposure or metric event received {seconds:,} s ago ({when})."
    return {
        "live": live,
        "shares": shares,
        "srm_sentence": srm,
        "srm_warning": check["mismatch"] and not live.shares_moved,
        "last_sentence": last,
        "freshness": f"Read at {read} from counters updated as requests arrive (a request shows within about a "
        "second); refreshed every 5 seconds. The nightly results count from the events themselves.",
    }


def live_fragment(live: LiveCheck | None) -> str:
    return _templates.get_template("live.html").render(**live_values(live))


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
