"""The paper's five-model study in one call: :func:`run_study`.

Fits (or loads, when resuming) each model, predicts every patient, evaluates,
draws the figures and writes the outputs and the report. The pieces live beside
it: :mod:`._fit` (builders, one fit), :mod:`._resume` (saved-model reuse),
:mod:`._tables`, :mod:`._figures`, :mod:`._report`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from thyronet import __version__
from thyronet.metrics import (
    baseline_table,
    choose_threshold,
    evaluate_predictions,
    format_baseline_table,
    parse_threshold_rule,
)
from thyronet.model_io import load_model, save_model, verify_model
from thyronet.schema import CENTER_COLUMN, COHORT_COLUMN, COHORTS, ID_COLUMN, LABEL_COLUMN
from thyronet.study._config import StudyConfig, StudyError
from thyronet.study._extra_figures import extra_figures
from thyronet.study._figures import (
    _gradcam_figures,
    _lasso_figures,
    _performance_figures,
    _shap_figures,
)
from thyronet.study._fit import (
    TrainingInputs,
    _check_cohort,
    _check_training_splits,
    _default_builders,
    _fit_model,
    _positive_proba,
    cross_fitted,
    feature_columns,
)
from thyronet.study._interrupt import interrupts_stop_the_study
from thyronet.study._labels import COHORT_LABELS, MODEL_LABELS, MODEL_NAMES
from thyronet.study._model_card import write_model_cards
from thyronet.study._preflight import preflight
from thyronet.study._progress import _Progress
from thyronet.study._report import write_report
from thyronet.study._results import StudyResults
from thyronet.study._resume import _data_fingerprint, _model_fingerprint, _saved_model
from thyronet.study._statistics import add_statistics, write_statistics_tables
from thyronet.study._tables import _classifier_table, _feature_details, _per_center_table
from thyronet.study._tripod import tripod_table

__all__ = ["run_study"]

#: What each cohort is used for (``study.json``).
COHORT_ROLES = {
    "train": "fitting (CNNs, their early-stopping split, PCA, filters, LASSO, classifiers)",
    "validation": "tuning (classifier choice; threshold; CNN early stopping only with "
    'early_stopping_on = "validation", the paper\'s protocol)',
    "test": "evaluation only",
}


def run_study(
    cohort: pd.DataFrame,
    config: StudyConfig | None = None,
    out_dir: str | os.PathLike | None = None,
    *,
    resume: bool = True,
    models: Mapping[str, Any] | None = None,
) -> StudyResults:
    """Fit, evaluate and explain the paper's five models; write tables, figures and a report.

    Protocol (Li et al. 2026): every model is fitted on the ``train`` cohort; the
    classifiers of the combined and clinical models are chosen by AUC on the
    ``validation`` cohort (:class:`thyronet.ClassifierSelector` with ``X_val``);
    the combined model reuses the fitted DL_F network for its deep features;
    every model is evaluated on every cohort.

    Parameters
    ----------
    cohort : DataFrame
        A cohort with a ``cohort`` column holding ``train``, ``validation`` and
        (optionally) ``test`` (:func:`thyronet.datasets.load_cohort`,
        :func:`thyronet.datasets.make_ptmc_cohort`).
    config : StudyConfig, optional
        Default :meth:`StudyConfig.paper`.
    out_dir : str or path-like, optional
        Output folder: ``metrics.json``, ``study.json``, ``config.toml``,
        ``predictions.csv``, ``tables/*.csv``, ``figures/*.png|svg``,
        ``models/<name>/`` and ``report.html``. Without it nothing is written.
    resume : bool, default=True
        Load models already finished in ``out_dir/models/`` (valid metadata and
        checksum, same configuration and training data) instead of refitting
        them. A finished model from another configuration or cohort is an error
        unless ``resume=False``, which refits and replaces every model.
    models : mapping of str to estimator, optional
        Replace some of the five default models (keys from :data:`MODEL_NAMES`) by
        unfitted estimators that take the cohort frame as ``X``. ``"combined"``
        may map to a callable taking the fitted DL_F model.

    Returns
    -------
    StudyResults

    Raises
    ------
    StudyError
        No ``train`` or ``validation`` cohort, a cohort with one class, a bad
        configuration, or a finished model in ``out_dir`` that does not match.

    Examples
    --------
    >>> from sklearn.compose import make_column_transformer
    >>> from sklearn.linear_model import LogisticRegression
    >>> from sklearn.pipeline import make_pipeline
    >>> from thyronet.datasets import make_ptmc_cohort
    >>> from thyronet.study import StudyConfig, run_study
    >>> cohort = make_ptmc_cohort(n_patients=120, image_size=16, random_state=0)
    >>> numeric = lambda: make_pipeline(
    ...     make_column_transformer(("passthrough", ["age", "size", "aspect_ratio"])),
    ...     LogisticRegression())
    >>> results = run_study(cohort, StudyConfig.demo(verbose=0, shap_max_samples=0,
    ...                                               gradcam_patients=0),
    ...                     models={m: numeric() for m in ("dl_l", "dl_c", "dl_f", "combined",
    ...                                                    "clinical")})
    >>> sorted(results.metrics()) == sorted(["dl_l", "dl_c", "dl_f", "combined", "clinical"])
    True
    """
    config, overrides = _check_arguments(config, models)
    data = _Cohorts.of(_check_cohort(cohort), config.extra_columns)
    progress = _Progress(config.verbose)
    out = Path(out_dir) if out_dir is not None else None
    preflight(data.frame, config, out, say=progress.say)  # fails fast, before any training
    _check_training_splits(config, data.y_train)
    progress.say(data.summary())
    with interrupts_stop_the_study():  # SIGTERM stops training like Ctrl-C; nothing is saved
        fits = _fit_all(data, config, overrides, out, resume, progress)
    results = _evaluate(data, config, fits, out, progress)
    with progress.step("statistics", "Calibration, optimism correction, NRI/IDI"):
        add_statistics(results, data.frame, n_bootstrap=config.optimism_bootstrap)
    _add_figures(results, data.frame, progress)  # the models see results.feature_columns
    with progress.step("extra_figures", "Participant flow, nomograms, per-view occlusion"):
        results.figures.update(extra_figures(results, data.frame))
        results.statistics["tripod"] = tripod_table(results, data.frame)
    results.timings = progress.timings
    results.timings["total"] = progress.total()
    if out is not None:
        with progress.step("write", f"Writing tables, figures and report.html to {out}"):
            _write_outputs(results, out)
            write_statistics_tables(results, out / "tables")
            write_model_cards(results, out)
            write_report(results, out / "report.html")
        progress.say(f"finished in {results.timings['total']:.1f} s; open {out / 'report.html'}")
    return results


def _check_arguments(
    config: StudyConfig | None, models: Mapping[str, Any] | None
) -> tuple[StudyConfig, dict[str, Any]]:
    config = StudyConfig.paper() if config is None else config
    if not isinstance(config, StudyConfig):
        raise StudyError(f"config must be a StudyConfig; got {type(config).__name__}")
    overrides = dict(models or {})
    unknown = sorted(set(overrides) - set(MODEL_NAMES))
    if unknown:
        raise StudyError(f"models has unknown key(s) {unknown}; valid: {list(MODEL_NAMES)}")
    return config, overrides


@dataclass
class _Cohorts:
    """The checked cohort frame, the models' ``X`` (its allowed feature columns only) and
    its training and validation parts."""

    frame: pd.DataFrame
    X: pd.DataFrame
    train: pd.DataFrame
    y_train: np.ndarray
    val: pd.DataFrame
    y_val: np.ndarray
    in_train: np.ndarray  # boolean mask of the training rows of ``frame``

    @classmethod
    def of(cls, frame: pd.DataFrame, extra_columns=None) -> _Cohorts:
        X = frame[feature_columns(frame, extra_columns)]
        in_train = (frame[COHORT_COLUMN] == "train").to_numpy()
        in_val = (frame[COHORT_COLUMN] == "validation").to_numpy()
        return cls(
            frame,
            X,
            X[in_train],
            frame.loc[in_train, LABEL_COLUMN].to_numpy().astype(int),
            X[in_val],
            frame.loc[in_val, LABEL_COLUMN].to_numpy().astype(int),
            in_train,
        )

    def summary(self) -> str:
        counts = self.frame.groupby(COHORT_COLUMN)[LABEL_COLUMN].agg(["size", "sum"])
        return "cohorts: " + ", ".join(
            f"{c} {int(counts.loc[c, 'size'])} ({int(counts.loc[c, 'sum'])} CLNM)"
            for c in COHORTS
            if c in counts.index
        )


@dataclass
class _Fits:
    """Each model, whether it was fitted or loaded, its threshold and probabilities."""

    models: dict[str, Any] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    thresholds: dict[str, float] = field(default_factory=dict)
    threshold_sources: dict[str, str] = field(default_factory=dict)
    probabilities: dict[str, np.ndarray] = field(default_factory=dict)
    routes: dict[str, str] = field(default_factory=dict)
    training_inputs: dict[str, TrainingInputs] = field(default_factory=dict)
    #: models whose training-cohort predictions come from out-of-fold deep features
    cross_fitted: set[str] = field(default_factory=set)
    #: cross-fitted models whose out-of-fold training inputs were not available
    in_sample_apparent: set[str] = field(default_factory=set)


def _fit_all(
    data: _Cohorts,
    config: StudyConfig,
    overrides: dict[str, Any],
    out: Path | None,
    resume: bool,
    progress: _Progress,
) -> _Fits:
    """Load or fit the five models in order, predict every patient, save what was fitted."""
    fits = _Fits()
    data_print = _data_fingerprint(data.frame)
    dl_f_digest = None
    rule = parse_threshold_rule(config.threshold)
    chosen_on = (data.frame[COHORT_COLUMN] == (rule.cohort or "train")).to_numpy()
    y_chosen = data.frame[LABEL_COLUMN].to_numpy().astype(int)[chosen_on]
    for name in MODEL_NAMES:
        override = overrides.get(name)
        fingerprint = _model_fingerprint(name, config, data_print, override, dl_f_digest)
        folder = out / "models" / name if out is not None else None
        model, status, route, inputs = _load_or_fit(
            name, fingerprint, folder if resume else None, config, override, fits, data, progress
        )
        fits.models[name], fits.status[name] = model, status
        if route is not None:
            fits.routes[name] = route
        with progress.step(
            f"predict_{name}", f"{MODEL_LABELS[name]}: predicting {len(data.frame)} patients"
        ):
            fits.probabilities[name] = _positive_proba(model, data.X)
            _apparent_from_fit_inputs(name, model, inputs, fits, data)
        try:
            chosen = choose_threshold(y_chosen, fits.probabilities[name][chosen_on], rule)
        except ValueError as err:
            raise StudyError(f"{MODEL_LABELS[name]}: {err}") from None
        fits.thresholds[name], fits.threshold_sources[name] = chosen.threshold, chosen.source
        if folder is not None and status == "fitted":
            with progress.step(f"save_{name}", f"{MODEL_LABELS[name]}: saving to {folder}"):
                train = fits.probabilities[name][data.in_train]
                apparent = train if name in fits.cross_fitted else None
                _save(name, model, folder, fingerprint, chosen, config, data, apparent)
        if folder is not None and name == "dl_f":
            dl_f_digest = verify_model(folder)["digest"]
    return fits


def _apparent_from_fit_inputs(
    name: str, model: Any, inputs: Any, fits: _Fits, data: _Cohorts
) -> None:
    """Training-cohort probabilities of a cross-fitted model from what its ``fit`` used.

    ``predict_proba`` of the training patients would run them through the CNN fitted
    on all of them (features that have memorised their labels) into a classifier that
    learned from out-of-fold features: neither the model's fit nor a new patient. As
    for scikit-learn's ``TargetEncoder``, the training patients' (apparent)
    predictions are those of the classifier on the out-of-fold features it was
    fitted on. A model loaded from disk brings them in its metadata.
    """
    if not cross_fitted(model):
        return
    in_train = data.in_train
    if isinstance(inputs, TrainingInputs):
        fits.training_inputs[name] = inputs
        train = _positive_proba(model.steps[-1][1], inputs.final_step)
    elif isinstance(inputs, list | np.ndarray) and len(inputs) == int(in_train.sum()):
        train = np.asarray(inputs, dtype=float)  # saved with the model
    else:  # fitted without the study's step-by-step route, or saved without them
        fits.in_sample_apparent.add(name)
        return
    fits.probabilities[name][in_train] = train
    fits.cross_fitted.add(name)


def _load_or_fit(
    name: str,
    fingerprint: dict[str, Any],
    folder: Path | None,
    config: StudyConfig,
    override: Any,
    fits: _Fits,
    data: _Cohorts,
    progress: _Progress,
) -> tuple[Any, str, str | None, Any]:
    """Model ``name``, loaded from ``folder`` when finished there, else built and fitted.

    ``folder`` is ``None`` without an output folder or with ``resume=False``: always fit.
    A user-given ``override`` replaces the default builder (for ``"combined"`` it may
    be a callable taking the fitted DL_F model).

    Returns the model, ``"loaded"`` or ``"fitted"``, how it was fitted
    (``"validation"``: its final step chose on the validation cohort; ``"fit"``), and
    what its fit saw of the training cohort (:class:`TrainingInputs`; for a loaded
    model the training probabilities saved with it, or ``None``).
    """
    if folder is not None:
        load, why = _saved_model(folder, fingerprint, name)
        if why is not None:
            progress.say(why)
        if load:
            with progress.step(f"load_{name}", f"{MODEL_LABELS[name]}: loading the finished model"):
                model, info = load_model(folder)
            saved = info.get("metadata", {}).get("training_probabilities")
            return model, "loaded", None, saved
    if override is None:
        build = _default_builders(config)[name]
        model = build(fits.models["dl_f"]) if name == "combined" else build()
    elif name == "combined" and callable(override) and not hasattr(override, "fit"):
        model = override(fits.models["dl_f"])
    else:
        model = override
    with progress.step(
        f"fit_{name}",
        f"{MODEL_LABELS[name]}: fitting on the training cohort ({len(data.train)} patients)",
    ):
        model, route, inputs = _fit_model(
            model,
            data.train,
            data.y_train,
            data.val,
            data.y_val,
            use_validation=(
                name in ("combined", "clinical") or config.early_stopping_on == "validation"
            ),
        )
    return model, "fitted", route, inputs


def _save(
    name: str,
    model: Any,
    folder: Path,
    fingerprint: dict[str, Any],
    threshold: Any,
    config: StudyConfig,
    data: _Cohorts,
    training_probabilities: np.ndarray | None = None,
) -> None:
    extra = (
        {}
        if training_probabilities is None
        else {"training_probabilities": [float(p) for p in training_probabilities]}
    )
    save_model(
        model,
        folder,
        name=name,
        threshold=threshold.threshold,
        metadata={
            "label": MODEL_LABELS[name],
            "fingerprint": fingerprint,
            "threshold_rule": config.threshold,
            "threshold_source": threshold.source,
            "config": config.to_dict(),
            "trained_on": {
                "cohort": "train",
                "n": len(data.train),
                "n_positive": int(data.y_train.sum()),
            },
            **extra,
        },
    )


def _evaluate(
    data: _Cohorts, config: StudyConfig, fits: _Fits, out: Path | None, progress: _Progress
) -> StudyResults:
    """Every statistic and table of the study (no figures yet)."""
    frame = data.frame
    predictions = pd.DataFrame(
        {
            ID_COLUMN: frame[ID_COLUMN].to_numpy(),
            COHORT_COLUMN: frame[COHORT_COLUMN].to_numpy(),
            LABEL_COLUMN: frame[LABEL_COLUMN].to_numpy().astype(int),
            **fits.probabilities,
        },
        index=frame.index,
    )
    with progress.step("evaluate", "Evaluating: AUCs, DeLong tests, calibration"):
        evaluation = evaluate_predictions(
            predictions, list(MODEL_NAMES), threshold=fits.thresholds, hl_groups=config.hl_groups
        )
        delong = evaluation["delong"]
        delong.insert(1, "kind", np.where(delong["cohort"] == "train", "apparent", "held-out"))
        table1 = baseline_table(frame)
        classifier_scores = _classifier_table(fits.models)
        selected, feature_counts = _feature_details(fits.models["combined"])
    results = StudyResults(
        config=config,
        models=fits.models,
        model_status=fits.status,
        predictions=predictions,
        thresholds=fits.thresholds,
        threshold_sources=fits.threshold_sources,
        performance=evaluation["performance"],
        delong=delong,
        calibration=evaluation["calibration"],
        table1=table1,
        classifier_scores=classifier_scores,
        selected_features=selected,
        feature_counts=feature_counts,
        out_dir=out,
        feature_columns=list(data.X.columns),
        training_inputs=dict(fits.training_inputs),
        cross_fitted=sorted(fits.cross_fitted),
    )
    if CENTER_COLUMN in frame.columns:
        results.per_center = _per_center_table(predictions, frame[CENTER_COLUMN], results.cohorts)
    if results.cross_fitted:
        names = " and ".join(MODEL_LABELS[m] for m in results.cross_fitted)
        results.notes.append(
            f"Training-cohort (apparent) predictions of {names} come from the out-of-fold "
            f"deep features (feature_cv = {config.feature_cv}) its classifier was fitted on, "
            "not from the CNN fitted on all training patients, which has seen their labels."
        )
    for name in sorted(fits.in_sample_apparent):
        results.notes.append(
            f"{MODEL_LABELS[name]} cross-fits its deep features, but the out-of-fold features "
            "its classifier was fitted on were not available (a model fitted outside the "
            "study's route or saved without them): its training-cohort (apparent) numbers "
            "come from the CNN fitted on all training patients and are optimistic."
        )
    for name in ("combined", "clinical"):
        if fits.routes.get(name) == "fit":
            results.notes.append(
                f"{MODEL_LABELS[name]} does not choose its classifier on the "
                "validation cohort (its final step takes no X_val)."
            )
    return results


def _add_figures(results: StudyResults, frame: pd.DataFrame, progress: _Progress) -> None:
    cfg = results.config
    with progress.step("figures", "Figures: ROC, calibration, decision curves, LASSO"):
        results.figures.update(_performance_figures(results))
        results.figures.update(_lasso_figures(results.models["combined"]))
    if cfg.gradcam_patients > 0:
        with progress.step("gradcam", "Grad-CAM gallery of DL_F"):
            results.figures.update(_gradcam_figures(results, frame))
    if cfg.shap_max_samples > 0:
        with progress.step("shap", "SHAP of the combined model"):
            results.figures.update(_shap_figures(results, frame))


def _write_outputs(results: StudyResults, out: Path) -> None:
    tables = out / "tables"
    figures = out / "figures"
    tables.mkdir(parents=True, exist_ok=True)
    figures.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(
        json.dumps(results.metrics(), indent=2, allow_nan=False) + "\n"
    )
    (out / "config.toml").write_text(results.config.to_toml())
    study = {
        "thyronet_version": __version__,
        "config": results.config.to_dict(),
        "cohort_roles": COHORT_ROLES,
        "feature_cv": results.config.feature_cv,
        "apparent_from_out_of_fold_features": results.cross_fitted,
        "feature_columns": results.feature_columns,
        "early_stopping_on": results.config.early_stopping_on,
        "model_status": results.model_status,
        "thresholds": results.thresholds,
        "threshold_source": results.threshold_sources,
        "chosen_classifiers": results.chosen_classifiers,
        "feature_counts": results.feature_counts,
        "selected_features": results.selected_features["feature"].tolist(),
        "timings_s": {k: round(v, 2) for k, v in results.timings.items()},
        "notes": results.notes,
    }
    (out / "study.json").write_text(json.dumps(study, indent=2, default=str) + "\n")
    results.predictions.to_csv(out / "predictions.csv", index=False)
    perf = results.performance.reset_index()
    perf.to_csv(tables / "performance.csv", index=False)
    auc_wide = results.performance["AUC (95% CI)"].unstack("cohort")
    auc_wide = auc_wide.reindex(
        index=[m for m in MODEL_NAMES if m in auc_wide.index], columns=results.cohorts
    )
    auc_wide.to_csv(tables / "auc.csv")
    results.delong.to_csv(tables / "delong.csv", index=False)
    if len(results.per_center):
        results.per_center.to_csv(tables / "per_center.csv", index=False)
    results.calibration.reset_index().to_csv(tables / "hosmer_lemeshow.csv", index=False)
    format_baseline_table(results.table1, group_labels=COHORT_LABELS).to_csv(
        tables / "table1.csv", index=False
    )
    results.table1.to_csv(tables / "table1_long.csv", index=False)
    results.selected_features.to_csv(tables / "selected_features.csv", index=False)
    results.classifier_scores.to_csv(tables / "classifier_selection.csv", index=False)
    for record in results.figures.values():
        paths = []
        for fmt, data in (("png", record.png), ("svg", record.svg)):
            target = figures / f"{record.name}.{fmt}"
            target.write_bytes(data)
            paths.append(target)
        record.paths = paths
