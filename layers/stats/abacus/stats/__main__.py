"""python -m abacus.stats < problems.json: one JSON problem, or an array of them, on stdin; the
answer(s) as JSON on stdout, in the same order. A malformed problem: a message naming the field
on stderr, exit status 2."""

import json
import sys

from abacus.stats.problem import ProblemError, solve


def main() -> int:
    try:
        document = json.load(sys.stdin)
    except json.JSONDecodeError as error:
        print(f"input: not valid JSON ({error})", file=sys.stderr)
        return 2
    problems = document if isinstance(document, list) else [document]
    try:
        answers = []
        for index, problem in enumerate(problems):
            try:
                answers.append(solve(problem))
            except ProblemError as error:
                prefix = f"problem {index}: " if isinstance(document, list) else ""
                raise ProblemError(prefix + str(error)) from None
    except ProblemError as error:
        print(str(error), file=sys.stderr)
        return 2
    json.dump(answers if isinstance(document, list) else answers[0], sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
