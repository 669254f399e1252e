"""The report's figures beyond the paper's: participant flow, nomograms, per-view occlusion.

:func:`extra_figures` returns them as :class:`FigureRecord`; a nomogram is drawn only
for a model whose chosen classifier is a logistic regression (others have no additive
linear predictor), and the occlusion figure only for a dual-channel DL_F model.
"""

from __future__ import annotations

import pandas as pd

from thyronet.explain import occlusion_by_view, plot_occlusion
from thyronet.metrics import nomogram
from thyronet.plotting import plot_nomogram
from thyronet.schema import COHORT_COLUMN
from thyronet.study._figures import _record
from thyronet.study._labels import COHORT_LABELS, MODEL_LABELS
from thyronet.study._results import FigureRecord, StudyResults
from thyronet.study._tripod import flow_figure

__all__ = ["extra_figures"]


def _nomograms(results: StudyResults, frame: pd.DataFrame) -> dict[str, FigureRecord]:
    train = frame[frame[COHORT_COLUMN] == "train"]
    out = {}
    for name in ("clinical", "combined"):
        model = results.models.get(name)
        if model is None:
            continue
        try:
            nomo = nomogram(model, train)
        except (TypeError, ValueError) as err:  # not a logistic regression / no ranges
            results.notes.append(f"No nomogram of {MODEL_LABELS[name]}: {err}")
            continue
        fig = plot_nomogram(nomo, title=MODEL_LABELS[name])
        fig.set_size_inches(7.5, max(3.0, 0.4 * len(nomo.scales) + 2.2))
        out[f"nomogram_{name}"] = _record(
            fig,
            f"nomogram_{name}",
            f"Nomogram of {MODEL_LABELS[name]}",
            "Points of each predictor (as rms::nomogram, ranges from the training cohort), "
            "their total, and the predicted probability of CLNM read off below it. The "
            "predictors are the features reaching the logistic regression after encoding"
            + (" and PCA of the deep features" if name == "combined" else "")
            + ".",
            "nomogram",
        )
    return out


def _occlusion(results: StudyResults, frame: pd.DataFrame) -> dict[str, FigureRecord]:
    try:
        table = occlusion_by_view(results.models["dl_f"], frame)
    except TypeError as err:  # no dual-channel CNN in DL_F
        results.notes.append(f"No per-view occlusion of {MODEL_LABELS['dl_f']}: {err}.")
        return {}
    results.statistics["occlusion"] = table
    fig = plot_occlusion(table, cohort_labels=COHORT_LABELS)
    return {
        "occlusion": _record(
            fig,
            "occlusion",
            "Per-view occlusion of the dual-channel model",
            "Mean absolute change in Model 3's predicted probability when one view's channel "
            "is replaced by its mean intensity (per patient and cohort; bars: 95% bootstrap "
            "CI). It shows how much the model relies on each view overall; it cannot show "
            "where in the view, nor whether that reliance is clinically meaningful, and for "
            "a model near chance it measures noise.",
            "dl",
        )
    }


def extra_figures(results: StudyResults, frame: pd.DataFrame) -> dict[str, FigureRecord]:
    """Participant flow, nomograms (logistic classifiers) and per-view occlusion of DL_F."""
    figures = {"participant_flow": flow_figure(results)}
    figures.update(_nomograms(results, frame))
    figures.update(_occlusion(results, frame))
    return figures
