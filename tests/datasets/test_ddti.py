"""Tests for :func:`thyronet.datasets.load_ddti`.

Most tests build a tiny DDTI-like folder (``xml/<case>.xml`` + ``images/<case>_<k>``)
in ``tmp_path``; the tests marked ``data`` read the shared DDTI copy and skip
when it is absent (``ddti_root`` fixture in ``tests/conftest.py``).
"""

from __future__ import annotations

import json
import math
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from thyronet.datasets import load_cohort, load_ddti
from thyronet.datasets._ddti import (
    SEAM_TOLERANCE,
    DDTIError,
    DDTIReport,
    DDTIWarning,
    find_seam,
)
from thyronet.imaging import crop_roi, read_image

H, W, SEAM = 80, 128, 66  # synthetic frames: 80 x 128, right panel starts at column 66


# --------------------------------------------------------------------------- builders


def _panel(rng, height, width, level):
    field = rng.normal(0.0, 1.0, size=(height, width))
    # smooth a little along both axes so neighbouring columns correlate, like B-mode speckle
    field = (field + np.roll(field, 1, 0) + np.roll(field, 1, 1) + np.roll(field, -1, 1)) / 4
    return np.clip(level + 18 * field, 0, 255)


def dual_frame(seed=0, seam=SEAM, rgb=True):
    rng = np.random.default_rng(seed)
    gray = np.hstack([_panel(rng, H, seam, 70), _panel(rng, H, W - seam, 120)])
    return _to_image(gray, rng, rgb)


def single_frame(seed=0, rgb=True):
    rng = np.random.default_rng(seed)
    return _to_image(_panel(rng, H, W, 90), rng, rgb)


def _to_image(gray, rng, rgb):
    if not rgb:
        return gray.astype(np.uint8)
    tint = rng.integers(-6, 7, size=(1, 1, 3))
    return np.clip(gray[..., None] + tint, 0, 255).astype(np.uint8)


def box_polygon(x0, y0, x1, y1):
    """A closed outline (8 points) spanning exactly x0..x1, y0..y1."""
    xm, ym = (x0 + x1) / 2, (y0 + y1) / 2
    return [(x0, ym), (x0, y0), (xm, y0), (x1, y0), (x1, ym), (x1, y1), (xm, y1), (x0, y1)]


def svg(*polygons):
    return json.dumps(
        [
            {
                "points": [{"x": x, "y": y} for x, y in poly],
                "annotation": {},
                "regionType": "freehand",
            }
            for poly in polygons
        ]
    )


def write_case(root, case_id, marks, *, fields=None, images=None, suffix=".png"):
    """Write xml/<case>.xml and, for every (k, array) in ``images``, images/<case>_<k>."""
    fields = {
        "age": "",
        "sex": "",
        "composition": "",
        "echogenicity": "",
        "margins": "",
        "calcifications": "",
        "tirads": "",
        "reportbacaf": "",
        "reporteco": "",
        **(fields or {}),
    }
    case = ET.Element("case")
    ET.SubElement(case, "number").text = str(case_id)
    for name, value in fields.items():
        ET.SubElement(case, name).text = value
    for k, text in marks.items():
        mark = ET.SubElement(case, "mark")
        ET.SubElement(mark, "image").text = str(k)
        ET.SubElement(mark, "svg").text = text
    (root / "xml").mkdir(parents=True, exist_ok=True)
    (root / "images").mkdir(parents=True, exist_ok=True)
    ET.ElementTree(case).write(root / "xml" / f"{case_id}.xml")
    for k, array in (images or {}).items():
        Image.fromarray(array).save(root / "images" / f"{case_id}_{k}{suffix}")


LONG = box_polygon(10, 20, 50, 40)  # 40 x 20: elongated
ROUND = box_polygon(12, 15, 36, 42)  # 24 x 27: round / taller than wide


def shifted(poly, dx):
    return [(x + dx, y) for x, y in poly]


