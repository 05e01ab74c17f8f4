"""abacus.stats: experiment statistics on sufficient statistics (pure code, scipy, no AWS)."""

from abacus.stats.conversion import VariantCounts, analyse_conversion

__all__ = ["VariantCounts", "analyse_conversion"]
