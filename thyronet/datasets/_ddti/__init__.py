"""DDTI, a public thyroid ultrasound database, read into the cohort schema.

DDTI (Pedraza et al., Proc. SPIE 9287, 2015) has one XML file per case
(``xml/<case>.xml``: age, sex, composition, echogenicity, margins,
calcifications, TI-RADS and one nodule outline per image) and its images
(``images/<case>_<k>.jpg``). Many of its frames are *dual-panel*: the scanner's
split screen shows two B-mode views of the nodule side by side. :func:`load_ddti`
finds the seam of such frames from the pixels, splits them into two views,
decides which view is longitudinal and which transverse from the nodule
outlines, and returns one row per case in the cohort schema.

How each step works (the constants below are the knobs):

- **Exact duplicates.** The md5 of every image file's bytes is computed; of a
  group of identical files the first in (case number, image number) order is
  kept and the others are dropped before anything else happens.
- **Seam.** Within the central band of the frame (``SEAM_BAND``) the column
  boundary with the strongest jump between neighbouring columns, relative to
  the typical jump around it, is the candidate seam. The frame is dual-panel
  when that ratio is at least ``SEAM_MIN_SCORE``. On the shared DDTI copy the
  ratio is >= 2.34 on every split-screen frame and <= 1.60 on every other
  frame, and the seam falls between columns 279|280 (129 frames), 314|315
  (21), 276|277 (2) or 282|283 (1).
- **Polygons.** Each polygon belongs to the half holding its x-range; outlines
  that overshoot the seam by at most ``SEAM_TOLERANCE`` pixels (the annotators'
  freehand strokes do, in six frames) are clamped to their half. A polygon
  reaching further across makes the frame unusable as a pair. When a half has
  several polygons the largest (by area) is the nodule.
- **ROI.** ``(x0, y0, x1, y1)`` with ``x1``/``y1`` exclusive, so
  ``image[y0:y1, x0:x1]`` is the polygon's bounding box, in the half's pixel
  coordinates.
- **Views.** See :func:`load_ddti`, "Which half is which".
"""

from thyronet.datasets._ddti._build import DDTIReport
from thyronet.datasets._ddti._load import load_ddti
from thyronet.datasets._ddti._parse import (
    CASE_FIELDS,
    CENTER,
    IMAGE_SUFFIXES,
    LABELS,
    SEAM_BAND,
    SEAM_MIN_SCORE,
    SEAM_TOLERANCE,
    SINGLE_VIEW_ELONGATION,
    TIE_RATIO,
    TIRADS_BENIGN,
    TIRADS_MALIGNANT,
    TIRADS_VALUES,
    DDTIError,
    DDTIWarning,
    find_seam,
)

__all__ = [
    "CASE_FIELDS",
    "CENTER",
    "IMAGE_SUFFIXES",
    "LABELS",
    "SEAM_BAND",
    "SEAM_MIN_SCORE",
    "SEAM_TOLERANCE",
    "SINGLE_VIEW_ELONGATION",
    "TIE_RATIO",
    "TIRADS_BENIGN",
    "TIRADS_MALIGNANT",
    "TIRADS_VALUES",
    "DDTIError",
    "DDTIReport",
    "DDTIWarning",
    "find_seam",
    "load_ddti",
]
