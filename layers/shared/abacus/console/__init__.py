"""The console's HTML pages (pages, rendered by Jinja2 from templates/), its experiment form
(experiment_form) and its sign-in sessions (sessions).

May import: core, storage, experiments, assignment, results, stats.
"""
