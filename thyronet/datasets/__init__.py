"""Cohorts: the schema, manifests on disk, the synthetic PTMC cohort and DDTI."""

from thyronet.datasets._cohort import load_cohort, save_cohort
from thyronet.datasets._ddti import load_ddti
from thyronet.datasets._synthetic import make_ptmc_cohort
from thyronet.schema import (
    CLINICAL_COLUMNS,
    CLINICAL_VARIABLES,
    COHORTS,
    LABEL_COLUMN,
    VIEW_COLUMNS,
    ClinicalVariable,
    CohortError,
    roi_column,
    validate_cohort,
)

__all__ = [
    "CLINICAL_COLUMNS",
    "CLINICAL_VARIABLES",
    "COHORTS",
    "LABEL_COLUMN",
    "VIEW_COLUMNS",
    "ClinicalVariable",
    "CohortError",
    "load_cohort",
    "load_ddti",
    "make_ptmc_cohort",
    "roi_column",
    "save_cohort",
    "validate_cohort",
]