@pytest.fixture
def root(tmp_path):
    """Four cases: paired (left elongated), paired (right elongated), single-panel, no TI-RADS."""
    r = tmp_path / "ddti"
    write_case(
        r,
        7,
        {1: svg(LONG, shifted(ROUND, SEAM))},
        images={1: dual_frame(1)},
        fields={
            "age": "49",
            "sex": "F",
            "tirads": "4b",
            "margins": "ill- defined",
            "calcifications": "microcalcification",
            "composition": "Solid",
            "echogenicity": "hypoechogenicity",
            "reporteco": "  Bethesda\n VI ",
        },
    )
    write_case(
        r,
        8,
        {1: svg(ROUND, shifted(LONG, SEAM))},
        images={1: dual_frame(2)},
        fields={
            "age": "61",
            "sex": "M",
            "tirads": "3",
            "margins": "well defined",
            "calcifications": "non",
        },
    )
    write_case(
        r,
        9,
        {1: svg(LONG)},
        images={1: single_frame(3)},
        fields={"age": "30", "sex": "u", "tirads": "2"},
    )
    write_case(r, 10, {1: svg(LONG, shifted(ROUND, SEAM))}, images={1: dual_frame(4)})
    return r


# --------------------------------------------------------------------------- synthetic layout


def test_paired_frame_is_split_at_the_seam(root):
    cohort = load_ddti(root)
    assert list(cohort["case_id"]) == [7, 8, 10]
    row = cohort.set_index("case_id").loc[7]
    assert row["patient_id"] == "ddti-007" and row["image"] == "7_1.png"
    assert row["center"] == "ddti" and row["seam_x"] == SEAM
    with Image.open(root / "images" / "7_1.png") as img:
        expected = np.asarray(img.convert("L"), dtype=np.float32) / 255
    long, trans = row["longitudinal"], row["transverse"]
    assert long.dtype == np.float32 and trans.dtype == np.float32
    assert long.shape == (H, SEAM) and trans.shape == (H, W - SEAM)
    assert 0.0 <= min(long.min(), trans.min()) and max(long.max(), trans.max()) <= 1.0
    np.testing.assert_array_equal(long, expected[:, :SEAM])
    np.testing.assert_array_equal(trans, expected[:, SEAM:])
    # ROI = bounding box of the polygon, in that half's coordinates, x1/y1 exclusive
    assert row["longitudinal_roi"] == (10, 20, 51, 41)
    assert row["transverse_roi"] == (12, 15, 37, 43)
    assert all(isinstance(v, int) for v in row["transverse_roi"])
    assert (row["longitudinal_panel"], row["transverse_panel"]) == ("left", "right")
    assert row["view_assignment"] == "elongation"
    assert row["aspect_ratio"] == pytest.approx(27 / 24)
    assert row["nodule_size_px"] == pytest.approx(math.hypot(40, 20))


def test_the_more_elongated_half_is_longitudinal_on_either_side(root):
    row = load_ddti(root).set_index("case_id").loc[8]
    assert (row["longitudinal_panel"], row["transverse_panel"]) == ("right", "left")
    assert row["longitudinal"].shape == (H, W - SEAM)
    assert row["longitudinal_roi"] == (10, 20, 51, 41)


def test_near_tie_in_elongation_falls_back_to_the_wider_outline(tmp_path):
    small = box_polygon(10, 10, 30, 30)  # 20 x 20
    big = box_polygon(5, 5, 45, 43)  # 40 x 38: as round, but wider
    write_case(tmp_path, 1, {1: svg(small, shifted(big, SEAM))}, images={1: dual_frame()})
    row = load_ddti(tmp_path).iloc[0]
    assert row["view_assignment"] == "fallback: wider"
    assert row["longitudinal_panel"] == "right"
    assert row["longitudinal_roi"] == (5, 5, 46, 44)


