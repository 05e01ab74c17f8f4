"""Joining two ids into one person, and moving the person's assignments together.

The rules, as PostHog's:
- `$identify` joins its `$anon_distinct_id` to its `distinct_id`; `$create_alias` and
  `$merge_dangerously` join their `alias` to their `distinct_id`; a flags request (`/flags/`,
  `/decide/`, `/assign`) carrying `$anon_distinct_id` joins it to its `distinct_id` first.
- A joined person is identified. An `$identify` (or flags request) whose anonymous id, or a
  `$create_alias` whose alias, already belongs to an identified person joins nothing: two people
  signing in one after the other on a shared device stay two. `$merge_dangerously` always joins.
- A person is keyed everywhere by their root id (storage/persons.py says which id that is).
- When two persons who were both assigned to an experiment are joined, the earlier exposure wins
  (PostHog's "first seen"): its variant and breakdown values become the person's, and the other
  variant is remembered; a person exposed to more than one variant is counted once, in their first,
  and reported (PostHog's `$multiple`). The live check takes back the exposure that stopped
  counting.
- Joins are idempotent and commutative: an identify sent twice, or after the events it joins, or
  racing another join, ends in the same person.

Cost: a join reads the loser's assignments of every launched experiment of the project (one
BatchGetItem per 100 experiments) and moves each one found (a few writes): once per sign-in.
"""

from collections import Counter
from datetime import datetime

from aws_lambda_powertools import Logger
from pynamodb.exceptions import PynamoDBException

from abacus.core.cache import TtlCache
from abacus.experiments import definitions, lifecycle
from abacus.storage import assignments, live_counts, persons
from abacus.storage.experiments import ExperimentItem
from abacus.storage.persons import AlreadyIdentified, Merge, TooManyIds

logger = Logger(child=True)
# Exposures of archived experiments count no more; drafts have none.
LAUNCHED = (lifecycle.RUNNING, lifecycle.COMPLETE)


# Each id's person's root, per environment for CacheSeconds: at ingest, most ids of a batch were
# seen in the last ones (an SDK flushes a browser's events every few seconds). A root read stale
# (the id joined another person meanwhile, in another environment) costs nothing where it counts:
# settle() re-reads, strongly consistent, every root an exposure was written under.
_roots: TtlCache[tuple[str, str], str] = TtlCache(max_entries=100_000)


def roots(project_id: str, distinct_ids: set[str]) -> dict[str, str]:
    """{distinct_id: its person's root id}, from the cache, else one eventually consistent
    BatchGetItem per 100 ids not in it."""
    found = {distinct_id: root for distinct_id in distinct_ids if (root := _roots.peek((project_id, distinct_id)))}
    unknown = distinct_ids - found.keys()
    for distinct_id, person in persons.persons(project_id, unknown).items() if unknown else ():
        _roots.put((project_id, distinct_id), person.root)
        found[distinct_id] = person.root
    return found


def join(project_id: str, first: str, second: str, now: datetime, anonymous: str | None = None) -> Merge | None:
    """Makes `first` and `second` one person (`first`'s person surviving a tie), and moves the
    loser's assignments into the survivor's; the merge made, or None when they were one already
    or the join was refused (logged): `anonymous` (one of them) belonged to an identified person
    already, or the person would have too many ids."""
    if first == second:
        return None
    try:
        merge = persons.join(project_id, first, second, now, anonymous)
    except (TooManyIds, AlreadyIdentified) as error:
        logger.warning("join refused", extra={"project": project_id, "reason": str(error)})
        return None
    if merge is not None:
        move_assignments(project_id, merge, now)
        for distinct_id in merge.loser_ids | {merge.survivor}:
            _roots.put((project_id, distinct_id), merge.survivor)
    return merge


def _launched(project_id: str) -> list[ExperimentItem]:
    return [item for item in definitions.project_experiments(project_id).values() if item.status in LAUNCHED]


def move_assignments(project_id: str, merge: Merge, now: datetime) -> None:
    """The loser's assignment of each launched experiment, moved into the survivor's."""
    launched = _launched(project_id)
    found = assignments.whole_items([(item.assignment_partition(merge.loser), merge.loser) for item in launched])
    taken_back: Counter[tuple[str, str]] = Counter()
    for experiment in launched:
        loser = found.get((experiment.assignment_partition(merge.loser), merge.loser))
        if loser is not None:
            _move(project_id, experiment, loser, merge.survivor, taken_back)
    _take_back_live_exposures({item.key: item for item in launched}, taken_back, now)


def _move(
    project_id: str,
    experiment: ExperimentItem,
    loser: assignments.AssignmentItem,
    survivor: str,
    taken_back: Counter[tuple[str, str]],
) -> None:
    """Moves one assignment into the survivor's; if the survivor joined yet another person while
    it moved (whose join may have moved the survivor's assignment before this one arrived), moves
    the survivor's on to that person's root too. Each step is idempotent."""
    target = survivor
    for _ in range(persons.MAX_HOPS):
        partition = experiment.assignment_partition(target)
        moved_before, exposed = loser.merged_into is not None, loser.exposed_at is not None
        absorbed = assignments.absorb(loser, partition, target)
        if exposed and not moved_before:  # two first exposures counted live: the later stops counting
            if absorbed.replaced is not None:
                taken_back[(experiment.key, absorbed.replaced)] += 1
            elif not absorbed.first:
                taken_back[(experiment.key, loser.variant)] += 1
        root = persons.person(project_id, target, consistent=True).root
        if root == target:
            return
        moved = assignments.whole_items([(partition, target)]).get((partition, target))
        if moved is None:
            return
        loser, target = moved, root


def _take_back_live_exposures(
    launched: dict[str, ExperimentItem], taken_back: Counter[tuple[str, str]], now: datetime
) -> None:
    """The live check's first exposures that became a second one of the same person, taken back
    (storage/live_counts.py; never failing the request, as the live check's own counting)."""
    for (key, variant), count in taken_back.items():
        experiment = launched[key]
        if experiment.started_at is None:
            continue
        tally = live_counts.Tally(-count, 0, None)
        try:
            live_counts.add(experiment.experiment_id, experiment.started_at, variant, tally, now)
        except PynamoDBException as error:
            logger.warning("live check: exposure not taken back", extra={"error": type(error).__name__})


def settle(project_id: str, written: list[tuple[ExperimentItem, str]], now: datetime) -> None:
    """After exposures were written under ids taken for their persons' roots: any of those ids
    that joined another person meanwhile (racing a join that had already moved its assignments)
    has its assignment moved on. One strongly consistent BatchGetItem per 100 ids."""
    current = persons.persons(project_id, {root for _, root in written}, consistent=True)
    stale = [(experiment, root) for experiment, root in written if current[root].root != root]
    if not stale:
        return
    found = assignments.whole_items([(experiment.assignment_partition(root), root) for experiment, root in stale])
    taken_back: Counter[tuple[str, str]] = Counter()
    for experiment, root in stale:
        loser = found.get((experiment.assignment_partition(root), root))
        if loser is not None:
            _move(project_id, experiment, loser, current[root].root, taken_back)
    _take_back_live_exposures({experiment.key: experiment for experiment, _ in stale}, taken_back, now)
