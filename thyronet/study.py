"""The paper's five-model study in one call: fit, evaluate, explain, report.

:func:`run_study` follows the protocol of Li et al. (2026): Models 1-5 (DL_L,
DL_C, DL_F, Combined, Clinical) are fitted on the ``train`` cohort, the
classifiers of Models 4 and 5 are chosen by AUC on the ``validation`` cohort,
and every model is evaluated on every cohort (``train``, ``validation`` and, when
present, the external ``test`` cohort). It returns a :class:`StudyResults` and,
with ``out_dir``, writes the paper's tables and figures, the fitted models and a
self-contained ``report.html``. See ``docs/study.md``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from thyronet.backbones import resolve_pretrained
from thyronet.schema import (
    CLINICAL_COLUMNS,
    COHORT_COLUMN,
    COHORTS,
    ID_COLUMN,
    LABEL_COLUMN,
    VIEW_COLUMNS,
    validate_cohort,
)

__all__ = [
    "MODEL_LABELS",
    "MODEL_NAMES",
    "FigureRecord",
    "StudyConfig",
    "StudyError",
    "StudyResults",
    "evaluate_predictions",
    "run_study",
]

MODEL_NAMES: tuple[str, ...] = ("dl_l", "dl_c", "dl_f", "combined", "clinical")
"""The five models, in the paper's numbering (Model 1 ... Model 5)."""

MODEL_LABELS: dict[str, str] = {
    "dl_l": "Model 1: DL_L",
    "dl_c": "Model 2: DL_C",
    "dl_f": "Model 3: DL_F",
    "combined": "Model 4: Combined",
    "clinical": "Model 5: Clinical",
}
"""Display names of the models in tables, legends and the report."""

COHORT_LABELS = {
    "train": "Training set",
    "validation": "Validation set",
    "test": "External test set",
}

CALIBRATION_MODELS = ("dl_f", "combined", "clinical")
"""Models of the calibration and decision-curve figures (the paper's Figure 5)."""


class StudyError(ValueError):
    """The study cannot run: bad configuration, cohort or output folder."""


