"""scikit-learn's estimator checks on every public estimator.

Each estimator appears once with tiny, fast settings. The estimators on numeric
tables run scikit-learn's whole suite. The image estimators and ClinicalEncoder run
its API checks; the seven of those that feed generic 2-D arrays are declared expected
failures here and run on images and cohorts in ``tests/test_common_images.py``.
"""

from __future__ import annotations

from sklearn.utils.estimator_checks import parametrize_with_checks

from thyronet import (
    ClassifierSelector,
    ClinicalEncoder,
    DeepFeatureExtractor,
    DualChannelFuser,
    LassoSelector,
    PValueSelector,
    SkorchCNN,
)

_DATA_CHECKS = (
    "check_fit_score_takes_y",
    "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters",
    "check_estimators_fit_returns_self",
    "check_readonly_memmap_input",
    "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit",
)
"""The API checks that feed generic 2-D numeric arrays. The image estimators take
``(n, C, H, W)`` images and ClinicalEncoder a cohort table with the 13 named clinical
columns, so these checks cannot reach them; ``tests/test_common_images.py`` runs the same
checks (fit returns self, parameters not overwritten, no public attribute set in fit,
read-only memmap input) on 16-px images and a synthetic cohort instead."""

_REASON = "generic 2-D numeric input; the same check on images/cohorts: tests/test_common_images.py"

TABLE_ESTIMATORS = [PValueSelector(), LassoSelector(alphas=20), ClassifierSelector(cv=3)]
"""Estimators on numeric tables: every scikit-learn check (the legacy suite too)."""

INPUT_AWARE_ESTIMATORS = [
    DualChannelFuser(image_size=8),
    ClinicalEncoder(),
    SkorchCNN(backbone="test_resnet", max_epochs=1, batch_size=8, random_state=0, verbose=0),
    DeepFeatureExtractor(
        SkorchCNN(backbone="test_resnet", max_epochs=1, batch_size=8, random_state=0, verbose=0),
        batch_size=8,
    ),
]
"""Estimators on images or cohort tables: scikit-learn's API checks (``legacy=False``);
the checks on data run in ``tests/test_common_images.py`` with data they accept."""

ESTIMATORS = TABLE_ESTIMATORS + INPUT_AWARE_ESTIMATORS


@parametrize_with_checks(TABLE_ESTIMATORS)
def test_sklearn_compatible_table_estimator(estimator, check):
    check(estimator)


@parametrize_with_checks(
    INPUT_AWARE_ESTIMATORS,
    legacy=False,
    expected_failed_checks=lambda est: dict.fromkeys(_DATA_CHECKS, _REASON),
)
def test_sklearn_api_of_image_and_cohort_estimators(estimator, check):
    check(estimator)


def test_every_public_estimator_is_checked():
    import thyronet

    public = {name for name in thyronet.__all__ if isinstance(getattr(thyronet, name), type)}
    checked = {type(e).__name__ for e in ESTIMATORS}
    assert public <= checked, f"public estimators without checks: {sorted(public - checked)}"
