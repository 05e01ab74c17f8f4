"""Answers in CSV beside JSON: which of the two a request's Accept header asks for (weighed as
RFC 9110 section 12.5.1 weighs it), and the CSV answer, a download named for the file it saves as."""

import math
import re

from aws_lambda_powertools.event_handler import Response

CSV = "text/csv; charset=utf-8"
# Characters a file name keeps in Content-Disposition: anything else (none in a slug or a date)
# could end the quoted name or the header.
_UNSAFE_IN_FILENAME = re.compile(r"[^A-Za-z0-9._-]")


def prefers_csv(accept: str | None) -> bool:
    """Whether `accept` weighs text/csv above application/json. JSON is the default: no header,
    `*/*`, a tie (a browser's Accept) and types that are neither (`application/xml`) get JSON,
    never a 406, as PostHog's and GitHub's APIs answer whatever is asked."""
    return _quality(accept, "text/csv") > _quality(accept, "application/json")


def _quality(accept: str | None, offered: str) -> float:
    """The q the most specific media range matching `offered` gives it (0 when none matches):
    `text/csv` before `text/*` before `*/*`."""
    kind = offered.split("/")[0]
    ranks = {offered: 2, f"{kind}/*": 1, "*/*": 0}
    best: tuple[int, float] = (-1, 0.0)
    for element in (accept or "").split(","):
        media_range, *parameters = (part.strip() for part in element.split(";"))
        rank = ranks.get(media_range.lower())
        if rank is None:
            continue
        quality = _q(parameters)
        if quality is not None and (rank, quality) > best:
            best = (rank, quality)
    return best[1]


def _q(parameters: list[str]) -> float | None:
    """A media range's weight, 1 by default; None for one that is no number (the range is ignored)."""
    for parameter in parameters:
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "q":
            try:
                weight = float(value.strip())
            except ValueError:
                return None
            return min(max(weight, 0.0), 1.0) if math.isfinite(weight) else None
    return 1.0


def csv_response(body: str, filename: str, headers: dict[str, str] | None = None) -> Response[str]:
    """A 200 of CSV text (UTF-8) that a browser saves as `filename`."""
    safe_name = _UNSAFE_IN_FILENAME.sub("_", filename)
    disposition = {"Content-Disposition": f'attachment; filename="{safe_name}"'}
    return Response(200, CSV, body, headers={**(headers or {}), **disposition})
