"""Table keys built from user input. Every key is scoped by project, and no two ids collide.

A key one project (or experiment) would make hot is spread over shards chosen by the user's
distinct_id, so that one shard holds a fixed share of the users, the same share in every table.

Project ids are generated hex and experiment keys are slugs: neither holds '#', so a '#' joins them
unambiguously, and a distinct_id is only ever the last part of a key, where any character is safe.
"""

import hashlib

# The keys a user gives (experiment, layer and variant keys), as the API checks them.
SLUG_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
VARIANT_KEY_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# The patterns in words, for the errors a client reads (errors.py).
PATTERN_WORDS = {
    SLUG_PATTERN: "a lowercase slug: letters, digits, - and _, at most 64, starting with a letter or digit",
    VARIANT_KEY_PATTERN: "letters, digits, - and _, 1 to 64 of them",
}


def shard_of(distinct_id: str, shards: int) -> int:
    """The user's shard among `shards`: the first 4 bytes of sha1(distinct_id), modulo."""
    return int.from_bytes(hashlib.sha1(distinct_id.encode(), usedforsecurity=False).digest()[:4]) % shards


def experiment_id(project_id: str, experiment_key: str, generation: int | None = None) -> str:
    """The key its assignments, results and runs are stored under. A key reused after an archived
    experiment (definitions.create, `replace_archived`) starts a new generation, stored apart
    (`project#key~2`), so that nothing of the archived one is read as the new one's."""
    suffix = f"{GENERATION_MARK}{generation}" if generation and generation > 1 else ""
    return f"{project_id}#{experiment_key}{suffix}"


# Never in an experiment key (a slug): what separates a key from its generation.
GENERATION_MARK = "~"


def assignment_partition(experiment_id: str, distinct_id: str, shards: int | None) -> str:
    """The assignments table's key of a user of an experiment: `project#key#NN` for an experiment
    created with shards, `project#key` for one created before there were any."""
    return f"{experiment_id}#{shard_of(distinct_id, shards):02d}" if shards else experiment_id


def assignment_partitions(experiment_id: str, shards: int | None) -> list[str]:
    """Every assignments key of an experiment."""
    return [f"{experiment_id}#{shard:02d}" for shard in range(shards)] if shards else [experiment_id]


def group_unit(group_type: str, group_key: str) -> str:
    """The id a group is stored under in a group experiment's tables, as a user's distinct_id is
    ('$group' and '#' keep it apart from any distinct_id an SDK makes up)."""
    return f"$group#{group_type}#{group_key}"


def user_id(project_id: str, distinct_id: str) -> str:
    return f"{project_id}#{distinct_id}"
