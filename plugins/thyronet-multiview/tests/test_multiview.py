"""thyronet-multiview: its fusion strategies and the cohort schema for extra views."""

import json
import subprocess
import sys
from importlib import metadata

import numpy as np
import pandas as pd
import pytest
from thyronet import DualChannelFuser
from thyronet.datasets import CohortError
from thyronet.plugins import get_registry
from thyronet.testing import check_fusion, check_plugin

import thyronet_multiview
from thyronet_multiview import (
    add_view_columns,
    find_view_columns,
    multiview_fuser,
    validate_multiview_cohort,
)

NAMES = ["nview_stack", "nview_stack3", "view_max", "view_pool"]


def _views(n=4, v=5, size=16, seed=0):
    return np.random.default_rng(seed).random((n, v, size, size), dtype=np.float32)


def _cohort(n=4, v=5, size=16, seed=0, clinical=False):
    views = _views(n, v, size, seed)
    frame = pd.DataFrame({f"view_{k + 1}": list(views[:, k]) for k in range(v)})
    frame["view_1_roi"] = [(2, 2, 14, 14)] * n
    return frame, views


# -- discovery -------------------------------------------------------------------------
def test_strategies_come_from_the_installed_entry_point():
    fusions = get_registry("fusions")
    for name in NAMES:
        entry = fusions.entry(name)
        assert entry.plugin == "multiview"
        assert entry.version == metadata.version("thyronet-multiview") == \
            thyronet_multiview.__version__
    assert "stack" in fusions  # the built-ins are still there


def test_thyronet_plugins_cli_lists_the_plugin():
    code = "from thyronet.cli import main; raise SystemExit(main(['plugins', '--json']))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["multiview"]["version"] == metadata.version("thyronet-multiview")
    assert rows["multiview"]["registers"] == {"fusions": NAMES}


# -- contracts -------------------------------------------------------------------------
def test_every_entry_passes_the_contract_checks():
    assert check_plugin("multiview") == [("fusions", name) for name in NAMES]


@pytest.mark.parametrize("name", NAMES)
def test_contract_with_larger_images(name):
    check_fusion(name, image_size=20, n_samples=2)


# -- what each strategy computes ---------------------------------------------------------
def test_nview_stack_keeps_every_view_in_order():
    views = _views()
    fused = DualChannelFuser(views=[f"view_{k}" for k in range(1, 6)], strategy="nview_stack",
                             image_size=16, normalize="none").fit_transform(views)
    np.testing.assert_array_equal(fused, views)


def test_nview_stack3_averages_ordered_groups():
    views = _views(v=5)
    fused = get_registry("fusions")["nview_stack3"].fuse(views)
    expected = np.stack([views[:, 0:2].mean(1), views[:, 2:4].mean(1), views[:, 4]], axis=1)
    np.testing.assert_allclose(fused, expected, rtol=1e-6)
    reversed_views = views[:, ::-1].copy()
    assert not np.allclose(get_registry("fusions")["nview_stack3"].fuse(reversed_views), fused)


@pytest.mark.parametrize("name", ["view_max", "view_pool"])
def test_pooling_ignores_the_order_of_the_views(name):
    views = _views(v=4)
    fuse = get_registry("fusions")[name].fuse
    permuted = views[:, [2, 0, 3, 1]].copy()
    np.testing.assert_allclose(fuse(permuted), fuse(views), rtol=1e-6)