# --------------------------------------------------------------------------- configuration
@dataclass
class StudyConfig:
    """Settings of :func:`run_study`.

    The defaults are the paper's settings (:meth:`paper`); :meth:`demo` is a
    CPU-friendly preset. A TOML file (:meth:`from_toml`) overrides any field;
    an unknown key is an error that lists the valid ones.

    Parameters
    ----------
    backbone : str, default="resnet101"
        Registered backbone of the three CNNs (``thyronet plugins`` lists them).
    pretrained : bool, str or "auto", default="auto"
        ImageNet weights: ``"auto"`` uses them when timm finds them in its local
        cache (no download is attempted) and trains from scratch otherwise;
        ``True`` requires them; ``False`` never; a path loads a weights file.
    image_size : int, default=224
        Side of the fused images, pixels.
    fusion : str, default="stack"
        Fusion strategy of DL_F and the combined model (registered name).
    roi_margin : float, default=0.0
        Extra margin around each ROI box, as a fraction of its size.
    max_epochs, lr, weight_decay, batch_size, patience : CNN training
        Passed to :class:`thyronet.SkorchCNN` (``patience``: epochs without a better
        early-stopping AUC, see ``early_stopping_on``).
    augment : bool, default=True
        Train-time augmentation of the CNNs.
    class_weight : {"balanced"} or None, default=None
        ``"balanced"`` weighs CLNM-positive patients by the class ratio in the CNN loss.
    early_stopping_on : {"validation", "train_split"}, default="validation"
        Where the CNNs' early stopping watches the AUC: the ``validation`` cohort
        (the paper's protocol uses it for every model choice; the external test
        cohort stays untouched) or a stratified 20 % split of the training cohort.
    pca_components : int, default=64
        PCA components of the deep features in the combined model.
    pvalue_alpha : float, default=0.05
        Univariate P-value filter (:class:`thyronet.PValueSelector`).
    pvalue_test : {"mannwhitneyu", "welch"}, default="mannwhitneyu"
        Test of continuous features.
    lasso_method : {"lasso", "logistic"}, default="lasso"
    lasso_cv : int, default=5
    lasso_selection : {"min", "1se"}, default="min"
    lasso_max_features : int or None, default=None
        LASSO step (:class:`thyronet.LassoSelector`).
    classifiers : list of str or None, default=None
        Candidate classifiers of Models 4 and 5 (registered names); ``None``:
        all registered (Logistic Regression, LightGBM, Naive Bayes).
    threshold : "youden" or float, default="youden"
        Decision threshold for accuracy, sensitivity, specificity and the risk
        groups of ``thyronet predict``: each model's Youden threshold on the
        training cohort, or one fixed probability.
    calibration_bins : int, default=10
        Bins of the calibration curves.
    hl_groups : int, default=10
        Groups of the Hosmer-Lemeshow test.
    gradcam_patients : int, default=6
        Patients in the Grad-CAM gallery (0: none).
    shap_max_samples : int, default=300
        Training patients explained by SHAP (0: no SHAP figures).
    random_state : int, default=0
        Seed of every random step.
    device : str, default="auto"
        Torch device; ``"auto"`` picks CUDA when present.
    verbose : int, default=1
        ``0`` silent; ``1`` one line per step, the CNNs' epoch tables and progress bars.

    Examples
    --------
    >>> from thyronet.study import StudyConfig
    >>> StudyConfig.paper().backbone, StudyConfig.demo().image_size
    ('resnet101', 96)
    >>> StudyConfig.from_dict({"max_epochs": 3}).max_epochs
    3
    """

    backbone: str = "resnet101"
    pretrained: bool | str = "auto"
    image_size: int = 224
    fusion: str = "stack"
    roi_margin: float = 0.0
    max_epochs: int = 30
    lr: float = 3e-4
    weight_decay: float = 1e-2
    batch_size: int = 32
    patience: int = 5
    augment: bool = True
    class_weight: str | None = None
    early_stopping_on: str = "validation"
    pca_components: int = 64
    pvalue_alpha: float = 0.05
    pvalue_test: str = "mannwhitneyu"
    lasso_method: str = "lasso"
    lasso_cv: int = 5
    lasso_selection: str = "min"
    lasso_max_features: int | None = None
    classifiers: list[str] | None = None
    threshold: str | float = "youden"
    calibration_bins: int = 10
    hl_groups: int = 10
    gradcam_patients: int = 6
    shap_max_samples: int = 300
    random_state: int = 0
    device: str = "auto"
    verbose: int = 1

    # fields that do not change the fitted models (left out of the resume fingerprint)
    _NOT_MODEL = (
        "threshold",
        "calibration_bins",
        "hl_groups",
        "gradcam_patients",
        "shap_max_samples",
        "device",
        "verbose",
    )

    def __post_init__(self) -> None:
        def need(ok: bool, key: str, what: str) -> None:
            if not ok:
                raise StudyError(f"config {key!r} must be {what}; got {getattr(self, key)!r}")

        def is_int(v) -> bool:
            return isinstance(v, int | np.integer) and not isinstance(v, bool)

        def is_num(v) -> bool:
            return isinstance(v, int | float | np.number) and not isinstance(v, bool)

        for key in (
            "backbone",
            "fusion",
            "device",
            "pvalue_test",
            "lasso_method",
            "lasso_selection",
        ):
            need(
                isinstance(getattr(self, key), str) and getattr(self, key),
                key,
                "a non-empty string",
            )
        for key, low in (
            ("image_size", 8),
            ("max_epochs", 1),
            ("batch_size", 1),
            ("patience", 1),
            ("pca_components", 1),
            ("lasso_cv", 2),
            ("calibration_bins", 2),
            ("hl_groups", 3),
            ("gradcam_patients", 0),
            ("shap_max_samples", 0),
            ("verbose", 0),
        ):
            need(
                is_int(getattr(self, key)) and getattr(self, key) >= low,
                key,
                f"an integer >= {low}",
            )
        need(is_int(self.random_state), "random_state", "an integer")
        for key in ("lr", "weight_decay", "roi_margin"):
            need(is_num(getattr(self, key)) and getattr(self, key) >= 0, key, "a number >= 0")
        need(self.lr > 0, "lr", "> 0")
        need(
            is_num(self.pvalue_alpha) and 0 < self.pvalue_alpha <= 1,
            "pvalue_alpha",
            "a number in (0, 1]",
        )
        need(isinstance(self.augment, bool), "augment", "true or false")
        need(self.class_weight in (None, "balanced"), "class_weight", '"balanced" or none')
        need(
            self.pretrained in (True, False, "auto") or isinstance(self.pretrained, str),
            "pretrained",
            'true, false, "auto" or a path to a weights file',
        )
        need(
            self.pvalue_test in ("mannwhitneyu", "welch"),
            "pvalue_test",
            '"mannwhitneyu" or "welch"',
        )
        need(
            self.early_stopping_on in ("validation", "train_split"),
            "early_stopping_on",
            '"validation" or "train_split"',
        )
        need(self.lasso_method in ("lasso", "logistic"), "lasso_method", '"lasso" or "logistic"')
        need(self.lasso_selection in ("min", "1se"), "lasso_selection", '"min" or "1se"')
        need(
            self.lasso_max_features is None
            or (is_int(self.lasso_max_features) and self.lasso_max_features >= 1),
            "lasso_max_features",
            "an integer >= 1 or absent",
        )
        if self.classifiers is not None:
            need(
                isinstance(self.classifiers, list | tuple)
                and len(self.classifiers) > 0
                and all(isinstance(c, str) for c in self.classifiers),
                "classifiers",
                "a non-empty list of registered classifier names",
            )
            self.classifiers = list(self.classifiers)
        if isinstance(self.threshold, str):
            need(self.threshold == "youden", "threshold", '"youden" or a probability')
        else:
            need(
                is_num(self.threshold) and 0 < self.threshold < 1,
                "threshold",
                '"youden" or a probability in (0, 1)',
            )

    # -- presets ----------------------------------------------------------------
    @classmethod
    def paper(cls, **overrides: Any) -> StudyConfig:
        """The paper's settings: ResNet101, 224 px, ImageNet weights where available.

        Examples
        --------
        >>> from thyronet.study import StudyConfig
        >>> cfg = StudyConfig.paper()
        >>> cfg.backbone, cfg.image_size, cfg.pca_components
        ('resnet101', 224, 64)
        """
        return cls.from_dict(overrides)

    @classmethod
    def demo(cls, **overrides: Any) -> StudyConfig:
        """CPU-friendly preset: the tiny ``test_resnet`` backbone at 96 px, from scratch.

        Its 96 deep features are compressed to 16 PCA components (64 of 96 would keep
        mostly noise).

        Examples
        --------
        >>> from thyronet.study import StudyConfig
        >>> cfg = StudyConfig.demo()
        >>> cfg.backbone, cfg.pretrained, cfg.max_epochs
        ('test_resnet', False, 40)
        """
        preset = dict(
            backbone="test_resnet",
            pretrained=False,
            image_size=96,
            max_epochs=40,
            lr=3e-3,
            batch_size=32,
            patience=12,
            class_weight="balanced",
            pca_components=16,
            gradcam_patients=4,
            shap_max_samples=200,
        )
        return cls.from_dict({**preset, **overrides})

    @classmethod
    def fields(cls) -> list[str]:
        """Names of the configuration keys.

        Examples
        --------
        >>> from thyronet.study import StudyConfig
        >>> "backbone" in StudyConfig.fields()
        True
        """
        return [f.name for f in dataclasses.fields(cls)]

    @classmethod
    def from_dict(
        cls, values: Mapping[str, Any], *, base: StudyConfig | None = None
    ) -> StudyConfig:
        """A configuration from a mapping (on top of ``base``, default the paper preset).

        Raises
        ------
        StudyError
            An unknown key (the message lists the valid keys) or a bad value.

        Examples
        --------
        >>> from thyronet.study import StudyConfig, StudyError
        >>> try:
        ...     StudyConfig.from_dict({"epochs": 3})
        ... except StudyError as err:
        ...     print(str(err).split(";")[0])
        unknown config key(s) ['epochs']
        """
        if not isinstance(values, Mapping):
            raise StudyError(
                f"a study configuration must be a mapping; got {type(values).__name__}"
            )
        valid = cls.fields()
        unknown = sorted(str(k) for k in values if k not in valid)
        if unknown:
            raise StudyError(f"unknown config key(s) {unknown}; valid keys: {', '.join(valid)}")
        start = dataclasses.asdict(base) if base is not None else {}
        return cls(**{**start, **dict(values)})

    @classmethod
    def from_toml(cls, path: str | os.PathLike, *, base: StudyConfig | None = None) -> StudyConfig:
        """Read a TOML file: keys at the top level or in a ``[study]`` table.

        Keys not in the file keep the values of ``base`` (default: the paper preset).

        Examples
        --------
        >>> import tempfile, pathlib
        >>> from thyronet.study import StudyConfig
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "study.toml"
        >>> _ = path.write_text('[study]\\nbackbone = "resnet18"\\nmax_epochs = 5\\n')
        >>> cfg = StudyConfig.from_toml(path)
        >>> cfg.backbone, cfg.max_epochs, cfg.image_size
        ('resnet18', 5, 224)
        """
        import tomllib

        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise StudyError(f"config file {str(path)!r} does not exist") from None
        except tomllib.TOMLDecodeError as err:
            raise StudyError(f"config file {str(path)!r} is not valid TOML: {err}") from None
        if set(data) == {"study"} and isinstance(data["study"], dict):
            data = data["study"]
        try:
            return cls.from_dict(data, base=base)
        except StudyError as err:
            raise StudyError(f"{path}: {err}") from None

    def to_dict(self) -> dict[str, Any]:
        """The configuration as a plain dict (JSON/TOML-friendly)."""
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        """The configuration as TOML text (``None`` values are left out: they are defaults).

        Examples
        --------
        >>> import tomllib
        >>> from thyronet.study import StudyConfig
        >>> cfg = StudyConfig.demo()
        >>> StudyConfig.from_dict(tomllib.loads(cfg.to_toml())["study"]) == cfg
        True
        """
        lines = ["# thyronet study configuration (thyronet study --config FILE)", "[study]"]
        for key, value in self.to_dict().items():
            if value is None:
                continue
            lines.append(f"{key} = {json.dumps(value)}")
        return "\n".join(lines) + "\n"

    def model_params(self, *, verbose: int | None = None) -> dict[str, Any]:
        """Fuser and CNN keyword arguments of the :mod:`thyronet.pipelines` builders."""
        verbose = self.verbose if verbose is None else verbose
        return dict(
            image_size=self.image_size,
            roi_margin=self.roi_margin,
            backbone=self.backbone,
            pretrained=resolve_pretrained(self.backbone, self.pretrained),
            max_epochs=self.max_epochs,
            lr=self.lr,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            patience=self.patience,
            augment=self.augment,
            class_weight=self.class_weight,
            device=self.device,
            random_state=self.random_state,
            verbose=1 if verbose >= 1 else 0,
        )

    def fingerprint(self) -> dict[str, Any]:
        """The settings that change the fitted models (compared when resuming)."""
        values = self.to_dict()
        return {k: v for k, v in values.items() if k not in self._NOT_MODEL}


