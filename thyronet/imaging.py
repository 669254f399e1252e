"""Reading and preparing one ultrasound view: load, crop to the ROI, resize, normalise.

Images come from PNG, JPEG, BMP and TIFF files (Pillow), DICOM files (pydicom,
the ``dicom`` extra) or in-memory 2-D arrays. Every function returns float32.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

DICOM_SUFFIXES = (".dcm", ".dicom")
NORMALIZATIONS = ("minmax", "percentile", "zscore", "none")

#: Largest image (width x height, in pixels) :func:`read_image` decodes: Pillow's own
#: refusal threshold (twice ``PIL.Image.MAX_IMAGE_PIXELS``), about 179 million pixels.
#: The environment variable ``THYRONET_MAX_IMAGE_PIXELS`` overrides it; so does the
#: ``max_pixels`` argument of :func:`read_image`.
MAX_IMAGE_PIXELS = 2 * 89_478_485
MAX_PIXELS_ENV = "THYRONET_MAX_IMAGE_PIXELS"

# ITU-R BT.601 luma weights, as Pillow's "L" conversion uses.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


class ImageError(ValueError):
    """An image that cannot be used; the message names the file, row and column."""


class ImageWarning(UserWarning):
    """An image that can be read but is probably not what was meant (e.g. blank)."""


def _where(source, row=None, column=None) -> str:
    parts = []
    if isinstance(source, (str, os.PathLike)):
        parts.append(f"image file {str(source)!r}")
    else:
        parts.append("in-memory image")
    if column is not None:
        parts.append(f"column {column!r}")
    if row is not None:
        parts.append(f"row {row!r}")
    return ", ".join(parts)


def max_image_pixels() -> int:
    """The pixel limit in force: ``$THYRONET_MAX_IMAGE_PIXELS``, else :data:`MAX_IMAGE_PIXELS`.

    Raises
    ------
    ValueError
        The environment variable is set but is not a positive integer.
    """
    raw = os.environ.get(MAX_PIXELS_ENV, "").strip()
    if not raw:
        return int(MAX_IMAGE_PIXELS)
    try:
        value = int(raw.replace("_", ""))
    except ValueError:
        value = 0
    if value <= 0:
        raise ValueError(f"{MAX_PIXELS_ENV}={raw!r} must be a positive whole number of pixels")
    return value


def _check_pixels(width: int, height: int, limit: int, where: str) -> None:
    if int(width) * int(height) > limit:
        raise ImageError(
            f"{where} is too large: {width} x {height} = {int(width) * int(height):,} pixels, "
            f"more than the limit of {limit:,} (raise it with {MAX_PIXELS_ENV} or "
            "thyronet.imaging.MAX_IMAGE_PIXELS if the file is trusted)"
        )


def read_image(source, *, row=None, column=None, max_pixels: int | None = None) -> np.ndarray:
    """Load one view as a 2-D float32 grayscale image.

    Integer images are scaled to [0, 1] by their type's maximum; RGB(A) frames
    are converted to luminance (ITU-R BT.601); float arrays are kept as they are.

    Parameters
    ----------
    source : str, path-like or ndarray
        An image file or a 2-D (or ``(H, W, 3|4)`` colour) array.
    row, column : optional
        Where the image comes from, for error messages.
    max_pixels : int, optional
        Largest width x height decoded from a file (a guard against decompression
        bombs); default :func:`max_image_pixels`.

    Returns
    -------
    ndarray of shape (H, W), float32

    Raises
    ------
    ImageError
        Missing, unreadable or corrupt file, an image with more than ``max_pixels``
        pixels, or an image that is not 2-D.

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.imaging import read_image
    >>> read_image(np.full((4, 6, 3), 255, dtype=np.uint8)).shape
    (4, 6)
    """
    where = _where(source, row, column)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{where} does not exist")
        limit = max_image_pixels() if max_pixels is None else int(max_pixels)
        if path.suffix.lower() in DICOM_SUFFIXES:
            array = _read_dicom(path, where, limit)
        else:
            array = _read_pillow(path, where, limit)
    elif isinstance(source, np.ndarray):
        array = source
    else:
        raise ImageError(
            f"{where}: expected a file path or a 2-D array, got {type(source).__name__}"
        )
    return _to_gray_float(array, where)


def _read_pillow(path: Path, where: str, limit: int) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        # Pillow's DecompressionBombWarning is replaced by the check against ``limit``
        # below, which runs on the header before any pixel is decoded.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            _check_pixels(*img.size, limit, where)
            img.load()
            if getattr(img, "n_frames", 1) > 1:
                raise ImageError(f"{where} has {img.n_frames} frames; expected one 2-D image")
            if img.mode in ("P", "PA", "LA", "1", "CMYK", "YCbCr", "HSV", "LAB"):
                img = img.convert("RGBA" if "A" in img.mode else "RGB")
            return np.asarray(img)
    except ImageError:
        raise
    except Image.DecompressionBombError as exc:
        raise ImageError(
            f"{where} is too large for Pillow: {exc} (raise PIL.Image.MAX_IMAGE_PIXELS as well "
            f"as {MAX_PIXELS_ENV} if the file is trusted)"
        ) from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"{where} is corrupt or not an image: {exc}") from exc


def _read_dicom(path: Path, where: str, limit: int) -> np.ndarray:
    try:
        import pydicom
        import pydicom.errors
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImageError(
            f"{where} is DICOM; install the extra: pip install 'thyronet[dicom]'"
        ) from exc
    try:
        ds = pydicom.dcmread(path)
        rows, columns = getattr(ds, "Rows", None), getattr(ds, "Columns", None)
        if isinstance(rows, int) and isinstance(columns, int):
            _check_pixels(columns, rows, limit, where)
        array = ds.pixel_array
    # not DICOM / truncated / no or bad pixel data (AttributeError, KeyError, ValueError) /
    # no pixel handler or unsupported transfer syntax (RuntimeError, NotImplementedError)
    except (
        pydicom.errors.InvalidDicomError,
        OSError,
        EOFError,
        AttributeError,
        KeyError,
        ValueError,
        RuntimeError,
    ) as exc:
        raise ImageError(f"{where} is corrupt or not a readable DICOM file: {exc}") from exc
    photometric = str(getattr(ds, "PhotometricInterpretation", "MONOCHROME2"))
    if photometric == "MONOCHROME1":
        array = array.max() - array
    return array


def _to_gray_float(array: np.ndarray, where: str) -> np.ndarray:
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] in (3, 4):
        scale = _scale_of(array.dtype)
        rgb = array[..., :3].astype(np.float32)
        gray = rgb @ _LUMA
        return (gray / scale).astype(np.float32, copy=False)
    if array.ndim != 2:
        raise ImageError(f"{where} is not 2-D after loading: shape {array.shape}")
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if not np.issubdtype(array.dtype, np.number):
        raise ImageError(f"{where} has non-numeric pixels (dtype {array.dtype})")
    scale = _scale_of(array.dtype)
    return (array.astype(np.float32) / scale).astype(np.float32, copy=False)


def _scale_of(dtype) -> float:
    if np.issubdtype(dtype, np.integer):
        return float(np.iinfo(dtype).max)
    return 1.0


def crop_roi(image: np.ndarray, box, *, margin: float = 0.1, where: str = "image") -> np.ndarray:
    """Crop ``image`` to the ROI ``box`` = ``(x0, y0, x1, y1)``, enlarged by ``margin``.

    ``margin`` is a fraction of the box's width and height added on each side
    (``0.1`` = 10 %); the enlarged box is clipped to the image. The box itself
    must lie inside the image and be non-empty.

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.imaging import crop_roi
    >>> crop_roi(np.zeros((100, 200), np.float32), (50, 20, 150, 80), margin=0.0).shape
    (60, 100)
    """
    h, w = image.shape
    x0, y0, x1, y1 = (int(v) for v in box)
    if x1 <= x0 or y1 <= y0:
        raise ImageError(f"ROI box {tuple(box)} of {where} is empty")
    if x0 < 0 or y0 < 0 or x1 > w or y1 > h:
        raise ImageError(
            f"ROI box {tuple(box)} of {where} lies outside the image (width {w}, height {h})"
        )
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    dx = round((x1 - x0) * margin)
    dy = round((y1 - y0) * margin)
    return image[max(0, y0 - dy) : min(h, y1 + dy), max(0, x0 - dx) : min(w, x1 + dx)]


def resize_square(image: np.ndarray, size: int, *, keep_aspect: bool = True) -> np.ndarray:
    """Resize to ``size`` x ``size``: pad to a square first (``keep_aspect``) or stretch.

    Padding is centred and uses the image's minimum (the dark ultrasound background).
    Resampling is bilinear with antialiasing (Pillow on 32-bit float images).

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.imaging import resize_square
    >>> resize_square(np.ones((30, 60), np.float32), 32).shape
    (32, 32)
    """
    from PIL import Image

    image = np.asarray(image, dtype=np.float32)
    if keep_aspect:
        h, w = image.shape
        side = max(h, w)
        if h != w:
            fill = float(image.min()) if image.size else 0.0
            padded = np.full((side, side), fill, dtype=np.float32)
            top, left = (side - h) // 2, (side - w) // 2
            padded[top : top + h, left : left + w] = image
            image = padded
    if image.shape == (size, size):
        return image.copy()
    resized = Image.fromarray(image).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def normalize_intensity(image: np.ndarray, method: str | None = "minmax") -> np.ndarray:
    """Normalise one image's intensities.

    ``"minmax"`` scales to [0, 1]; ``"percentile"`` clips to the 1st-99th
    percentile, then scales to [0, 1]; ``"zscore"`` gives zero mean and unit
    variance; ``"none"`` (or ``None``) leaves the image as it is. A constant image
    becomes zeros.

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.imaging import normalize_intensity
    >>> normalize_intensity(np.array([[2.0, 4.0]], np.float32)).tolist()
    [[0.0, 1.0]]
    """
    if method is None or method == "none":
        return image
    if method not in NORMALIZATIONS:
        raise ValueError(f"unknown normalisation {method!r}; choose from {NORMALIZATIONS}")
    image = np.asarray(image, dtype=np.float32)
    if method == "zscore":
        std = float(image.std())
        return ((image - image.mean()) / std if std > 0 else np.zeros_like(image)).astype(
            np.float32
        )
    if method == "percentile":
        lo, hi = np.percentile(image, [1, 99])
        image = np.clip(image, lo, hi)
    else:
        lo, hi = float(image.min()), float(image.max())
    if hi <= lo:
        return np.zeros_like(image)
    return ((image - lo) / (hi - lo)).astype(np.float32)


def load_view(
    source,
    roi=None,
    *,
    size: int = 224,
    margin: float = 0.1,
    keep_aspect: bool = True,
    normalize: str | None = "minmax",
    row=None,
    column=None,
) -> np.ndarray:
    """Read, crop to the ROI, resize and normalise one view: the fuser's per-image step.

    Examples
    --------
    >>> import numpy as np
    >>> from thyronet.imaging import load_view
    >>> load_view(np.random.rand(80, 120), (10, 10, 60, 50), size=32).shape
    (32, 32)
    """
    image = read_image(source, row=row, column=column)
    if not np.all(np.isfinite(image)):
        raise ImageError(f"{_where(source, row, column)} contains NaN or infinite pixels")
    if roi is not None:
        image = crop_roi(image, roi, margin=margin, where=_where(source, row, column))
    image = resize_square(image, size, keep_aspect=keep_aspect)
    return normalize_intensity(image, normalize)
