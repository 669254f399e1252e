"""The one PNG writer of the data sets: a 2-D image to an 8-bit grayscale PNG file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["safe_name", "write_png"]


def write_png(
    path: Path, image: np.ndarray, *, overwrite: bool = False, compress_level: int | None = None
) -> Path:
    """Write ``image`` as an 8-bit grayscale PNG (parent folders are created).

    A boolean image becomes 0/255. A numeric one is mapped by ``round(x * 255)``,
    computed in its own dtype; values outside [0, 1] are min-max rescaled first
    (a constant image then becomes black). ``compress_level`` (0-9) trades file size
    for speed; ``None`` is Pillow's default.

    Raises
    ------
    FileExistsError
        ``path`` exists and ``overwrite`` is false.

    Examples
    --------
    >>> import tempfile, pathlib, numpy as np
    >>> from PIL import Image
    >>> from thyronet.datasets._io import write_png
    >>> target = write_png(pathlib.Path(tempfile.mkdtemp()) / "a.png", np.eye(2) > 0)
    >>> np.asarray(Image.open(target)).tolist()
    [[255, 0], [0, 255]]
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"image file {str(path)!r} already exists; pass overwrite=True to replace it"
        )
    data = np.asarray(image)
    if data.dtype == bool:
        data = data.astype(np.uint8) * 255
    else:
        if data.size and (data.min() < 0 or data.max() > 1):
            lo, hi = data.min(), data.max()
            data = (data - lo) / (hi - lo) if hi > lo else np.zeros_like(data)
        data = np.round(data * 255).astype(np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {} if compress_level is None else {"compress_level": compress_level}
    Image.fromarray(data).save(path, **options)
    return path


def safe_name(stem: str) -> str:
    """``stem`` with every character but letters, digits, ``-``, ``_`` and ``.`` as ``_``.

    Examples
    --------
    >>> from thyronet.datasets._io import safe_name
    >>> safe_name("p 1/long")
    'p_1_long'
    """
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