# --------------------------------------------------------------------------- results
@dataclass
class FigureRecord:
    """One figure of the study: its title, caption and rendered PNG/SVG.

    Attributes
    ----------
    name : str
        File stem (``roc_test``).
    title, caption : str
        Shown in the report.
    png, svg : bytes
        The rendered images.
    section : str
        Report section the figure belongs to.
    paths : list of Path
        Files written (empty without ``out_dir``).
    """

    name: str
    title: str
    caption: str
    png: bytes
    svg: bytes
    section: str = "performance"
    paths: list[Path] = field(default_factory=list)


@dataclass
class StudyResults:
    """Everything :func:`run_study` produced.

    Attributes
    ----------
    config : StudyConfig
    models : dict of str to estimator
        Fitted models keyed like :data:`MODEL_NAMES`.
    model_status : dict of str to str
        ``"fitted"`` (in this run) or ``"loaded"`` (resumed from ``out_dir``).
    predictions : DataFrame
        One row per patient: ``patient_id``, ``cohort``, ``clnm`` and each
        model's predicted probability.
    thresholds : dict of str to float
        Decision threshold of each model.
    performance : DataFrame
        Index ``(model, cohort)``: ``n, n_positive, auc, auc_low, auc_high,
        "AUC (95% CI)", threshold, accuracy, sensitivity, specificity``.
    delong : DataFrame
        Pairwise paired DeLong tests per cohort: ``cohort, model_a, model_b,
        difference, ci_low, ci_high, z, p_value``.
    calibration : DataFrame
        Index ``(model, cohort)``: Hosmer-Lemeshow ``hl_statistic, hl_df,
        hl_p_value`` (df rule ``development`` on train, ``external`` elsewhere),
        ``brier, intercept, slope`` and ``note`` (why a test could not be computed,
        e.g. too few distinct probabilities; its values are then NaN).
    table1 : DataFrame
        The paper's Table 1 (:func:`thyronet.metrics.baseline_table`).
    classifier_scores : DataFrame
        Candidate classifiers of Models 4 and 5: ``model, classifier, score,
        rank, chosen, selected_by``.
    selected_features : DataFrame
        Features reaching the combined model's classifier: ``feature, source,
        p_value, lasso_coef``.
    feature_counts : dict
        ``deep_features``, ``pca_components``, ``clinical_features``,
        ``after_pvalue``, ``after_lasso`` of the combined model.
    figures : dict of str to FigureRecord
    notes : list of str
        Things the report should mention (skipped steps, fallbacks).
    timings : dict of str to float
        Seconds per step.
    out_dir : Path or None
    """

    config: StudyConfig
    models: dict[str, Any]
    model_status: dict[str, str]
    predictions: pd.DataFrame
    thresholds: dict[str, float]
    performance: pd.DataFrame
    delong: pd.DataFrame
    calibration: pd.DataFrame
    table1: pd.DataFrame
    classifier_scores: pd.DataFrame
    selected_features: pd.DataFrame
    feature_counts: dict[str, Any]
    figures: dict[str, FigureRecord] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    out_dir: Path | None = None

    @property
    def cohorts(self) -> list[str]:
        """Cohorts evaluated, in the paper's order."""
        present = set(self.predictions[COHORT_COLUMN])
        return [c for c in COHORTS if c in present]

    @property
    def chosen_classifiers(self) -> dict[str, str]:
        """Winning classifier of Models 4 and 5."""
        table = self.classifier_scores
        if table.empty:
            return {}
        chosen = table[table["chosen"]]
        return dict(zip(chosen["model"], chosen["classifier"], strict=True))

    def auc(self, model: str, cohort: str) -> float:
        """AUC of ``model`` on ``cohort``."""
        return float(self.performance.loc[(model, cohort), "auc"])

    def delong_p(self, model_a: str, model_b: str, cohort: str) -> float:
        """Paired DeLong P value of two models on one cohort."""
        d = self.delong
        hit = d[
            (d["cohort"] == cohort)
            & (
                ((d["model_a"] == model_a) & (d["model_b"] == model_b))
                | ((d["model_a"] == model_b) & (d["model_b"] == model_a))
            )
        ]
        if hit.empty:
            raise KeyError(f"no DeLong test of {model_a!r} vs {model_b!r} on {cohort!r}")
        return float(hit["p_value"].iloc[0])

    def metrics(self) -> dict[str, dict[str, dict[str, Any]]]:
        """``metrics.json``: ``{model: {cohort: {auc, auc_ci, accuracy, ...}}}``."""
        out: dict[str, dict[str, dict[str, Any]]] = {}
        for (model, cohort), row in self.performance.iterrows():
            cal = self.calibration.loc[(model, cohort)]
            out.setdefault(model, {})[cohort] = {
                "n": int(row["n"]),
                "n_positive": int(row["n_positive"]),
                "auc": float(row["auc"]),
                "auc_ci": [float(row["auc_low"]), float(row["auc_high"])],
                "threshold": float(row["threshold"]),
                "accuracy": _num(row["accuracy"]),
                "sensitivity": _num(row["sensitivity"]),
                "specificity": _num(row["specificity"]),
                "hosmer_lemeshow": {
                    "statistic": _num(cal["hl_statistic"]),
                    "df": (int(cal["hl_df"]) if np.isfinite(cal["hl_df"]) else None),
                    "p_value": _num(cal["hl_p_value"]),
                },
                "brier": _num(cal["brier"]),
                "calibration_intercept": _num(cal["intercept"]),
                "calibration_slope": _num(cal["slope"]),
            }
        return out