def test_case_fields_are_normalised_and_labelled(root):
    cohort = load_ddti(root).set_index("case_id")
    assert cohort.loc[7, "age"] == 49.0 and cohort.loc[8, "age"] == 61.0
    assert math.isnan(cohort.loc[10, "age"])
    assert list(cohort["sex"].iloc[:2]) == ["female", "male"] and pd.isna(cohort.loc[10, "sex"])
    assert cohort.loc[7, "margins"] == "ill defined"
    assert cohort.loc[7, "calcifications"] == "microcalcifications"
    assert cohort.loc[7, "composition"] == "solid"
    assert cohort.loc[7, "echogenicity"] == "hypoechogenicity"
    assert cohort.loc[7, "reporteco"] == "Bethesda VI"
    assert cohort.loc[7, "tirads"] == "4b" and cohort.loc[8, "tirads"] == "3"
    assert cohort.loc[7, "label"] == 1.0 and cohort.loc[8, "label"] == 0.0
    assert math.isnan(cohort.loc[10, "label"])
    assert "label" not in load_ddti(root, label=None).columns


def test_label_callable_gets_the_case_fields(root):
    cohort = load_ddti(
        root,
        label=lambda f: (
            1 if "bethesda vi" in f["reporteco"].lower() else (0 if f["tirads"] else None)
        ),
    )
    assert cohort.set_index("case_id")["label"].to_dict() == pytest.approx(
        {7: 1.0, 8: 0.0, 10: math.nan}, nan_ok=True
    )
    with pytest.raises(ValueError, match=r"returned 'yes' for case 7"):
        load_ddti(root, label=lambda f: "yes")


def test_unpaired_cases_are_reported_or_kept_as_single_view(root, tmp_path):
    write_case(root, 11, {1: svg(shifted(ROUND, SEAM))}, images={1: dual_frame(5)})
    write_case(root, 12, {1: ""}, images={1: dual_frame(6)})
    cohort, report = load_ddti(root, return_report=True)
    assert isinstance(report, DDTIReport)
    assert 9 not in set(cohort["case_id"]) and 11 not in set(cohort["case_id"])
    reasons = report.excluded.set_index("case_id")["reason"].to_dict()
    assert reasons == {
        9: "no dual-panel frame",
        11: "nodule outlined in one half only",
        12: "dual-panel frame without outlines",
    }
    assert (
        "11_1.png: dual-panel; nodule outlined in the right half only"
        in report.excluded.set_index("case_id").loc[11, "detail"]
    )
    assert report.counts["paired cases"] == 3 and report.counts["excluded cases"] == 3
    assert "excluded (no dual-panel frame): 1" in str(report)

    kept = load_ddti(root, single_view="keep").set_index("case_id")
    assert set(kept.index) == {7, 8, 9, 10, 11}
    # case 9: whole single-panel frame, elongated outline -> longitudinal
    assert kept.loc[9, "view_assignment"] == "single"
    assert kept.loc[9, "longitudinal"].shape == (H, W) and kept.loc[9, "transverse"] is None
    assert kept.loc[9, "longitudinal_panel"] == "full" and kept.loc[9, "transverse_roi"] is None
    assert kept.loc[9, "label"] == 0.0
    # case 11: the outlined (right) half, round outline -> transverse
    assert kept.loc[11, "longitudinal"] is None
    assert kept.loc[11, "transverse"].shape == (H, W - SEAM)
    assert kept.loc[11, "transverse_roi"] == (12, 15, 37, 43)


def test_exact_duplicates_are_dropped_and_reported(root):
    shutil.copy(root / "images" / "7_1.png", root / "images" / "10_1.png")
    cohort, report = load_ddti(root, return_report=True)
    assert 10 not in set(cohort["case_id"]) and 7 in set(cohort["case_id"])
    assert report.duplicates[["image", "case_id", "duplicate_of"]].values.tolist() == [
        ["10_1.png", 10, "7_1.png"]
    ]
    assert report.excluded.set_index("case_id").loc[10, "reason"] == "only duplicate images"
    assert report.counts["duplicates dropped"] == 1


