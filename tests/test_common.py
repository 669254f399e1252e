"""scikit-learn's estimator checks on every public estimator.

Each estimator appears once with tiny, fast settings. Checks that cannot apply
are declared in ``EXPECTED_FAILED_CHECKS`` with the reason, as imbalanced-learn
does; everything else must pass.
"""

from __future__ import annotations

import pytest
from sklearn.utils.estimator_checks import parametrize_with_checks

from thyronet import DualChannelFuser

_IMAGES_NOT_TABLES = (
    "DualChannelFuser takes images (a cohort table of image paths/arrays, or a "
    "(n, views, H, W) array), not the 2-D numeric tables these checks generate; "
    "image input, dtype, pickling and errors are tested in tests/test_fusion.py"
)

ESTIMATORS = [
    DualChannelFuser(image_size=8),
]

EXPECTED_FAILED_CHECKS: dict[str, dict[str, str]] = {
    "DualChannelFuser": {
        "check_complex_data": _IMAGES_NOT_TABLES,
        "check_dict_unchanged": _IMAGES_NOT_TABLES,
        "check_dont_overwrite_parameters": _IMAGES_NOT_TABLES,
        "check_dtype_object": _IMAGES_NOT_TABLES,
        "check_estimator_sparse_array": _IMAGES_NOT_TABLES,
        "check_estimator_sparse_matrix": _IMAGES_NOT_TABLES,
        "check_estimator_sparse_tag": _IMAGES_NOT_TABLES,
        "check_estimators_dtypes": _IMAGES_NOT_TABLES,
        "check_estimators_empty_data_messages": _IMAGES_NOT_TABLES,
        "check_estimators_fit_returns_self": _IMAGES_NOT_TABLES,
        "check_estimators_nan_inf": _IMAGES_NOT_TABLES,
        "check_estimators_overwrite_params": _IMAGES_NOT_TABLES,
        "check_estimators_pickle": _IMAGES_NOT_TABLES,
        "check_f_contiguous_array_estimator": _IMAGES_NOT_TABLES,
        "check_fit2d_1feature": _IMAGES_NOT_TABLES,
        "check_fit2d_1sample": _IMAGES_NOT_TABLES,
        "check_fit2d_predict1d": _IMAGES_NOT_TABLES,
        "check_fit_check_is_fitted": _IMAGES_NOT_TABLES,
        "check_fit_idempotent": _IMAGES_NOT_TABLES,
        "check_fit_score_takes_y": _IMAGES_NOT_TABLES,
        "check_methods_sample_order_invariance": _IMAGES_NOT_TABLES,
        "check_methods_subset_invariance": _IMAGES_NOT_TABLES,
        "check_n_features_in": _IMAGES_NOT_TABLES,
        "check_n_features_in_after_fitting": _IMAGES_NOT_TABLES,
        "check_pipeline_consistency": _IMAGES_NOT_TABLES,
        "check_positive_only_tag_during_fit": _IMAGES_NOT_TABLES,
        "check_readonly_memmap_input": _IMAGES_NOT_TABLES,
        "check_transformer_data_not_an_array": _IMAGES_NOT_TABLES,
        "check_transformer_general": _IMAGES_NOT_TABLES,
        "check_transformer_preserve_dtypes": _IMAGES_NOT_TABLES,
    },
}


def _expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {})


@parametrize_with_checks(ESTIMATORS, expected_failed_checks=_expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("estimator", ESTIMATORS, ids=lambda e: type(e).__name__)
def test_every_public_estimator_is_checked(estimator):
    import thyronet

    public = {name for name in thyronet.__all__ if isinstance(getattr(thyronet, name), type)}
    checked = {type(e).__name__ for e in ESTIMATORS}
    assert public <= checked, f"public estimators without checks: {sorted(public - checked)}"
