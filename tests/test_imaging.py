import numpy as np
import pytest
from PIL import Image

from thyronet.imaging import (
    ImageError,
    crop_roi,
    load_view,
    normalize_intensity,
    read_image,
    resize_square,
)


@pytest.fixture
def gradient():
    return np.tile(np.arange(64, dtype=np.uint8) * 4, (48, 1))


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".bmp", ".tif"])
def test_read_formats_give_gray_float32(tmp_path, gradient, suffix):
    path = tmp_path / f"img{suffix}"
    Image.fromarray(gradient).save(path)
    image = read_image(path)
    assert image.dtype == np.float32 and image.shape == (48, 64)
    tol = 0.05 if suffix == ".jpg" else 1e-6
    np.testing.assert_allclose(image, gradient / 255.0, atol=tol)


def test_rgb_becomes_luminance(tmp_path):
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[..., 0] = 255
    Image.fromarray(rgb).save(tmp_path / "red.png")
    np.testing.assert_allclose(read_image(tmp_path / "red.png"), 0.299, atol=1e-6)


def test_sixteen_bit_png_scaled_by_type_max(tmp_path):
    data = np.full((5, 5), 65535 // 2, np.uint16)
    Image.fromarray(data).save(tmp_path / "x.png")
    np.testing.assert_allclose(read_image(tmp_path / "x.png"), 0.5, atol=1e-3)


def test_dicom(tmp_path):
    pydicom = pytest.importorskip("pydicom")
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.6.1"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = pydicom.Dataset()
    ds.file_meta = meta
    ds.Rows, ds.Columns = 6, 8
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 8, 8, 7, 0
    pixels = np.arange(48, dtype=np.uint8).reshape(6, 8)
    ds.PixelData = pixels.tobytes()
    path = tmp_path / "view.dcm"
    ds.save_as(path, enforce_file_format=True)
    np.testing.assert_allclose(read_image(path), pixels / 255.0, atol=1e-6)


def test_missing_file_named(tmp_path):
    with pytest.raises(ImageError, match=r"nope\.png.*column 'longitudinal'.*row 7.*not exist"):
        read_image(tmp_path / "nope.png", row=7, column="longitudinal")


def test_corrupt_file_named(tmp_path):
    path = tmp_path / "broken.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.raises(ImageError, match=r"broken\.png.*corrupt"):
        read_image(path)


def test_not_two_d(tmp_path):
    with pytest.raises(ImageError, match=r"not 2-D.*\(2, 3, 4, 5\)"):
        read_image(np.zeros((2, 3, 4, 5)))
    frames = [Image.fromarray(np.zeros((4, 4), np.uint8)) for _ in range(2)]
    frames[0].save(tmp_path / "cine.tif", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageError, match=r"cine\.tif.*2 frames"):
        read_image(tmp_path / "cine.tif")


def test_crop_roi_with_margin_and_clipping():
    image = np.arange(100 * 200, dtype=np.float32).reshape(100, 200)
    crop = crop_roi(image, (50, 20, 150, 80), margin=0.1)
    assert crop.shape == (60 + 12, 100 + 20)
    assert crop[0, 0] == image[14, 40]
    assert crop_roi(image, (0, 0, 200, 100), margin=0.5).shape == (100, 200)


@pytest.mark.parametrize("box", [(-1, 0, 10, 10), (0, 0, 201, 10), (5, 5, 5, 9)])
def test_crop_roi_outside_or_empty(box):
    with pytest.raises(ImageError, match=r"ROI box .* (outside|empty)"):
        crop_roi(np.zeros((100, 200), np.float32), box, where="image 'a.png', row 3")


def test_resize_keep_aspect_pads_and_stretch_does_not():
    image = np.ones((20, 40), np.float32)
    image[0, 0] = 0.0  # the background (image minimum) is what padding uses
    padded = resize_square(image, 40, keep_aspect=True)
    stretched = resize_square(image, 40, keep_aspect=False)
    assert padded.shape == stretched.shape == (40, 40)
    assert padded[:8].max() == 0.0  # top rows are padding (background = image minimum)
    assert stretched[5:, 5:].min() == pytest.approx(1.0)


def test_normalisations():
    image = np.array([[0.0, 5.0], [10.0, 20.0]], np.float32)
    assert normalize_intensity(image, "minmax").max() == 1.0
    z = normalize_intensity(image, "zscore")
    assert abs(z.mean()) < 1e-6 and abs(z.std() - 1) < 1e-6
    assert np.array_equal(normalize_intensity(image, "none"), image)
    assert not normalize_intensity(np.ones((3, 3), np.float32)).any()
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalize_intensity(image, "bogus")


def test_load_view_rejects_nan_pixels():
    image = np.zeros((10, 10), np.float32)
    image[2, 2] = np.nan
    with pytest.raises(ImageError, match="NaN"):
        load_view(image, size=8, row=4, column="transverse")


def test_corrupt_dicom_is_an_image_error(tmp_path):
    pytest.importorskip("pydicom")
    path = tmp_path / "broken.dcm"
    path.write_bytes(b"not a dicom file at all")
    with pytest.raises(ImageError, match="not a readable DICOM"):
        read_image(path)


def test_oversized_image_is_an_image_error_naming_file_and_row(tmp_path, monkeypatch):
    import thyronet.imaging as imaging

    path = tmp_path / "big.png"
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(path)
    with pytest.raises(ImageError, match=r"big\.png.*row 3.*= 2,000 pixels.*limit of 1,999"):
        read_image(path, row=3, column="longitudinal", max_pixels=1999)
    assert read_image(path, max_pixels=2000).shape == (40, 50)
    monkeypatch.setenv("THYRONET_MAX_IMAGE_PIXELS", "1000")
    with pytest.raises(ImageError, match=r"too large.*THYRONET_MAX_IMAGE_PIXELS"):
        read_image(path)
    monkeypatch.setenv("THYRONET_MAX_IMAGE_PIXELS", "lots")
    with pytest.raises(ValueError, match="THYRONET_MAX_IMAGE_PIXELS='lots'"):
        read_image(path)
    monkeypatch.delenv("THYRONET_MAX_IMAGE_PIXELS")
    monkeypatch.setattr(imaging, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(ImageError, match="too large"):
        read_image(path)


def test_pillow_decompression_bomb_becomes_image_error(tmp_path, monkeypatch):
    import warnings

    path = tmp_path / "bomb.png"
    Image.fromarray(np.zeros((40, 50), np.uint8)).save(path)
    # Pillow's own limit below the image: its warning is not shown, its error is ours.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1500)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_image(path).shape == (40, 50)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 500)
    with pytest.raises(ImageError, match=r"bomb\.png.*row 'p1'.*too large for Pillow"):
        read_image(path, row="p1")
