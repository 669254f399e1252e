"""The synthetic PTMC cohort: schema, Table 1, risk model, rendering, disk output, centres."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from thyronet.datasets import (
    CLINICAL_COLUMNS,
    CLINICAL_VARIABLES,
    load_cohort,
    make_ptmc_cohort,
    validate_cohort,
)
from thyronet.datasets._synthetic import TABLE1, TRUTH_COLUMNS, cohort_sizes

VIEWS = ("longitudinal", "transverse")


@pytest.fixture(scope="module")
def paper_sized():
    """The paper's 461 patients; tiny frames (the clinical table ignores the image size)."""
    return make_ptmc_cohort(461, image_size=16, random_state=11)


@pytest.fixture(scope="module")
def large():
    """Enough patients for stable AUC estimates."""
    return make_ptmc_cohort(2000, image_size=16, random_state=5)


@pytest.fixture(scope="module")
def rendered():
    """Frames large enough to measure what is drawn in them."""
    return make_ptmc_cohort(240, image_size=64, random_state=1, return_masks=True)


# --- schema and determinism -------------------------------------------------------------------


def test_schema_columns_and_validation(paper_sized):
    frame = paper_sized
    expected = [
        "patient_id",
        *VIEWS,
        "longitudinal_roi",
        "transverse_roi",
        *CLINICAL_COLUMNS,
        "clnm",
        "cohort",
        "center",
        "oracle_risk",
    ]
    assert list(frame.columns[: len(expected)]) == expected
    truth = [c for group in TRUTH_COLUMNS.values() for c in group]
    assert list(frame.columns[len(expected) :]) == truth
    assert all(c.startswith("truth_") for c in truth)
    assert frame.attrs["truth_columns"] == {k: list(v) for k, v in TRUTH_COLUMNS.items()}
    checked = validate_cohort(frame)
    assert checked.shape == frame.shape
    assert frame["patient_id"].is_unique
    assert frame["oracle_risk"].between(0, 1).all()
    assert set(frame["clnm"]) == {0, 1}


def test_cohort_sizes_and_centres(paper_sized):
    assert cohort_sizes(461) == {"train": 265, "validation": 114, "test": 82}
    counts = paper_sized["cohort"].value_counts().to_dict()
    assert counts == {"train": 265, "validation": 114, "test": 82}
    centre = paper_sized.groupby("cohort")["center"].unique().map(list).to_dict()
    assert centre == {"test": ["center_B"], "train": ["center_A"], "validation": ["center_A"]}
    assert sum(cohort_sizes(7).values()) == 7


def test_deterministic_for_a_seed():
    a = make_ptmc_cohort(14, image_size=32, random_state=3)
    b = make_ptmc_cohort(14, image_size=32, random_state=3, batch_size=4)
    c = make_ptmc_cohort(14, image_size=32, random_state=4)
    table = [col for col in a.columns if col not in VIEWS]
    pd.testing.assert_frame_equal(a[table], b[table])
    for view in VIEWS:
        for x, y in zip(a[view], b[view], strict=True):
            np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a["longitudinal"].iloc[0], c["longitudinal"].iloc[0])
    assert not a["age"].equals(c["age"])


def test_generator_seeds_are_accepted():
    a = make_ptmc_cohort(5, image_size=16, random_state=np.random.default_rng(2))
    b = make_ptmc_cohort(5, image_size=16, random_state=np.random.default_rng(2))
    pd.testing.assert_frame_equal(a.drop(columns=list(VIEWS)), b.drop(columns=list(VIEWS)))