def test_view_pool_is_mean_max_std():
    views = _views(v=3)
    fused = get_registry("fusions")["view_pool"].fuse(views)
    np.testing.assert_allclose(fused[:, 0], views.mean(axis=1), rtol=1e-5)
    np.testing.assert_array_equal(fused[:, 1], views.max(axis=1))
    np.testing.assert_allclose(fused[:, 2], views.std(axis=1), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize(("n_views", "channels"), [(2, 3), (3, 3), (7, 3)])
def test_view_pool_gives_fixed_channels_for_any_number_of_views(n_views, channels):
    views = _views(v=n_views)
    fuser = DualChannelFuser(views=[f"view_{k}" for k in range(1, n_views + 1)],
                             strategy="view_pool", image_size=16)
    assert fuser.fit_transform(views).shape == (4, channels, 16, 16)
    assert fuser.n_channels_ == channels


def test_view_limits_are_enforced_by_the_fuser():
    with pytest.raises(ValueError, match="'nview_stack' takes 3 to 16 views; got 2"):
        DualChannelFuser(strategy="nview_stack").fit(_views(v=2))
    many = [f"view_{k}" for k in range(1, 18)]
    with pytest.raises(ValueError, match="'nview_stack' takes 3 to 16 views; got 17"):
        DualChannelFuser(views=many, strategy="nview_stack").fit(_views(n=1, v=17))
    with pytest.raises(ValueError, match="'view_max' takes 2 to any views; got 1"):
        DualChannelFuser(views=["view_1"], strategy="view_max").fit(_views(v=1))


# -- the cohort schema for extra views -----------------------------------------------------
def test_find_view_columns_orders_standard_numbered_named_extra():
    frame = pd.DataFrame(columns=["view_oblique", "view_10", "transverse", "view_2", "age",
                                  "view_1", "longitudinal", "view_2_roi", "view_1_mask",
                                  "cine"] + [f"view_{k}" for k in range(3, 10)])
    found = find_view_columns(frame, extra=["cine"])
    assert found == ("longitudinal", "transverse", *[f"view_{k}" for k in range(1, 11)],
                     "view_oblique", "cine")
    assert find_view_columns(frame, standard=())[0] == "view_1"


@pytest.mark.parametrize(("columns", "kwargs", "message"), [
    (["view_1", "view_3"], {}, "missing view_2"),
    (["view_1", "view_01"], {}, "both have number 1"),
    (["age", "view_"], {}, "no view column"),
    (["view_1"], {"extra": ["cine"]}, r"extra view column\(s\) \['cine'\]"),
])
def test_find_view_columns_errors(columns, kwargs, message):
    with pytest.raises(CohortError, match=message):
        find_view_columns(pd.DataFrame(columns=columns), **kwargs)


def test_validate_multiview_cohort_checks_every_view_and_roi():
    frame, _ = _cohort()
    checked = validate_multiview_cohort(frame, clinical=False, label=False)
    assert checked.attrs["views"] == tuple(f"view_{k}" for k in range(1, 6))
    assert checked is not frame

    holes = frame.copy()
    holes.loc[2, "view_4"] = None
    with pytest.raises(CohortError, match=r"view column 'view_4' is missing .* row\(s\) 2"):
        validate_multiview_cohort(holes, clinical=False, label=False)
    assert frame["view_4"].notna().all()  # the input is never modified

    bad_roi = frame.copy()
    bad_roi.loc[1, "view_1_roi"] = "5 5 1 1"
    with pytest.raises(CohortError, match="'view_1_roi', row 1"):
        validate_multiview_cohort(bad_roi, clinical=False, label=False)
    with pytest.raises(CohortError, match="at least 6 view columns; found 5"):
        validate_multiview_cohort(frame, min_views=6, clinical=False, label=False)
    with pytest.raises(CohortError, match="listed more than once"):
        validate_multiview_cohort(frame, views=["view_1", "view_1"], clinical=False,
                                  label=False)
    with pytest.raises(CohortError, match="missing required column"):
        validate_multiview_cohort(frame)  # the 13 clinical indicators are required


def test_add_view_columns_numbers_and_names_new_views():
    frame, views = _cohort(v=2)
    more = add_view_columns(frame, [list(views[:, 0]), list(views[:, 1])],
                            rois=[[(0, 0, 8, 8)] * 4, None])
    assert [c for c in more.columns if c.startswith("view_")] == [
        "view_1", "view_2", "view_1_roi", "view_3", "view_3_roi", "view_4"]
    assert list(frame.columns) == ["view_1", "view_2", "view_1_roi"]
    named = add_view_columns(frame, {"oblique": list(views[:, 0])})
    assert find_view_columns(named) == ("view_1", "view_2", "view_oblique")
    with pytest.raises(CohortError, match="'view_oblique' has 3 image"):
        add_view_columns(frame, {"oblique": list(views[:3, 0])})
    with pytest.raises(CohortError, match="'view_2' already exists"):
        add_view_columns(frame, {"view_2": list(views[:, 0])})


def test_multiview_fuser_uses_every_view_and_checks_limits_early():
    frame, views = _cohort(v=5)
    fuser = multiview_fuser(frame, strategy="nview_stack", image_size=16, normalize="none",
                            roi_margin=0.0)
    fused = fuser.fit_transform(frame)
    assert fuser.views == tuple(f"view_{k}" for k in range(1, 6))
    assert fused.shape == (4, 5, 16, 16)
    np.testing.assert_array_equal(fused[:, 1:], views[:, 1:])   # no ROI: unchanged
    assert not np.allclose(fused[:, 0], views[:, 0])            # view_1 cropped to its ROI
    small, _ = _cohort(v=2)
    with pytest.raises(ValueError, match="'nview_stack' takes 3 to 16 views; the cohort has 2"):
        multiview_fuser(small, strategy="nview_stack")
    with pytest.raises(ValueError, match="unknown fusion 'nope'"):
        multiview_fuser(small, strategy="nope")


def test_fused_sections_train_a_cnn():
    from thyronet import SkorchCNN

    frame, _ = _cohort(n=8, v=4, size=32, seed=1)
    y = np.arange(8) % 2
    images = multiview_fuser(frame, strategy="view_pool", image_size=32).fit_transform(frame)
    cnn = SkorchCNN("test_resnet", max_epochs=1, batch_size=4, validation_fraction=None,
                    early_stopping=False, device="cpu", random_state=0, verbose=0)
    proba = cnn.fit(images, y).predict_proba(images)
    assert cnn.n_features_in_ == 3 and proba.shape == (8, 2)