def _num(value) -> float | None:
    value = float(value)
    return value if np.isfinite(value) else None


# --------------------------------------------------------------------------- progress
class _Progress:
    def __init__(self, verbose: int) -> None:
        self.verbose = verbose
        self.timings: dict[str, float] = {}
        self.start = time.perf_counter()

    def say(self, message: str) -> None:
        if self.verbose:
            print(f"[thyronet study] {message}", file=sys.stderr, flush=True)

    @contextmanager
    def step(self, key: str, message: str) -> Iterator[None]:
        self.say(f"{message} ...")
        t0 = time.perf_counter()
        yield
        elapsed = time.perf_counter() - t0
        self.timings[key] = self.timings.get(key, 0.0) + elapsed
        self.say(f"{message}: done in {elapsed:.1f} s")


# --------------------------------------------------------------------------- cohort checks
def _check_cohort(cohort: pd.DataFrame) -> pd.DataFrame:
    if not isinstance(cohort, pd.DataFrame):
        raise StudyError(
            f"the cohort must be a pandas DataFrame (or a manifest loaded with "
            f"thyronet.datasets.load_cohort); got {type(cohort).__name__}"
        )
    if COHORT_COLUMN not in cohort.columns:
        raise StudyError(
            f"the cohort has no {COHORT_COLUMN!r} column: the study needs each "
            f"patient's cohort ({', '.join(COHORTS)})"
        )
    frame = validate_cohort(cohort)
    present = set(frame[COHORT_COLUMN])
    missing = [c for c in ("train", "validation") if c not in present]
    if missing:
        raise StudyError(
            f"the cohort has no {' and no '.join(repr(m) for m in missing)} patients; the study "
            f"fits on 'train' and chooses classifiers on 'validation' (cohorts found: "
            f"{sorted(present)})"
        )
    for name in COHORTS:
        labels = frame.loc[frame[COHORT_COLUMN] == name, LABEL_COLUMN]
        if len(labels) and labels.nunique() < 2:
            raise StudyError(
                f"cohort {name!r} has only one class ({LABEL_COLUMN} = {int(labels.iloc[0])} "
                f"for all {len(labels)} patients); AUCs need both classes"
            )
    if ID_COLUMN not in frame.columns:
        frame[ID_COLUMN] = [f"row{i}" for i in range(len(frame))]
    return frame


def _data_fingerprint(frame: pd.DataFrame) -> str:
    """SHA-256 of what the models are fitted on (train and validation rows)."""
    digest = hashlib.sha256()
    used = frame[frame[COHORT_COLUMN].isin(["train", "validation"])]
    columns = [ID_COLUMN, COHORT_COLUMN, LABEL_COLUMN, *CLINICAL_COLUMNS]
    digest.update(
        pd.util.hash_pandas_object(used[columns].astype(str), index=False).to_numpy().tobytes()
    )
    for view in VIEW_COLUMNS:
        for value in used[view]:
            if isinstance(value, np.ndarray):
                digest.update(np.ascontiguousarray(value).tobytes())
            else:
                digest.update(str(value).encode())
        roi = f"{view}_roi"
        if roi in used.columns:
            digest.update(str(list(used[roi])).encode())
    return digest.hexdigest()


# --------------------------------------------------------------------------- models
def _default_builders(config: StudyConfig) -> dict[str, Callable[..., Any]]:
    from thyronet.pipelines import make_clinical_model, make_combined_model, make_dl_model

    params = config.model_params()

    def tabular(model):
        return model.set_params(
            pvalue__alpha=config.pvalue_alpha,
            pvalue__continuous_test=config.pvalue_test,
            lasso__method=config.lasso_method,
            lasso__cv=config.lasso_cv,
            lasso__selection=config.lasso_selection,
            lasso__max_features=config.lasso_max_features,
            classify__candidates=config.classifiers,
        )

    def combined(dl_f):
        return tabular(make_combined_model(dl_f, n_components=config.pca_components))

    return {
        "dl_l": lambda: make_dl_model("longitudinal", **params),
        "dl_c": lambda: make_dl_model("transverse", **params),
        "dl_f": lambda: make_dl_model("fused", strategy=config.fusion, **params),
        "combined": combined,
        "clinical": lambda: tabular(make_clinical_model()),
    }


def _accepts_validation(estimator) -> bool:
    try:
        params = inspect.signature(estimator.fit).parameters
    except (TypeError, ValueError):
        return False
    return "X_val" in params and "y_val" in params


def _fit_model(
    model, X_train, y_train, X_val, y_val, *, use_validation: bool = True
) -> tuple[Any, str]:
    """Fit; a final step that takes ``X_val``/``y_val`` gets the validation cohort.

    The steps before it are fitted on the training cohort and transform the
    validation cohort (what ``Pipeline(transform_input=["X_val"])`` does with
    metadata routing, without changing global configuration).
    """
    from sklearn.pipeline import Pipeline

    if not use_validation:
        return model.fit(X_train, y_train), "fit"
    if isinstance(model, Pipeline) and _accepts_validation(model.steps[-1][1]):
        pre = Pipeline(model.steps[:-1], memory=model.memory)
        Z_train = pre.fit_transform(X_train, y_train)
        Z_val = pre.transform(X_val)
        name, final = model.steps[-1]
        final.fit(Z_train, y_train, X_val=Z_val, y_val=y_val)
        model.steps = [*pre.steps, (name, final)]
        return model, "validation"
    if _accepts_validation(model):
        return model.fit(X_train, y_train, X_val=X_val, y_val=y_val), "validation"
    return model.fit(X_train, y_train), "fit"