def test_clinical_table_does_not_depend_on_image_size():
    small = make_ptmc_cohort(30, image_size=16, random_state=9)
    big = make_ptmc_cohort(30, image_size=48, random_state=9)
    cols = [*CLINICAL_COLUMNS, "clnm", "oracle_risk", *TRUTH_COLUMNS["shared"]]
    pd.testing.assert_frame_equal(small[cols], big[cols])


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"n_patients": 0}, ValueError, "n_patients"),
        ({"n_patients": 2.5}, TypeError, "n_patients"),
        ({"image_size": 8}, ValueError, "image_size"),
        ({"random_state": "seed"}, TypeError, "random_state"),
        ({"random_state": -1}, ValueError, "random_state"),
        ({"batch_size": 0}, ValueError, "batch_size"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = {"n_patients": 4, "image_size": 16, **kwargs}
    with pytest.raises(error, match=match):
        make_ptmc_cohort(**args)


# --- Table 1 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("cohort", ["train", "validation", "test"])
def test_matches_table1(paper_sized, cohort):
    rows = paper_sized[paper_sized["cohort"] == cohort]
    target = TABLE1[cohort]
    for var in CLINICAL_VARIABLES:
        if var.kind == "numeric":
            median = target[var.name][1]
            assert abs(rows[var.name].median() - median) <= 0.1 * median, var.name
        else:
            counts = target[var.name]
            shares = rows[var.name].value_counts(normalize=True)
            for category, count in counts.items():
                expected = count / target["n"]
                assert abs(shares.get(category, 0.0) - expected) <= 0.05, (var.name, category)


def test_size_is_a_microcarcinoma(large):
    assert large["truth_shared_size_mm"].max() <= 10.0
    assert large["size"].max() <= 10.0
    diameters = large[["truth_long_length_mm", "truth_trans_width_mm", "truth_shared_depth_mm"]]
    np.testing.assert_allclose(diameters.max(axis=1), large["truth_shared_size_mm"])
    np.testing.assert_allclose(
        large["truth_shared_depth_mm"] / large["truth_trans_width_mm"],
        large["truth_shared_aspect_ratio"],
    )


def test_readings_are_noisy_readings_of_the_truth(large):
    # a reading agrees with its truth far more often than chance, but not always
    micro = large["calcification"].isin(["micro", "mixed"])
    truth_micro = large["truth_shared_micro_foci"] > 0
    agreement = (micro == truth_micro).mean()
    assert 0.8 < agreement < 1.0
    contact = large["capsular_contact"] == "present"
    assert 0.8 < (contact == (large["truth_shared_capsular_contact"] == 1)).mean() < 1.0
    irregular = large["truth_long_spiculation"] + large["truth_trans_lobulation"]
    assert roc_auc_score(large["shape"] == "irregular", irregular) > 0.65
    assert np.corrcoef(large["size"], large["truth_shared_size_mm"])[0, 1] > 0.95


# --- the risk model ----------------------------------------------------------------------------


def test_prevalence(large, paper_sized):
    assert 0.25 <= large["clnm"].mean() <= 0.40
    assert 0.25 <= paper_sized["clnm"].mean() <= 0.40
    # the label is a draw of the oracle risk
    n = len(large)
    se = np.sqrt(large["oracle_risk"].mean() * (1 - large["oracle_risk"].mean()) / n)
    assert abs(large["clnm"].mean() - large["oracle_risk"].mean()) < 4 * se


def test_oracle_auc(large):
    auc = roc_auc_score(large["clnm"], large["oracle_risk"])
    assert 0.85 <= auc <= 0.92


def test_risk_directions_follow_the_paper(large):
    logit = np.log(large["oracle_risk"] / (1 - large["oracle_risk"]))
    truth = [c for group in TRUTH_COLUMNS.values() for c in group]
    X = pd.concat([large[["age"]], (large["sex"] == "male").rename("male"), large[truth]], axis=1)
    coef = dict(zip(X.columns, LinearRegression().fit(X, logit).coef_, strict=True))
    assert coef["age"] < 0  # younger: higher risk
    assert coef["male"] > 0
    assert coef["truth_shared_size_mm"] > 0
    assert coef["truth_shared_aspect_ratio"] > 0
    for view in ("longitudinal", "transverse"):
        assert any(coef[c] > 0.5 for c in TRUTH_COLUMNS[view])


def _cv_auc(frame, columns):
    clinical = pd.get_dummies(frame[list(CLINICAL_COLUMNS)], drop_first=True).astype(float)
    X = pd.concat([clinical, frame[list(columns)]], axis=1).to_numpy(float)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    proba = cross_val_predict(
        model,
        X,
        frame["clnm"],
        cv=StratifiedKFold(5, shuffle=True, random_state=0),
        method="predict_proba",
    )[:, 1]
    return roc_auc_score(frame["clnm"], proba)


def test_both_views_beat_one_view(large):
    shared = list(TRUTH_COLUMNS["shared"])
    longitudinal = _cv_auc(large, shared + list(TRUTH_COLUMNS["longitudinal"]))
    transverse = _cv_auc(large, shared + list(TRUTH_COLUMNS["transverse"]))
    both = _cv_auc(
        large, shared + list(TRUTH_COLUMNS["longitudinal"]) + list(TRUTH_COLUMNS["transverse"])
    )
    assert both - max(longitudinal, transverse) >= 0.05
    # and each view adds to the clinical table and the shared traits
    assert min(longitudinal, transverse) - _cv_auc(large, shared) >= 0.03


# --- rendering ---------------------------------------------------------------------------------


def test_images_and_rois(rendered):
    for view in VIEWS:
        for image, box, mask in zip(
            rendered[view], rendered[f"{view}_roi"], rendered[f"{view}_mask"], strict=True
        ):
            assert image.shape == (64, 64) and image.dtype == np.float32
            assert 0.0 <= image.min() and image.max() <= 1.0
            x0, y0, x1, y1 = box
            assert all(isinstance(v, int) for v in box)
            assert 0 <= x0 < x1 <= 64 and 0 <= y0 < y1 <= 64
            inside = np.zeros_like(mask)
            inside[y0:y1, x0:x1] = True
            assert mask.any() and not (mask & ~inside).any()  # nodule inside the box
            # the box is tight: the nodule touches each of its edges
            assert mask[y0].any() and mask[y1 - 1].any()
            assert mask[:, x0].any() and mask[:, x1 - 1].any()
            # a full frame, larger than the ROI
            assert (x1 - x0) * (y1 - y0) < 0.6 * image.size


def test_hypoechoic_nodule_is_darker(rendered):
    hypo = (rendered["truth_shared_echo"] < 0.6).to_numpy()
    for view in VIEWS:
        nodule, around = [], []
        for image, mask, (x0, y0, x1, y1) in zip(
            rendered[view], rendered[f"{view}_mask"], rendered[f"{view}_roi"], strict=True
        ):
            dx, dy = (x1 - x0) // 2, (y1 - y0) // 2
            ring = np.zeros_like(mask)
            ring[max(0, y0 - dy) : y1 + dy, max(0, x0 - dx) : x1 + dx] = True
            nodule.append(np.median(image[mask]))
            around.append(np.median(image[ring & ~mask]))
        nodule, around = np.array(nodule), np.array(around)
        assert (nodule[hypo] < around[hypo]).mean() > 0.9
        # darker nodules for darker truth
        assert np.corrcoef(nodule, rendered["truth_shared_echo"])[0, 1] > 0.6


def _fill(frame, view, length_col):
    fov = np.maximum(1.6 * frame["truth_shared_size_mm"], 6.0)
    ppm = 64 / fov
    area = np.array([m.sum() for m in frame[f"{view}_mask"]])
    ellipse = np.pi * frame[length_col] / 2 * frame["truth_shared_depth_mm"] / 2 * ppm**2
    return area / ellipse


def _box_fill(frame, view):
    area = np.array([m.sum() for m in frame[f"{view}_mask"]])
    box = np.array([(x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in frame[f"{view}_roi"]])
    return area / box


def test_view_specific_traits_are_drawn_in_their_section_only(rendered):
    r = rendered

    def corr(a, b):
        return np.corrcoef(a, b)[0, 1]

    # spicules and lobes are outline shapes of zero net area: the nodule's area (its
    # dark-pixel count) does not give them away ...
    long_fill = _fill(r, "longitudinal", "truth_long_length_mm")
    trans_fill = _fill(r, "transverse", "truth_trans_width_mm")
    assert abs(corr(long_fill, r["truth_long_spiculation"])) < 0.35
    assert abs(corr(trans_fill, r["truth_trans_lobulation"])) < 0.35
    # ... but the outline does, in its own section only
    long_box, trans_box = _box_fill(r, "longitudinal"), _box_fill(r, "transverse")
    assert corr(long_box, r["truth_long_spiculation"]) < -0.7
    assert abs(corr(trans_box, r["truth_long_spiculation"])) < 0.2
    assert corr(trans_box, r["truth_trans_lobulation"]) < -0.25
    assert abs(corr(long_box, r["truth_trans_lobulation"])) < 0.2

    # medial capsule contact lies inside the transverse ROI: a nodule in contact is
    # flattened against the capsule, whose bright line runs along the ROI's medial edge
    contact = r["truth_trans_medial_contact"].to_numpy()
    assert ((r["truth_trans_medial_gap_mm"] > 0) == (contact == 0)).all()

    def edge(view):
        return np.array(
            [
                im[y0:y1, x0].mean()
                for im, (x0, y0, x1, y1) in zip(r[view], r[f"{view}_roi"], strict=True)
            ]
        )

    assert corr(edge("transverse"), contact) > 0.3
    assert abs(corr(edge("longitudinal"), contact)) < 0.2

    # the off-plane microcalcification cluster adds bright foci to the longitudinal view only
    # (bright pixels in the nodule regressed on the central foci and the cluster foci)
    no_coarse = (r["truth_shared_coarse"] == 0).to_numpy()
    X = np.column_stack(
        [
            np.ones(no_coarse.sum()),
            r["truth_shared_micro_foci"][no_coarse],
            r["truth_long_calc_cluster"][no_coarse],
        ]
    )
    slopes = {}
    for view in VIEWS:
        bright = np.array(
            [(im[m] > 0.85).sum() for im, m in zip(r[view], r[f"{view}_mask"], strict=True)]
        )[no_coarse]
        slopes[view] = np.linalg.lstsq(X, bright, rcond=None)[0]
    assert slopes["longitudinal"][1] > 0.7 and slopes["transverse"][1] > 0.7  # central: both
    assert slopes["longitudinal"][2] > 0.7  # cluster: longitudinal only
    assert abs(slopes["transverse"][2]) < 0.4


def _lag1(image):
    r = image - image.mean()
    return float((r[:, 1:] * r[:, :-1]).mean() / (r * r).mean())


def test_second_centre_looks_different(rendered):
    b = (rendered["center"] == "center_B").to_numpy()
    assert b.sum() >= 30 and (~b).sum() >= 30
    for view in VIEWS:
        grain = np.array([_lag1(im) for im in rendered[view]])
        level = np.array([np.median(im) for im in rendered[view]])
        assert grain[b].mean() - grain[~b].mean() > 0.08  # coarser speckle grain
        assert level[b].mean() - level[~b].mean() > 0.03  # brighter gain


# --- writing to disk ---------------------------------------------------------------------------


def test_out_dir_writes_pngs_and_a_loadable_manifest(tmp_path):
    memory = make_ptmc_cohort(10, image_size=32, random_state=4)
    disk = make_ptmc_cohort(10, image_size=32, random_state=4, out_dir=tmp_path, return_masks=True)
    manifest = tmp_path / "manifest.csv"
    assert manifest.is_file()
    assert len(list((tmp_path / "images").glob("*.png"))) == 40  # 2 views + 2 masks each
    raw = pd.read_csv(manifest)
    assert not raw["longitudinal"].str.startswith("/").any()  # relative: the folder can move
    loaded = load_cohort(manifest)
    assert len(loaded) == 10
    assert list(loaded["longitudinal_roi"]) == list(memory["longitudinal_roi"])
    pd.testing.assert_series_equal(loaded["oracle_risk"], memory["oracle_risk"], check_exact=False)
    for view in VIEWS:
        for path, array in zip(disk[view], memory[view], strict=True):
            png = np.asarray(Image.open(path), dtype=np.float32) / 255
            assert np.abs(png - array).max() <= 0.5 / 255 + 1e-6
        mask = np.asarray(Image.open(disk[f"{view}_mask"].iloc[0])) > 0
        x0, y0, x1, y1 = disk[f"{view}_roi"].iloc[0]
        assert mask.any() and mask[y0:y1, x0:x1].sum() == mask.sum()

    with pytest.raises(FileExistsError, match=r"manifest\.csv"):
        make_ptmc_cohort(10, image_size=32, random_state=4, out_dir=tmp_path)
    again = make_ptmc_cohort(10, image_size=32, random_state=5, out_dir=tmp_path, overwrite=True)
    assert len(load_cohort(manifest)) == len(again)
