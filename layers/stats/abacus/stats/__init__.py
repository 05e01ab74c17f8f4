"""abacus.stats: experiment statistics on sufficient statistics (pure code, scipy, no AWS).

`analyse(kind, variants, settings)` analyses one metric; `plan` problems go to abacus.planning.
`python -m abacus.stats` reads JSON problems on stdin and writes the answers on stdout.
"""

from abacus.stats.analysis import CONVERSION, MEAN, Settings, VariantData, analyse

__all__ = ["CONVERSION", "MEAN", "Settings", "VariantData", "analyse"]