def _positive_proba(model, X) -> np.ndarray:
    proba = np.asarray(model.predict_proba(X))
    classes = list(getattr(model, "classes_", [0, 1]))
    column = classes.index(1) if 1 in classes else proba.shape[1] - 1
    return proba[:, column].astype(float)


# --------------------------------------------------------------------------- evaluation
def evaluate_predictions(
    predictions: pd.DataFrame,
    models: list[str] | None = None,
    *,
    threshold: str | float = "youden",
    hl_groups: int = 10,
) -> dict[str, Any]:
    """Performance, DeLong tests and calibration of predicted probabilities, per cohort.

    Parameters
    ----------
    predictions : DataFrame
        One row per patient with ``cohort``, ``clnm`` and one probability column
        per model.
    models : list of str, optional
        Probability columns to evaluate (default: the :data:`MODEL_NAMES` present).
    threshold : "youden" or float, default="youden"
        Youden thresholds are chosen on the ``train`` cohort.
    hl_groups : int, default=10
        Hosmer-Lemeshow groups.

    Returns
    -------
    dict
        ``performance``, ``delong``, ``calibration`` (DataFrames, see
        :class:`StudyResults`) and ``thresholds`` (dict).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from thyronet.study import evaluate_predictions
    >>> rng = np.random.default_rng(0)
    >>> y = rng.integers(0, 2, 300)
    >>> frame = pd.DataFrame({"cohort": np.repeat(["train", "validation", "test"], 100),
    ...                       "clnm": y,
    ...                       "a": np.clip(0.3 + 0.4 * y + rng.normal(0, .2, 300), .01, .99),
    ...                       "b": rng.uniform(0.01, 0.99, 300)})
    >>> out = evaluate_predictions(frame, ["a", "b"])
    >>> sorted(out)
    ['calibration', 'delong', 'performance', 'thresholds']
    >>> bool(out["performance"].loc[("a", "test"), "auc"] > 0.8)
    True
    """
    from thyronet.metrics import (
        calibration,
        calibration_intercept_slope,
        compare_models,
        evaluate_cohorts,
    )

    if models is None:
        models = [m for m in MODEL_NAMES if m in predictions.columns]
    missing = [m for m in models if m not in predictions.columns]
    if missing:
        raise StudyError(f"predictions have no column(s) {missing}")
    labels = predictions[LABEL_COLUMN].to_numpy().astype(int)
    groups = predictions[COHORT_COLUMN].to_numpy()
    scores = {m: predictions[m].to_numpy(dtype=float) for m in models}
    performance = evaluate_cohorts(
        labels, scores, groups, threshold=threshold, reference_cohort="train"
    )
    thresholds = {m: float(performance.loc[m]["threshold"].iloc[0]) for m in models}
    rows, cal_rows = [], []
    cohorts = [c for c in COHORTS if c in set(groups)] or list(pd.unique(groups))
    for cohort in cohorts:
        mask = groups == cohort
        if len(models) > 1:
            cmp = compare_models(labels[mask], {m: s[mask] for m, s in scores.items()})
            pairs = cmp.pairs.copy()
            pairs.insert(0, "cohort", cohort)
            rows.append(pairs)
        for m in models:
            prob = np.clip(scores[m][mask], 1e-6, 1 - 1e-6)
            sample = "development" if cohort == "train" else "external"
            row = {
                "model": m,
                "cohort": cohort,
                "hl_statistic": np.nan,
                "hl_df": np.nan,
                "hl_p_value": np.nan,
                "brier": float(np.mean((prob - labels[mask]) ** 2)),
                "intercept": np.nan,
                "slope": np.nan,
                "note": "",
            }
            try:
                cal = calibration(labels[mask], prob, n_groups=hl_groups, sample=sample)
            except ValueError as err:  # e.g. too few distinct probabilities for the HL groups
                row["note"] = str(err)
                try:
                    line = calibration_intercept_slope(labels[mask], prob)
                    row.update(intercept=line.intercept, slope=line.slope)
                except ValueError:
                    pass
            else:
                hl = cal.hosmer_lemeshow
                row.update(
                    hl_statistic=hl.statistic,
                    hl_df=hl.df,
                    hl_p_value=hl.p_value,
                    brier=cal.brier,
                    intercept=cal.intercept,
                    slope=cal.slope,
                )
            cal_rows.append(row)
    delong = (
        pd.concat(rows, ignore_index=True)
        if rows
        else pd.DataFrame(
            columns=[
                "cohort",
                "model_a",
                "model_b",
                "difference",
                "ci_low",
                "ci_high",
                "z",
                "p_value",
            ]
        )
    )
    calib = pd.DataFrame(cal_rows).set_index(["model", "cohort"])
    return {
        "performance": performance,
        "delong": delong,
        "calibration": calib,
        "thresholds": thresholds,
    }


