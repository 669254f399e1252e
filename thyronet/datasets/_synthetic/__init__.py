"""The synthetic PTMC cohort: paired B-mode-like views, a clinical table and a known risk.

:func:`make_ptmc_cohort` is thyronet's embedded default data set. The generative
model is documented in the function's docstring and in ``docs/synthetic-cohort.md``;
the constants (:data:`TABLE1`, :data:`RISK_COEFFICIENTS`, :data:`SCANNERS`,
:data:`TRUTH_COLUMNS`) are its parameters (:mod:`._params`), the table is drawn in
:mod:`._table`, the images are rendered in :mod:`._render`.
"""

from thyronet.datasets._synthetic._make import make_ptmc_cohort
from thyronet.datasets._synthetic._params import (
    COHORT_CENTER,
    RISK_COEFFICIENTS,
    SCANNERS,
    TABLE1,
    TRUTH_COLUMNS,
    ScannerLook,
)
from thyronet.datasets._synthetic._table import cohort_sizes

__all__ = [
    "COHORT_CENTER",
    "RISK_COEFFICIENTS",
    "SCANNERS",
    "TABLE1",
    "TRUTH_COLUMNS",
    "ScannerLook",
    "cohort_sizes",
    "make_ptmc_cohort",
]
