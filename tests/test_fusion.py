import os
import pickle
import tempfile

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from thyronet import DualChannelFuser
from thyronet.datasets import CohortError
from thyronet.imaging import ImageError
from thyronet.plugins import UnknownEntryError


def _frame_with_files(tmp_path, n=5, size=(60, 80)):
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        row = {"patient_id": f"p{i}"}
        for view in ("longitudinal", "transverse"):
            data = (rng.random(size) * 255).astype(np.uint8)
            path = tmp_path / f"{i}_{view}.png"
            Image.fromarray(data).save(path)
            row[view] = str(path)
            row[f"{view}_roi"] = (10, 5, 50, 45)
        rows.append(row)
    return pd.DataFrame(rows)


def test_stack_from_files_matches_per_view_loading(tmp_path):
    frame = _frame_with_files(tmp_path)
    fuser = DualChannelFuser(image_size=32, roi_margin=0.0, normalize="none")
    fused = fuser.fit_transform(frame)
    assert fused.shape == (5, 2, 32, 32) and fused.dtype == np.float32
    raw = np.asarray(Image.open(frame.loc[2, "transverse"]), np.float32)[5:45, 10:50] / 255
    expected = np.asarray(Image.fromarray(raw).resize((32, 32), Image.Resampling.BILINEAR))
    np.testing.assert_allclose(fused[2, 1], expected, atol=1e-6)
    assert list(fuser.get_feature_names_out()) == ["longitudinal", "transverse"]


@pytest.mark.parametrize(
    ("strategy", "shape"),
    [
        ("stack", (2, 16, 16)),
        ("stack3", (3, 16, 16)),
        ("longitudinal", (1, 16, 16)),
        ("transverse", (1, 16, 16)),
        ("mean", (1, 16, 16)),
        ("mosaic", (1, 16, 32)),
    ],
)
def test_builtin_strategies(strategy, shape):
    views = np.random.default_rng(1).random((4, 2, 16, 16)).astype(np.float32)
    fused = DualChannelFuser(strategy=strategy, image_size=16, normalize="none").fit_transform(
        views
    )
    assert fused.shape == (4, *shape)
    if strategy == "stack3":
        np.testing.assert_allclose(fused[:, 2], views.mean(axis=1), atol=1e-6)
    if strategy == "transverse":
        np.testing.assert_allclose(fused[:, 0], views[:, 1], atol=1e-6)
    if strategy == "mosaic":
        np.testing.assert_allclose(fused[:, 0, :, 16:], views[:, 1], atol=1e-6)


def test_any_number_of_views_with_stack():
    views = [np.random.rand(3, 20, 20) for _ in range(4)]
    fuser = DualChannelFuser(views=("a", "b", "c", "d"), image_size=8)
    assert fuser.fit_transform(views).shape == (3, 4, 8, 8)
    with pytest.raises(ValueError, match=r"stack3.*takes 2 to 2 views; got 4"):
        DualChannelFuser(views=("a", "b", "c", "d"), strategy="stack3").fit(views)


def test_memmap_output_is_written_to_a_new_file(tmp_path):
    views = np.random.rand(10, 2, 20, 20).astype(np.float32)
    fuser = DualChannelFuser(image_size=8, output="memmap", memmap_dir=tmp_path, batch_size=3)
    first = fuser.fit_transform(views)
    second = fuser.transform(views)
    assert isinstance(first, np.memmap) and not first.flags.writeable
    assert len(list(tmp_path.glob("fused-*.npy"))) == 2
    np.testing.assert_array_equal(np.asarray(first), np.asarray(second))
    np.testing.assert_allclose(
        np.asarray(first), DualChannelFuser(image_size=8).fit_transform(views), atol=0
    )


def test_batches_and_threads_give_the_same_result(tmp_path):
    frame = _frame_with_files(tmp_path, n=7)
    a = DualChannelFuser(image_size=16, batch_size=2, n_jobs=2).fit_transform(frame)
    b = DualChannelFuser(image_size=16, batch_size=64).fit_transform(frame)
    np.testing.assert_array_equal(a, b)


def test_input_frame_is_not_modified(tmp_path):
    frame = _frame_with_files(tmp_path, n=2)
    before = frame.copy(deep=True)
    DualChannelFuser(image_size=8).fit_transform(frame)
    pd.testing.assert_frame_equal(frame, before)


def test_unknown_strategy_lists_registered():
    with pytest.raises(UnknownEntryError, match=r"unknown fusion 'nope'.*mosaic, stack, stack3"):
        DualChannelFuser(strategy="nope").fit(np.zeros((1, 2, 4, 4)))


