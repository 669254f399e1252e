"""A self-contained HTML report of a study (the public path of :mod:`thyronet.study`'s report).

:func:`render_report` and :func:`write_report` live in ``thyronet.study._report``
with their template ``thyronet/study/templates/report.html.j2``.
"""

from thyronet.study._report import render_report, write_report

__all__ = ["render_report", "write_report"]