def test_outline_overshooting_the_seam_is_clamped_but_spanning_is_not(tmp_path):
    over = box_polygon(20, 10, SEAM + SEAM_TOLERANCE - 1, 30)  # overshoots by 2 px
    write_case(tmp_path, 1, {1: svg(over, shifted(ROUND, SEAM))}, images={1: dual_frame()})
    span = box_polygon(20, 10, SEAM + 20, 30)
    write_case(tmp_path, 2, {1: svg(span, shifted(ROUND, SEAM))}, images={1: dual_frame(1)})
    cohort, report = load_ddti(tmp_path, return_report=True)
    row = cohort.set_index("case_id").loc[1]
    assert row["longitudinal_roi"] == (20, 10, SEAM, 31)  # clamped to the left half
    crop_roi(row["longitudinal"], row["longitudinal_roi"], margin=0.0)  # lies inside
    assert list(cohort["case_id"]) == [1]
    excluded = report.excluded.set_index("case_id")
    assert excluded.loc[2, "reason"] == "outline spans the seam"
    assert f"seam at x={SEAM}" in excluded.loc[2, "detail"]


def test_reads_the_raw_layout_only(root):
    (root / "cases.csv").write_text("this is not,the source\n1,2\n")
    (root / "images.csv").write_text("garbage")
    assert len(load_ddti(root)) == 3


def test_grayscale_jpeg_and_subfolders(tmp_path):
    write_case(tmp_path, 3, {2: svg(LONG, shifted(ROUND, SEAM))})
    (tmp_path / "images" / "valid").mkdir()
    Image.fromarray(dual_frame(rgb=False)).save(
        tmp_path / "images" / "valid" / "3_2.jpg", quality=95
    )
    row = load_ddti(tmp_path).iloc[0]
    assert row["image"] == "3_2.jpg" and row["seam_x"] == SEAM


def test_seam_detection_separates_dual_from_single_frames():
    x, score = find_seam(np.asarray(Image.fromarray(dual_frame(3)).convert("L")))
    assert x == SEAM and score > 3.0
    _, score = find_seam(np.asarray(Image.fromarray(single_frame(3)).convert("L")))
    assert score < 1.6


# --------------------------------------------------------------------------- bad input


def test_missing_root_or_subfolders_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        load_ddti(tmp_path / "nowhere")
    (tmp_path / "xml").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no images/ folder"):
        load_ddti(tmp_path)
    shutil.rmtree(tmp_path / "xml")
    (tmp_path / "images").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no xml/ folder"):
        load_ddti(tmp_path)


def test_malformed_xml_warns_with_the_file_name(root):
    (root / "xml" / "13.xml").write_text("<case><number>13</number><age>")
    with pytest.warns(DDTIWarning, match=r"13\.xml.* is malformed"):
        cohort, report = load_ddti(root, return_report=True)
    assert len(cohort) == 3
    assert report.excluded.set_index("case_id").loc[13, "reason"] == "malformed XML"
    with pytest.raises(DDTIError, match=r"13\.xml"):
        load_ddti(root, errors="raise")


@pytest.mark.parametrize(
    "mark, message",
    [
        ('[{"points": [', "not valid JSON"),
        ('[{"points": [{"x": 1}]}]', "numeric x and y"),
        ('{"points": []}', "JSON list"),
    ],
)
def test_malformed_outline_warns_with_the_file_name(tmp_path, mark, message):
    write_case(tmp_path, 5, {1: mark}, images={1: dual_frame()})
    with pytest.warns(DDTIWarning, match=rf"5\.xml'?, image 1.*{message}"):
        assert len(load_ddti(tmp_path)) == 0


def test_mismatched_case_number_warns(tmp_path):
    write_case(tmp_path, 5, {1: svg(LONG, shifted(ROUND, SEAM))}, images={1: dual_frame()})
    text = (tmp_path / "xml" / "5.xml").read_text().replace("<number>5<", "<number>6<")
    (tmp_path / "xml" / "5.xml").write_text(text)
    with pytest.warns(DDTIWarning, match=r"<number>6</number> does not match"):
        assert len(load_ddti(tmp_path)) == 0


