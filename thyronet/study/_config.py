"""The study's settings: :class:`StudyConfig` (presets, TOML) and :class:`StudyError`.

A value is validated by the constraints of the estimator it is passed to (scikit-learn's
``_parameter_constraints``), so the study accepts exactly what the estimators accept.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from numbers import Integral, Real
from pathlib import Path
from typing import Any, ClassVar

import tomli_w
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    StrOptions,
    validate_parameter_constraints,
)

from thyronet.backbones import resolve_pretrained
from thyronet.cnn import SkorchCNN
from thyronet.fusion import DualChannelFuser
from thyronet.metrics import parse_threshold_rule
from thyronet.selection import LassoSelector, PValueSelector

__all__ = ["StudyConfig", "StudyError"]


class StudyError(ValueError):
    """The study cannot run: bad configuration, cohort or output folder."""


#: Config key -> (estimator, parameter) it is passed to; the estimator's constraint applies.
_ESTIMATOR_PARAMS: dict[str, tuple[type, str]] = {
    "backbone": (SkorchCNN, "backbone"),
    "pretrained": (SkorchCNN, "pretrained"),
    "image_size": (DualChannelFuser, "image_size"),
    "fusion": (DualChannelFuser, "strategy"),
    "roi_margin": (DualChannelFuser, "roi_margin"),
    "max_epochs": (SkorchCNN, "max_epochs"),
    "lr": (SkorchCNN, "lr"),
    "weight_decay": (SkorchCNN, "weight_decay"),
    "batch_size": (SkorchCNN, "batch_size"),
    "patience": (SkorchCNN, "patience"),
    "augment": (SkorchCNN, "augment"),
    "class_weight": (SkorchCNN, "class_weight"),
    "pvalue_alpha": (PValueSelector, "alpha"),
    "pvalue_test": (PValueSelector, "continuous_test"),
    "lasso_method": (LassoSelector, "method"),
    "lasso_cv": (LassoSelector, "cv"),
    "lasso_selection": (LassoSelector, "selection"),
    "lasso_max_features": (LassoSelector, "max_features"),
    "device": (SkorchCNN, "device"),
    "verbose": (SkorchCNN, "verbose"),
}

#: Constraints of the keys that no estimator takes as such.
_STUDY_CONSTRAINTS: dict[str, list] = {
    "early_stopping_on": [StrOptions({"validation", "train_split"})],
    "early_stopping_fraction": [Interval(Real, 0, 1, closed="neither")],
    "feature_cv": [Interval(Integral, 2, None, closed="left"), None],
    "pca_components": [Interval(Integral, 1, None, closed="left")],
    "classifiers": [list, tuple, None],
    "extra_columns": [list, tuple, None],
    "calibration_bins": [Interval(Integral, 2, None, closed="left")],
    "hl_groups": [Interval(Integral, 3, None, closed="left")],
    "gradcam_patients": [Interval(Integral, 0, None, closed="left")],
    "shap_max_samples": [Interval(Integral, 0, None, closed="left")],
    "optimism_bootstrap": [Interval(Integral, 0, None, closed="left")],
    "random_state": [Interval(Integral, None, None, closed="neither")],
}


def _check_value(key: str, value: Any) -> None:
    """Raise :class:`StudyError` naming ``key`` when ``value`` breaks its constraint."""
    if key == "threshold":
        try:
            parse_threshold_rule(value)
        except ValueError as err:
            raise StudyError(f"config key 'threshold' must be a threshold rule: {err}") from None
        return
    if key in _ESTIMATOR_PARAMS:
        estimator, param = _ESTIMATOR_PARAMS[key]
        constraints = estimator._parameter_constraints[param]
        name = f"config key {key!r} (passed to {estimator.__name__}({param}=...))"
    else:
        constraints, name = _STUDY_CONSTRAINTS[key], f"config key {key!r}"
    try:
        validate_parameter_constraints({key: constraints}, {key: value}, "StudyConfig")
    except InvalidParameterError as err:
        # scikit-learn's message, naming the key as the config file spells it
        message = str(err).replace(f"The {key!r} parameter of StudyConfig", name, 1)
        raise StudyError(message) from None


#: The settings that make the study follow the paper's protocol exactly.
PAPER_PROTOCOL: dict[str, Any] = {
    "early_stopping_on": "validation",
    "feature_cv": None,
    "threshold": "youden:train",
}


@dataclass
class StudyConfig:
    """Settings of :func:`run_study`.

    The defaults are the paper's settings (:meth:`paper`); :meth:`demo` is a
    CPU-friendly preset. A TOML file (:meth:`from_toml`) overrides any field;
    an unknown key is an error that lists the valid ones. Each value is checked
    against the ``_parameter_constraints`` of the estimator it is passed to
    (:class:`thyronet.SkorchCNN`, :class:`thyronet.DualChannelFuser`,
    :class:`thyronet.PValueSelector`, :class:`thyronet.LassoSelector`); the keys no
    estimator takes as such have the study's own constraints.

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
    early_stopping_on : {"train_split", "validation"}, default="train_split"
        Where the CNNs' early stopping watches the AUC: a stratified internal split
        of the training cohort (``early_stopping_fraction`` of it), so that the
        reported cohorts play no part in training; or ``"validation"``, the tuning
        cohort (the paper's protocol, which then also uses that cohort for the
        classifier choice and reports it).
    early_stopping_fraction : float, default=0.2
        Fraction of the training cohort held out for early stopping with
        ``early_stopping_on="train_split"``.
    feature_cv : int or None, default=5
        Cross-fitting folds of the combined model's deep features
        (:class:`thyronet.DeepFeatureExtractor` ``cv``): its PCA, filters, LASSO and
        classifier learn from out-of-fold features, each training patient's from a
        CNN fine-tuned without them (``feature_cv`` extra CNN fits); DL_F's CNN
        serves prediction. ``None``: the in-sample DL_F features (the paper's
        protocol).
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
    threshold : str or float, default="youden"
        Decision threshold of each model for the threshold metrics and the risk
        groups of ``thyronet predict``: ``"youden"`` (Youden's J on the validation,
        i.e. tuning, cohort's predictions), ``"sensitivity:0.90"`` (the highest
        threshold reaching that sensitivity there: the rule-out use) or
        ``"specificity:0.90"``; any of these ending ``":train"`` chooses on the
        training predictions instead (``"youden:train"``: the paper's protocol,
        apparent and optimistic); or one fixed probability. ``study.json``
        records each model's ``threshold_source``.
    extra_columns : list of str or None, default=None
        Cohort columns the models may read besides the two views, their ROI columns
        and the 13 clinical indicators (e.g. a plugin's extra views ``view_1``,
        ``view_1_roi``); nothing else reaches ``X``, and the label, ``cohort``,
        ``patient_id``, ``oracle_risk`` and ``truth_*`` never do.
    calibration_bins : int, default=10
        Bins of the calibration curves.
    hl_groups : int, default=10
        Groups of the Hosmer-Lemeshow test.
    gradcam_patients : int, default=6
        Patients in the Grad-CAM gallery (0: none).
    shap_max_samples : int, default=300
        Training patients explained by SHAP (0: no SHAP figures).
    optimism_bootstrap : int, default=200
        Bootstrap refits of Harrell's optimism correction of the clinical and
        combined models' training AUC and calibration slope (0: none; the demo 20).
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
    early_stopping_on: str = "train_split"
    early_stopping_fraction: float = 0.2
    feature_cv: int | None = 5
    pca_components: int = 64
    pvalue_alpha: float = 0.05
    pvalue_test: str = "mannwhitneyu"
    lasso_method: str = "lasso"
    lasso_cv: int = 5
    lasso_selection: str = "min"
    lasso_max_features: int | None = None
    classifiers: list[str] | None = None
    threshold: str | float = "youden"
    extra_columns: list[str] | None = None
    calibration_bins: int = 10
    hl_groups: int = 10
    gradcam_patients: int = 6
    shap_max_samples: int = 300
    optimism_bootstrap: int = 200
    random_state: int = 0
    device: str = "auto"
    verbose: int = 1

    #: Fields that do not change the fitted models (left out of the resume fingerprint).
    _NOT_MODEL: ClassVar[tuple[str, ...]] = (
        "threshold",
        "calibration_bins",
        "hl_groups",
        "gradcam_patients",
        "shap_max_samples",
        "optimism_bootstrap",
        "device",
        "verbose",
    )

    def __post_init__(self) -> None:
        for key in self.fields():
            _check_value(key, getattr(self, key))
        if self.classifiers is not None:
            if not self.classifiers or not all(isinstance(c, str) for c in self.classifiers):
                raise StudyError(
                    "config key 'classifiers' must be a non-empty "
                    f"list of registered classifier names. Got {self.classifiers!r} instead."
                )
            self.classifiers = list(self.classifiers)
        if self.extra_columns is not None:
            if not all(isinstance(c, str) for c in self.extra_columns):
                raise StudyError(
                    "config key 'extra_columns' must be a list of column names. "
                    f"Got {self.extra_columns!r} instead."
                )
            self.extra_columns = list(self.extra_columns)

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
    def paper_protocol(cls, **overrides: Any) -> StudyConfig:
        """The paper's preset with the paper's protocol, for exact reproduction.

        Early stopping on the validation cohort, in-sample deep features and Youden
        thresholds of the training predictions (optimistic: see ``docs/study.md``).

        Examples
        --------
        >>> from thyronet.study import StudyConfig
        >>> cfg = StudyConfig.paper_protocol()
        >>> cfg.early_stopping_on, cfg.feature_cv
        ('validation', None)
        """
        return cls.from_dict({**PAPER_PROTOCOL, **overrides})

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
            feature_cv=3,
            pca_components=16,
            gradcam_patients=4,
            shap_max_samples=200,
            optimism_bootstrap=20,
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
        values = {k: v for k, v in self.to_dict().items() if v is not None}
        header = "# thyronet study configuration (thyronet study --config FILE)\n"
        return header + tomli_w.dumps({"study": values})

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
            validation_fraction=self.early_stopping_fraction,
            device=self.device,
            random_state=self.random_state,
            verbose=1 if verbose >= 1 else 0,
        )

    def fingerprint(self) -> dict[str, Any]:
        """The settings that change the fitted models (compared when resuming)."""
        values = self.to_dict()
        return {k: v for k, v in values.items() if k not in self._NOT_MODEL}
