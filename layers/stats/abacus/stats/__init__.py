"""abacus.stats: experiment statistics on sufficient statistics (pure code, scipy, no AWS).

`analysis.analyse(kind, variants, settings)` analyses one metric; `plan` problems go to
abacus.core.planning. `python -m abacus.stats` reads JSON problems on stdin and writes the answers
on stdout. `bandits` holds a bandit's statistics: each variant's mean stratified by phase, the
next weights by Thompson sampling within the safety bounds, regret.

May import: core (numbers, planning, mixture, documents), numpy and scipy; no other package of Abacus.
"""
