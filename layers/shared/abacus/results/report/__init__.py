"""The results as a person reads them, pure functions of the snapshots (abacus.core.documents):
sentences.py puts them in words (the rows, verdicts and notes both forms share), text_report.py
lays them out as text for a terminal, charts.py draws the SVG charts, and html_page.py builds the
HTML section the console shows and the self-contained report page around it; both begin with the
decision card (abacus.results.decision_card). Callers import the submodules.

May import: core, abacus.results.decision_card (and one another); the standard library. Pure: no
storage, no AWS.
"""
