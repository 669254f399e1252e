import warnings

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from thyronet.imaging import ImageWarning
from thyronet.study import StudyError
from thyronet.study._preflight import check_images


def _frame(tmp_path, n=4):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        row = {"patient_id": f"P{i}"}
        for view in ("longitudinal", "transverse"):
            path = tmp_path / f"{i}_{view}.png"
            Image.fromarray((rng.random((40, 60)) * 255).astype(np.uint8)).save(path)
            row[view] = str(path)
            row[f"{view}_roi"] = "10 5 50 35"
        rows.append(row)
    return pd.DataFrame(rows)


def test_images_constant_after_cropping_warn_naming_the_patients(tmp_path):
    frame = _frame(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_images(frame) == 8
    # P1: a flat image; P2: texture only outside its ROI box.
    Image.fromarray(np.full((40, 60), 7, np.uint8)).save(frame.at[1, "longitudinal"])
    pixels = (np.random.default_rng(1).random((40, 60)) * 255).astype(np.uint8)
    pixels[5:35, 10:50] = 0
    Image.fromarray(pixels).save(frame.at[2, "transverse"])
    with pytest.warns(ImageWarning, match=r"2 image\(s\) are constant after cropping") as rec:
        check_images(frame)
    message = str(rec[0].message)
    assert "patient_id 'P1' (longitudinal)" in message
    assert "patient_id 'P2' (transverse)" in message
    assert "P0" not in message and "P3" not in message
    # With a margin the crop of P2 reaches the texture around the box.
    with pytest.warns(ImageWarning) as rec:
        check_images(frame, margin=0.5)
    assert "P2" not in str(rec[0].message)


def test_roi_outside_the_image_fails_before_training(tmp_path):
    frame = _frame(tmp_path, n=2)
    frame.loc[1, "transverse_roi"] = "10 5 500 35"
    with pytest.raises(StudyError, match=r"1_transverse\.png.*row 1.*outside the image"):
        check_images(frame)


def test_cohort_doc_lists_every_rule():
    from pathlib import Path

    doc = (Path(__file__).parents[1] / "docs" / "cohort.md").read_text()
    rules = doc[doc.index("## Rules") : doc.index("## Fusion strategies")]
    for phrase in (
        "is a directory",
        "repeats a column name",
        "duplicated column names",
        "`patient_id` that appears more than once",
        "not a number or is infinite",
        "PLAUSIBLE_RANGES",
        "looks like fractions of the image",
        "same image file",
        "every image of every cohort",
        "MAX_IMAGE_PIXELS",
        "ROI box lies inside",
        "registered",
        "output folder",
        "constant after cropping",
        "requires only the columns its model reads",
        "partial `.npy`",
        "THYRONET_DISABLE_PLUGINS",
    ):
        assert phrase in rules, phrase
    assert "THYRONET_MAX_IMAGE_PIXELS" in doc