def _walk(estimator) -> Iterator[Any]:
    """The estimator and every fitted sub-estimator (pipelines, column transformers, ...)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline

    yield estimator
    if isinstance(estimator, Pipeline):
        for _, step in estimator.steps:
            yield from _walk(step)
    elif isinstance(estimator, ColumnTransformer) and hasattr(estimator, "transformers_"):
        for _, sub, _ in estimator.transformers_:
            if not isinstance(sub, str):
                yield from _walk(sub)
    for attr in ("cnn_", "best_estimator_", "estimator"):  # estimator: FrozenEstimator
        sub = getattr(estimator, attr, None)
        if sub is not None and sub is not estimator:
            yield from _walk(sub)


def _classifier_table(models: dict[str, Any]) -> pd.DataFrame:
    from thyronet.classifier_selection import ClassifierSelector

    rows = []
    for name in ("combined", "clinical"):
        model = models.get(name)
        if model is None:
            continue
        selector = next(
            (
                s
                for s in _walk(model)
                if isinstance(s, ClassifierSelector) and hasattr(s, "scores_")
            ),
            None,
        )
        if selector is None:
            continue
        for clf, row in selector.scores_.iterrows():
            rows.append(
                {
                    "model": name,
                    "classifier": str(clf),
                    "score": row["mean_score"],
                    "rank": int(row["rank"]),
                    "chosen": clf == selector.best_name_,
                    "selected_by": selector.selected_by_,
                }
            )
    return pd.DataFrame(
        rows, columns=["model", "classifier", "score", "rank", "chosen", "selected_by"]
    )


def _feature_details(model) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Selected features of a combined-model pipeline and the counts at each stage."""
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.pipeline import Pipeline

    from thyronet.selection import LassoSelector, PValueSelector

    columns = ["feature", "source", "p_value", "lasso_coef"]
    counts: dict[str, Any] = {}
    if not isinstance(model, Pipeline):
        return pd.DataFrame(columns=columns), counts
    extractor = next((s for s in _walk(model) if hasattr(s, "feature_dim_")), None)
    if extractor is not None:
        counts["deep_features"] = int(extractor.feature_dim_)
    pca = next((s for s in _walk(model) if isinstance(s, PCA)), None)
    if pca is not None and hasattr(pca, "n_components_"):
        counts["pca_components"] = int(pca.n_components_)
    source: dict[str, str] = {}
    first = model.steps[0][1]
    if isinstance(first, ColumnTransformer) and hasattr(first, "output_indices_"):
        names = first.get_feature_names_out()
        for part, span in first.output_indices_.items():
            for feature in names[span]:
                source[str(feature)] = "deep" if part == "dl" else str(part)
        counts["clinical_features"] = sum(v == "clinical" for v in source.values())
    step_index = {type(step): i for i, (_, step) in enumerate(model.steps)}
    p_idx, l_idx = step_index.get(PValueSelector), step_index.get(LassoSelector)
    pvalues: dict[str, float] = {}
    if p_idx is not None:
        selector = model.steps[p_idx][1]
        before = model[:p_idx].get_feature_names_out()
        pvalues = dict(zip(map(str, before), selector.pvalues_, strict=True))
        counts["after_pvalue"] = int(selector.support_.sum())
    if l_idx is None:
        names = [str(n) for n in model[:-1].get_feature_names_out()]
        coefs = {}
    else:
        lasso = model.steps[l_idx][1]
        before = [str(n) for n in model[:l_idx].get_feature_names_out()]
        coef = np.asarray(lasso.coef_)
        coef = coef if coef.ndim == 1 else np.abs(coef).max(axis=0)
        coefs = dict(zip(before, coef, strict=True))
        names = [n for n, keep in zip(before, lasso.support_, strict=True) if keep]
        counts["after_lasso"] = len(names)
    rows = [
        {
            "feature": n,
            "source": source.get(n, "clinical" if not source else "other"),
            "p_value": pvalues.get(n, np.nan),
            "lasso_coef": coefs.get(n, np.nan),
        }
        for n in names
    ]
    table = pd.DataFrame(rows, columns=columns)
    if len(table):
        table = table.reindex(table["lasso_coef"].abs().sort_values(ascending=False).index)
    return table.reset_index(drop=True), counts


# --------------------------------------------------------------------------- figures
def _record(fig, name: str, title: str, caption: str, section: str) -> FigureRecord:
    import matplotlib.pyplot as plt

    from thyronet.plotting import figure_bytes

    record = FigureRecord(
        name, title, caption, figure_bytes(fig, "png"), figure_bytes(fig, "svg"), section
    )
    plt.close(fig)
    return record


def _performance_figures(results: StudyResults) -> dict[str, FigureRecord]:
    from thyronet.plotting import plot_calibration_curves, plot_decision_curves, plot_roc_curves

    cfg = results.config
    pred = results.predictions
    figures: dict[str, FigureRecord] = {}
    models = [m for m in MODEL_NAMES if m in pred.columns]
    cal_models = [m for m in CALIBRATION_MODELS if m in pred.columns]
    for cohort in results.cohorts:
        part = pred[pred[COHORT_COLUMN] == cohort]
        y = part[LABEL_COLUMN].to_numpy()
        label = COHORT_LABELS.get(cohort, cohort)
        fig = plot_roc_curves(
            y, {MODEL_LABELS[m]: part[m] for m in models}, title=f"{label} (n = {len(part)})"
        )
        figures[f"roc_{cohort}"] = _record(
            fig,
            f"roc_{cohort}",
            f"ROC curves, {label.lower()}",
            f"ROC curves of the five models in the {label.lower()}; the legend gives each "
            "model's AUC with its 95% DeLong confidence interval.",
            "roc",
        )
        fig = plot_calibration_curves(
            y,
            {MODEL_LABELS[m]: part[m] for m in cal_models},
            title=label,
            n_bins=cfg.calibration_bins,
            n_groups=cfg.hl_groups,
            sample="development" if cohort == "train" else "external",
        )
        figures[f"calibration_{cohort}"] = _record(
            fig,
            f"calibration_{cohort}",
            f"Calibration curves, {label.lower()}",
            f"Observed fraction of CLNM against predicted probability (quantile bins) in the "
            f"{label.lower()}; the legend gives the Hosmer-Lemeshow P value.",
            "calibration",
        )
        fig = plot_decision_curves(y, {MODEL_LABELS[m]: part[m] for m in cal_models}, title=label)
        figures[f"decision_{cohort}"] = _record(
            fig,
            f"decision_{cohort}",
            f"Decision curves, {label.lower()}",
            f"Net benefit against threshold probability in the {label.lower()}, with the "
            "treat-all and treat-none strategies.",
            "decision",
        )
    return figures


def _lasso_figures(model) -> dict[str, FigureRecord]:
    from thyronet.plotting import plot_lasso_cv, plot_lasso_path
    from thyronet.selection import LassoSelector

    lasso = next(
        (s for s in _walk(model) if isinstance(s, LassoSelector) and hasattr(s, "coef_path_")), None
    )
    if lasso is None:
        return {}
    idx = next(i for i, (_, s) in enumerate(model.steps) if s is lasso)
    names = model[:idx].get_feature_names_out()
    return {
        "lasso_path": _record(
            plot_lasso_path(lasso, feature_names=names),
            "lasso_path",
            "LASSO coefficient path",
            "Coefficients of the features that passed the P-value filter along the LASSO "
            "regularisation path; the dashed line marks the cross-validated alpha.",
            "combined",
        ),
        "lasso_cv": _record(
            plot_lasso_cv(lasso),
            "lasso_cv",
            "LASSO cross-validation",
            "Cross-validated error (mean and SD over folds) against the regularisation "
            "strength; the dashed line marks the chosen alpha.",
            "combined",
        ),
    }


