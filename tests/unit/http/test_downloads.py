"""Which of JSON or CSV an Accept header asks for (http/downloads.py): CSV only when text/csv
weighs more than application/json, the most specific range deciding each one's weight (RFC 9110
section 12.5.1); JSON otherwise, never a 406. And the CSV answer's file name, kept to safe characters."""

import pytest

from abacus.http.downloads import csv_response, prefers_csv


@pytest.mark.parametrize(
    "accept",
    [
        "text/csv",
        "text/csv; charset=utf-8",
        "TEXT/CSV",
        "text/*",
        "text/csv, */*;q=0.5",
        "application/json;q=0.1, text/csv",
        "text/csv;q=0.9, application/json;q=0.8",
        "application/json;q=0, */*",  # JSON refused outright
    ],
)
def test_csv_when_it_weighs_more_than_json(accept):
    assert prefers_csv(accept)


@pytest.mark.parametrize(
    "accept",
    [
        None,
        "",
        "*/*",
        "application/json",
        "application/xml",  # neither: JSON, not 406
        "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",  # a browser's: a tie
        "text/csv, application/json",  # a tie: the default
        "text/csv;q=0.5, application/json",
        "text/csv;q=0, */*",  # the most specific range decides: CSV refused
        "text/csv;q=oops",  # a weight that is no number: the range ignored
        "text/csv;q=nan, */*;q=0.1",
        "text/csvx",
    ],
)
def test_json_otherwise(accept):
    assert not prefers_csv(accept)


def test_the_file_name_keeps_to_safe_characters():
    answer = csv_response("a\r\n", 'new-checkout-results-2026-11-20.csv"\r\nSet-Cookie: x')
    disposition = answer.headers["Content-Disposition"]
    assert disposition == 'attachment; filename="new-checkout-results-2026-11-20.csv___Set-Cookie__x"'
    assert answer.status_code == 200 and answer.content_type == "text/csv; charset=utf-8"
