"""Table keys built from user input. Every key is scoped by project, and no two ids collide.

Project ids are generated hex and experiment keys are slugs: neither holds '#', so a '#' joins them
unambiguously, and a distinct_id is only ever the last part of a key, where any character is safe.
"""


def experiment_id(project_id: str, experiment_key: str) -> str:
    return f"{project_id}#{experiment_key}"


def user_id(project_id: str, distinct_id: str) -> str:
    return f"{project_id}#{distinct_id}"