def _explain_figures(
    results: StudyResults, frame: pd.DataFrame, progress: _Progress
) -> dict[str, FigureRecord]:
    """Grad-CAM gallery of DL_F and SHAP figures of the combined model (thyronet.explain)."""
    cfg = results.config
    figures: dict[str, FigureRecord] = {}
    try:
        from thyronet import explain
    except ImportError as err:
        results.notes.append(
            f"Grad-CAM and SHAP figures were skipped: thyronet.explain is not available ({err})."
        )
        return figures
    if cfg.gradcam_patients > 0 and "dl_f" in results.models:
        try:
            with progress.step("gradcam", "Grad-CAM gallery of DL_F"):
                figures.update(_gradcam_figures(explain, results, frame))
        except Exception as err:
            results.notes.append(f"The Grad-CAM gallery failed: {type(err).__name__}: {err}")
    if cfg.shap_max_samples > 0 and "combined" in results.models:
        try:
            with progress.step("shap", "SHAP of the combined model"):
                figures.update(_shap_figures(explain, results, frame))
        except Exception as err:
            results.notes.append(f"The SHAP figures failed: {type(err).__name__}: {err}")
    return figures


def _gallery_patients(results: StudyResults, frame: pd.DataFrame) -> pd.DataFrame:
    """Test (else validation) patients for the Grad-CAM gallery: top-risk positives, then
    lowest-risk negatives."""
    cfg = results.config
    pred = results.predictions
    cohort = "test" if "test" in results.cohorts else "validation"
    part = pred[pred[COHORT_COLUMN] == cohort]
    k = cfg.gradcam_patients
    pos = part[part[LABEL_COLUMN] == 1].sort_values("dl_f", ascending=False)
    neg = part[part[LABEL_COLUMN] == 0].sort_values("dl_f")
    n_pos = min(len(pos), (k + 1) // 2)
    chosen = pd.concat([pos.head(n_pos), neg.head(k - n_pos)])
    return frame.loc[chosen.index]


def _gradcam_figures(explain, results: StudyResults, frame: pd.DataFrame):
    patients = _gallery_patients(results, frame)
    fig = explain.plot_gradcam_gallery(
        results.models["dl_f"],
        patients,
        labels=patients[LABEL_COLUMN].tolist(),
        ids=patients[ID_COLUMN].tolist(),
    )
    return {
        "gradcam": _record(
            fig,
            "gradcam",
            "Grad-CAM of the dual-channel model",
            "Longitudinal ROI, transverse ROI and the Grad-CAM heatmap of Model 3 (DL_F) overlaid "
            "on each view, for the highest-risk CLNM-positive and lowest-risk negative patients "
            "of the held-out cohort (the paper's Figure 3).",
            "dl",
        )
    }


def _shap_figures(explain, results: StudyResults, frame: pd.DataFrame):
    cfg = results.config
    model = results.models["combined"]
    train = frame[frame[COHORT_COLUMN] == "train"]
    if len(train) > cfg.shap_max_samples:
        train = train.sample(cfg.shap_max_samples, random_state=cfg.random_state)
    explanation = explain.shap_explain(model, train)
    out = {}
    out["shap_summary"] = _record(
        explain.plot_shap_summary(explanation),
        "shap_summary",
        "SHAP summary of the combined model",
        "SHAP value of each feature reaching the combined model's classifier for each "
        "training patient, coloured by the feature's value (the paper's Figure 6).",
        "combined",
    )
    out["shap_bar"] = _record(
        explain.plot_shap_bar(explanation),
        "shap_bar",
        "Mean |SHAP| of the combined model",
        "Mean absolute SHAP value per feature over the training patients.",
        "combined",
    )
    highest = int(np.argmax(_positive_proba(model, train)))
    out["shap_waterfall"] = _record(
        explain.plot_shap_waterfall(explanation, highest),
        "shap_waterfall",
        "SHAP waterfall of one patient",
        f"Contributions to the prediction of training patient "
        f"{train[ID_COLUMN].iloc[highest]}, the highest predicted risk.",
        "combined",
    )
    return out


# --------------------------------------------------------------------------- writing
def _write_outputs(results: StudyResults, out: Path) -> None:
    from thyronet import __version__

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
        "model_status": results.model_status,
        "thresholds": results.thresholds,
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
    results.calibration.reset_index().to_csv(tables / "hosmer_lemeshow.csv", index=False)
    results.table1.to_csv(tables / "table1.csv", index=False)
    results.selected_features.to_csv(tables / "selected_features.csv", index=False)
    results.classifier_scores.to_csv(tables / "classifier_selection.csv", index=False)
    for record in results.figures.values():
        paths = []
        for fmt, data in (("png", record.png), ("svg", record.svg)):
            target = figures / f"{record.name}.{fmt}"
            target.write_bytes(data)
            paths.append(target)
        record.paths = paths


# --------------------------------------------------------------------------- the study
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
    from thyronet.metrics import baseline_table
    from thyronet.model_io import ModelFileError, load_model, save_model, verify_model

    config = StudyConfig.paper() if config is None else config
    if not isinstance(config, StudyConfig):
        raise StudyError(f"config must be a StudyConfig; got {type(config).__name__}")
    overrides = dict(models or {})
    unknown = sorted(set(overrides) - set(MODEL_NAMES))
    if unknown:
        raise StudyError(f"models has unknown key(s) {unknown}; valid: {list(MODEL_NAMES)}")
    frame = _check_cohort(cohort)
    progress = _Progress(config.verbose)
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)

    train = frame[frame[COHORT_COLUMN] == "train"]
    val = frame[frame[COHORT_COLUMN] == "validation"]
    y_train = train[LABEL_COLUMN].to_numpy().astype(int)
    y_val = val[LABEL_COLUMN].to_numpy().astype(int)
    counts = frame.groupby(COHORT_COLUMN)[LABEL_COLUMN].agg(["size", "sum"])
    progress.say(
        "cohorts: "
        + ", ".join(
            f"{c} {int(counts.loc[c, 'size'])} ({int(counts.loc[c, 'sum'])} CLNM)"
            for c in COHORTS
            if c in counts.index
        )
    )

    data_print = _data_fingerprint(frame)
    builders = None
    fitted: dict[str, Any] = {}
    status: dict[str, str] = {}
    thresholds: dict[str, float] = {}
    probabilities: dict[str, np.ndarray] = {}
    fit_route: dict[str, str] = {}

    for name in MODEL_NAMES:
        override = overrides.get(name)
        fingerprint = {
            "model": name,
            "config": config.fingerprint(),
            "data": data_print,
            "override": _describe(override),
        }
        if name == "combined":
            fingerprint["dl_f"] = status.get("dl_f_sha256")
        folder = out / "models" / name if out is not None else None
        model = None
        if folder is not None and resume and (folder / "model.json").exists():
            try:
                info = verify_model(folder)
            except ModelFileError as err:
                progress.say(f"{name}: the saved model is not usable ({err}); refitting")
            else:
                saved = info.get("metadata", {}).get("fingerprint")
                current = _json_roundtrip(fingerprint)
                if (
                    isinstance(saved, dict)
                    and saved.get("dl_f") != current.get("dl_f")
                    and {k: v for k, v in saved.items() if k != "dl_f"}
                    == {k: v for k, v in current.items() if k != "dl_f"}
                ):
                    progress.say(f"{name}: DL_F was refitted, so its features changed; refitting")
                elif saved != current:
                    raise StudyError(
                        f"{folder} holds a finished {name} model fitted with another "
                        f"configuration or cohort ({_differences(saved, fingerprint)}); use "
                        "another output folder, or resume=False (--no-resume) to refit and "
                        "replace it"
                    )
                else:
                    with progress.step(
                        f"load_{name}", f"{MODEL_LABELS[name]}: loading the finished model"
                    ):
                        model, _ = load_model(folder)
                    status[name] = "loaded"
        if model is None:
            if override is not None:
                model = (
                    override(fitted["dl_f"])
                    if (name == "combined" and callable(override) and not hasattr(override, "fit"))
                    else override
                )
            else:
                builders = builders or _default_builders(config)
                model = builders[name](fitted["dl_f"]) if name == "combined" else builders[name]()
            with progress.step(
                f"fit_{name}",
                f"{MODEL_LABELS[name]}: fitting on the training cohort ({len(train)} patients)",
            ):
                model, fit_route[name] = _fit_model(
                    model,
                    train,
                    y_train,
                    val,
                    y_val,
                    use_validation=(
                        name in ("combined", "clinical") or config.early_stopping_on == "validation"
                    ),
                )
            status[name] = "fitted"
        fitted[name] = model
        with progress.step(
            f"predict_{name}", f"{MODEL_LABELS[name]}: predicting {len(frame)} patients"
        ):
            probabilities[name] = _positive_proba(model, frame)
        from thyronet.metrics import youden_threshold

        in_train = (frame[COHORT_COLUMN] == "train").to_numpy()
        thresholds[name] = (
            youden_threshold(y_train, probabilities[name][in_train]).threshold
            if config.threshold == "youden"
            else float(config.threshold)
        )
        if folder is not None and status[name] == "fitted":
            with progress.step(f"save_{name}", f"{MODEL_LABELS[name]}: saving to {folder}"):
                save_model(
                    model,
                    folder,
                    name=name,
                    threshold=thresholds[name],
                    metadata={
                        "label": MODEL_LABELS[name],
                        "fingerprint": _json_roundtrip(fingerprint),
                        "threshold_rule": config.threshold,
                        "config": config.to_dict(),
                        "trained_on": {
                            "cohort": "train",
                            "n": len(train),
                            "n_positive": int(y_train.sum()),
                        },
                    },
                )
        if folder is not None and name == "dl_f":
            status["dl_f_sha256"] = verify_model(folder)["digest"]
    status.pop("dl_f_sha256", None)

    predictions = pd.DataFrame(
        {
            ID_COLUMN: frame[ID_COLUMN].to_numpy(),
            COHORT_COLUMN: frame[COHORT_COLUMN].to_numpy(),
            LABEL_COLUMN: frame[LABEL_COLUMN].to_numpy().astype(int),
            **probabilities,
        },
        index=frame.index,
    )
    with progress.step("evaluate", "Evaluating: AUCs, DeLong tests, calibration"):
        evaluation = evaluate_predictions(
            predictions, list(MODEL_NAMES), threshold=config.threshold, hl_groups=config.hl_groups
        )
        table1 = baseline_table(frame)
        classifier_scores = _classifier_table(fitted)
        try:
            selected, feature_counts = _feature_details(fitted["combined"])
        except Exception as err:
            selected, feature_counts = (
                pd.DataFrame(columns=["feature", "source", "p_value", "lasso_coef"]),
                {},
            )
            progress.say(f"selected features unavailable: {err}")
    results = StudyResults(
        config=config,
        models=fitted,
        model_status=status,
        predictions=predictions,
        thresholds=thresholds,
        performance=evaluation["performance"],
        delong=evaluation["delong"],
        calibration=evaluation["calibration"],
        table1=table1,
        classifier_scores=classifier_scores,
        selected_features=selected,
        feature_counts=feature_counts,
        out_dir=out,
    )
    for name in ("combined", "clinical"):
        if fit_route.get(name) == "fit":
            results.notes.append(
                f"{MODEL_LABELS[name]} does not choose its classifier on the "
                "validation cohort (its final step takes no X_val)."
            )
    with progress.step("figures", "Figures: ROC, calibration, decision curves, LASSO"):
        results.figures.update(_performance_figures(results))
        try:
            results.figures.update(_lasso_figures(fitted["combined"]))
        except Exception as err:
            results.notes.append(f"LASSO figures unavailable: {err}")
    results.figures.update(_explain_figures(results, frame, progress))
    results.timings = progress.timings
    results.timings["total"] = time.perf_counter() - progress.start
    if out is not None:
        from thyronet.report import write_report

        with progress.step("write", f"Writing tables, figures and report.html to {out}"):
            _write_outputs(results, out)
            write_report(results, out / "report.html")
        progress.say(f"finished in {results.timings['total']:.1f} s; open {out / 'report.html'}")
    return results


def _describe(override) -> str | None:
    """A stable description of a user-given model (for the resume fingerprint)."""
    if override is None:
        return None
    if hasattr(override, "fit"):
        return repr(override)
    return f"{getattr(override, '__module__', '?')}.{getattr(override, '__qualname__', '?')}"


def _json_roundtrip(value):
    return json.loads(json.dumps(value, default=str))


def _differences(saved, current) -> str:
    current = _json_roundtrip(current)
    if not isinstance(saved, dict):
        return "no fingerprint recorded"
    diffs = []
    for key in sorted(set(saved) | set(current)):
        if key == "config" and isinstance(saved.get(key), dict):
            a, b = saved[key], current.get(key, {})
            diffs += [
                f"{k}: {a.get(k)!r} -> {b.get(k)!r}"
                for k in sorted(set(a) | set(b))
                if a.get(k) != b.get(k)
            ]
        elif saved.get(key) != current.get(key):
            diffs.append(f"{key} differs")
    return "; ".join(diffs) or "unknown difference"