def test_missing_view_column():
    frame = pd.DataFrame({"longitudinal": [np.zeros((4, 4))]})
    with pytest.raises(CohortError, match=r"view column\(s\) \['transverse'\]"):
        DualChannelFuser().fit(frame)


def test_nan_view_names_row_and_column(tmp_path):
    frame = _frame_with_files(tmp_path, n=3)
    frame.loc[1, "transverse"] = np.nan
    fuser = DualChannelFuser(image_size=8).fit(frame)
    with pytest.raises(ImageError, match=r"view 'transverse' is missing .* row 1"):
        fuser.transform(frame)


def test_missing_file_and_bad_roi_named(tmp_path):
    frame = _frame_with_files(tmp_path, n=3)
    frame.loc[2, "longitudinal"] = str(tmp_path / "gone.png")
    with pytest.raises(ImageError, match=r"gone\.png.*column 'longitudinal'.*row 2"):
        DualChannelFuser(image_size=8).fit_transform(frame)
    frame = _frame_with_files(tmp_path, n=3)
    frame.at[1, "transverse_roi"] = (10, 10, 500, 40)
    with pytest.raises(ImageError, match=r"ROI box \(10, 10, 500, 40\).*row 1.*outside"):
        DualChannelFuser(image_size=8).fit_transform(frame)
    frame.at[1, "transverse_roi"] = (10, 10, 10, 40)
    with pytest.raises(CohortError, match=r"transverse_roi.*row 1.*empty"):
        DualChannelFuser(image_size=8).fit_transform(frame)


def test_views_of_different_counts():
    with pytest.raises(ValueError, match="different numbers of images"):
        DualChannelFuser().fit([np.zeros((3, 4, 4)), np.zeros((2, 4, 4))])


def test_two_d_table_rejected_with_explanation():
    with pytest.raises(ValueError, match=r"expects a cohort DataFrame.*shape \(5, 3\)"):
        DualChannelFuser().fit(np.zeros((5, 3)))


def test_not_fitted_clone_and_pickle():
    views = np.random.rand(2, 2, 8, 8)
    with pytest.raises(NotFittedError):
        DualChannelFuser().transform(views)
    fuser = DualChannelFuser(image_size=8).fit(views)
    assert not hasattr(clone(fuser), "n_channels_")
    restored = pickle.loads(pickle.dumps(fuser))
    np.testing.assert_array_equal(restored.transform(views), fuser.transform(views))


def test_bad_parameter_gets_sklearn_message():
    with pytest.raises(ValueError, match="'image_size' parameter"):
        DualChannelFuser(image_size=0).fit(np.zeros((1, 2, 4, 4)))


def test_progress_bar_and_silence(terminal):
    views = np.random.rand(3, 2, 8, 8)
    DualChannelFuser(image_size=8, verbose=1).fit_transform(views)
    assert "fusing views" in terminal.readouterr().err
    DualChannelFuser(image_size=8, verbose=0).fit_transform(views)
    assert terminal.readouterr().err == ""


def test_parameters_after_strategy_are_keyword_only():
    assert DualChannelFuser("stack3").strategy == "stack3"
    assert DualChannelFuser().roi_margin == 0.0
    with pytest.raises(TypeError):
        DualChannelFuser("stack", ("longitudinal", "transverse"))


def test_importing_fusion_does_not_load_torch():
    import subprocess
    import sys

    code = "import sys, thyronet.fusion; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_failed_memmap_fusion_removes_its_partial_file(tmp_path, monkeypatch):
    (tmp_path / "images").mkdir()
    frame = _frame_with_files(tmp_path / "images", n=5)
    (tmp_path / "images" / "3_transverse.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    out = tmp_path / "fused"
    fuser = DualChannelFuser(image_size=8, output="memmap", memmap_dir=out, batch_size=2)
    with pytest.raises(ImageError, match=r"3_transverse\.png.*row 3.*corrupt"):
        fuser.fit_transform(frame)
    assert out.is_dir() and list(out.iterdir()) == []
    # Without memmap_dir the temporary folder made for the file goes too.
    made = []
    real_mkdtemp = tempfile.mkdtemp

    def mkdtemp(**kwargs):
        made.append(real_mkdtemp(dir=tmp_path, **kwargs))
        return made[-1]

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    with pytest.raises(ImageError, match="corrupt"):
        DualChannelFuser(image_size=8, output="memmap", batch_size=2).fit_transform(frame)
    assert len(made) == 1 and not os.path.exists(made[0])