def test_corrupt_or_missing_image(root):
    (root / "images" / "8_1.png").write_bytes(b"not a png")
    (root / "images" / "10_1.png").unlink()
    with pytest.warns(DDTIWarning, match=r"8_1\.png.* corrupt or unreadable"):
        cohort, report = load_ddti(root, return_report=True)
    assert list(cohort["case_id"]) == [7]
    reasons = report.excluded.set_index("case_id")["reason"]
    assert reasons[8] == "no readable non-duplicate image"
    assert reasons[10] == "image files missing"


def test_unknown_tirads_value_warns(root):
    write_case(
        root,
        14,
        {1: svg(LONG, shifted(ROUND, SEAM))},
        images={1: dual_frame(9)},
        fields={"tirads": "6"},
    )
    with pytest.warns(DDTIWarning, match=r"14\.xml.*<tirads>6</tirads>"):
        row = load_ddti(root).set_index("case_id").loc[14]
    assert pd.isna(row["tirads"]) and math.isnan(row["label"])


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"label": "bethesda"}, "label must be one of"),
        ({"single_view": "both"}, "single_view must be one of"),
        ({"errors": "ignore"}, "errors must be one of"),
    ],
)
def test_bad_parameters(root, kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_ddti(root, **kwargs)


# --------------------------------------------------------------------------- on disk


def test_out_dir_writes_a_loadable_cohort(root, tmp_path):
    out = tmp_path / "cohort"
    in_memory = load_ddti(root)
    on_disk = load_ddti(root, out_dir=out)
    assert (out / "manifest.csv").is_file()
    assert all(Path(p).is_file() and Path(p).is_absolute() for p in on_disk["longitudinal"])
    loaded = load_cohort(out / "manifest.csv", clinical=False, label=False)
    assert list(loaded["patient_id"]) == ["ddti-007", "ddti-008", "ddti-010"]
    assert list(loaded["transverse_roi"]) == list(in_memory["transverse_roi"])
    for path, array in zip(loaded["longitudinal"], in_memory["longitudinal"], strict=True):
        np.testing.assert_array_equal(read_image(path), array)  # lossless 8-bit round trip
    with pytest.raises(Exception, match="already exists"):
        load_ddti(root, out_dir=out)
    assert len(load_ddti(root, out_dir=out, overwrite=True)) == 3


def test_out_dir_with_single_views(root, tmp_path):
    frame = load_ddti(root, out_dir=tmp_path / "c", single_view="keep").set_index("case_id")
    assert pd.isna(frame.loc[9, "transverse"]) and Path(frame.loc[9, "longitudinal"]).is_file()
    manifest = pd.read_csv(tmp_path / "c" / "manifest.csv", keep_default_na=False)
    assert manifest.set_index("case_id").loc[9, "transverse"] == ""


# --------------------------------------------------------------------------- the shared copy


@pytest.fixture(scope="module")
def ddti(ddti_root):
    cohort, report = load_ddti(ddti_root, return_report=True)
    return ddti_root, cohort, report


def _polygons(root, image):
    case_id, k = image.rsplit(".", 1)[0].split("_")
    mark = next(
        m
        for m in ET.parse(root / "xml" / f"{case_id}.xml").getroot().iter("mark")
        if m.findtext("image").strip() == k
    )
    return [
        np.array([[p["x"], p["y"]] for p in shape["points"]], dtype=float)
        for shape in json.loads(mark.findtext("svg"))
    ]


@pytest.mark.data
def test_shared_copy_has_enough_labelled_pairs(ddti):
    _, cohort, report = ddti
    paired = cohort[cohort["view_assignment"] != "single"]
    labelled = paired["label"].notna().sum()
    assert labelled >= 60
    assert set(paired["label"].dropna().unique()) <= {0.0, 1.0}
    assert report.counts["paired cases"] == len(cohort) == 143
    assert report.counts["duplicates dropped"] == 6
    assert cohort["patient_id"].is_unique


@pytest.mark.data
def test_shared_copy_every_roi_crop_contains_its_polygon(ddti):
    root, cohort, _ = ddti
    for row in cohort.itertuples():
        polygons = _polygons(root, row.image)
        for view in ("longitudinal", "transverse"):
            image, box = getattr(row, view), getattr(row, f"{view}_roi")
            side = getattr(row, f"{view}_panel")
            x0, y0, x1, y1 = box
            crop = crop_roi(image, box, margin=0.0, where=f"{row.image} {view}")
            assert crop.shape == (y1 - y0, x1 - x0)
            offset = 0 if side == "left" else row.seam_x
            mine = [
                p - [offset, 0]
                for p in polygons
                if (p[:, 0].mean() < row.seam_x) == (side == "left")
            ]
            assert len(mine) == 1, (row.image, side)
            pts = mine[0]
            # outlines may overshoot the seam by a few pixels; nothing else is clamped
            assert pts[:, 0].min() >= -SEAM_TOLERANCE
            assert pts[:, 0].max() < image.shape[1] + SEAM_TOLERANCE
            pts = np.clip(pts, 0, [image.shape[1] - 1, image.shape[0] - 1])
            assert (pts[:, 0] >= x0).all() and (pts[:, 0] < x1).all(), (row.image, view)
            assert (pts[:, 1] >= y0).all() and (pts[:, 1] < y1).all(), (row.image, view)
            # and the box is tight: the polygon touches all four sides
            assert pts[:, 0].min() == x0 and pts[:, 0].max() == x1 - 1
            assert pts[:, 1].min() == y0 and pts[:, 1].max() == y1 - 1


@pytest.mark.data
def test_shared_copy_halves_are_the_source_frame(ddti):
    root, cohort, _ = ddti
    for row in cohort.iloc[::20].itertuples():
        with Image.open(root / "images" / row.image) as img:
            frame = np.asarray(img.convert("L"), dtype=np.float32) / 255
        left, right = (
            (row.longitudinal, row.transverse)
            if row.longitudinal_panel == "left"
            else (row.transverse, row.longitudinal)
        )
        np.testing.assert_array_equal(np.hstack([left, right]), frame)


@pytest.mark.data
def test_shared_copy_agrees_with_the_derived_csvs(ddti):
    root, cohort, report = ddti
    images = pd.read_csv(root / "images.csv")
    images["image"] = images["image_file"].str.replace("images/", "", regex=False)
    merged = report.images.merge(images, on="image", suffixes=("", "_csv"))
    assert len(merged) == len(images)
    assert (merged["md5"] == merged["md5_csv"]).all()
    live = merged[merged["layout"].isin(["dual", "single"])]
    assert (live["layout"] == live["panel_layout_guess"]).all()
    dual = live[live["layout"] == "dual"]
    assert (dual["seam_x"] == dual["seam_x_csv"] + 1).all()  # csv: last column of the left half
    # every dropped duplicate is listed as such in images.csv
    flagged = images.set_index("image")["exact_duplicate_of"]
    assert all(isinstance(flagged[name], str) for name in report.duplicates["image"])
    both = set(images.loc[images["nodule_outlined_in_both_panels"] == 1, "case_id"])
    assert set(cohort["case_id"]) == both
    cases = pd.read_csv(root / "cases.csv").set_index("case_id")
    expected = cases.loc[cohort["case_id"], "tirads_binary"].map({"malignant": 1.0, "benign": 0.0})
    np.testing.assert_array_equal(cohort["label"].to_numpy(), expected.to_numpy())
    np.testing.assert_array_equal(
        cohort["age"].to_numpy(), cases.loc[cohort["case_id"], "age"].to_numpy()
    )
