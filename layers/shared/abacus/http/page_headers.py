"""The headers every HTML page Abacus serves carries (the console's pages, the report page): no
other site may frame it (clickjacking), it loads nothing from elsewhere, a browser never guesses
its type, never sends its address to another site, and never stores it (it holds a project's
results)."""

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.shared.cookies import Cookie

# Scripts: none, unless a page names its own inlined ones by their hashes (console.Script).
POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Cache-Control": "no-store",
    # Not no-referrer: with it a browser sends the console's own forms with `Origin: null`, which a
    # browser without Sec-Fetch-Site would then have refused as sent from elsewhere.
    "Referrer-Policy": "same-origin",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",  # frame-ancestors' equivalent for browsers that predate it
    "Content-Security-Policy": POLICY,
}


def html_response(
    status: int,
    body: str,
    cookies: list[Cookie] | None = None,
    script_source: str | None = None,
    location: str | None = None,
) -> Response[str]:
    """An HTML answer with the page headers; `script_source` (a CSP source list) allows the page's
    own scripts, which fetch from this origin alone; `location` makes it a redirect."""
    headers = dict(HEADERS)
    if script_source is not None:
        headers["Content-Security-Policy"] = f"{POLICY}; script-src {script_source}; connect-src 'self'"
    if location is not None:
        headers["Location"] = location
    return Response(status, content_types.TEXT_HTML, body, headers=headers, cookies=cookies)
