"""Figures of the study: content checks (legend numbers, lines, labels, files)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest

from thyronet.metrics import hosmer_lemeshow, roc_auc_ci
from thyronet.plotting import (
    figure_bytes,
    plot_calibration_curves,
    plot_decision_curves,
    plot_fused_pairs,
    plot_lasso_cv,
    plot_lasso_path,
    plot_roc_curves,
    roc_legend_label,
    save_figure,
)
from thyronet.selection import LassoSelector


@pytest.fixture
def scored():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 2, 150)
    good = 1 / (1 + np.exp(-(2.0 * y - 1 + rng.normal(0, 1.0, 150))))
    weak = 1 / (1 + np.exp(-(0.5 * y - 0.25 + rng.normal(0, 1.0, 150))))
    yield y, {"combined": good, "clinical": weak}
    plt.close("all")


def _legend(fig):
    return [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_roc_legend_carries_each_models_auc_and_ci(scored):
    y, scores = scored
    fig = plot_roc_curves(y, scores, title="Test cohort")
    ax = fig.axes[0]
    texts = _legend(fig)
    assert len(texts) == 2
    for text, (name, s) in zip(texts, scores.items(), strict=True):
        ci = roc_auc_ci(y, s)
        assert text == roc_legend_label(name, ci.auc, ci.low, ci.high)
        assert f"{ci.auc:.3f}" in text and f"{ci.low:.3f}-{ci.high:.3f}" in text
    # one curve per model and the chance diagonal
    assert len(ax.get_lines()) == 3
    assert ax.get_xlabel() == "1 - Specificity" and ax.get_ylabel() == "Sensitivity"
    assert ax.get_title() == "Test cohort"
    # the curve of the first model ends at (1, 1) and starts at (0, 0)
    x, t = ax.get_lines()[0].get_data()
    assert (x[0], t[0]) == (0, 0) and (x[-1], t[-1]) == (1, 1)


def test_roc_draws_on_a_given_axes_and_checks_lengths(scored):
    y, scores = scored
    fig, axes = plt.subplots(1, 2)
    out = plot_roc_curves(y, scores, ax=axes[1])
    assert out is fig and len(axes[1].get_lines()) == 3 and not axes[0].get_lines()
    with pytest.raises(ValueError, match=r"scores\['bad'\] has 3 values but y_true has 150"):
        plot_roc_curves(y, {"bad": [0.1, 0.2, 0.3]})
    with pytest.raises(ValueError, match="0/1 labels"):
        plot_roc_curves(np.full(150, 2), scores)


def test_calibration_legend_has_hosmer_lemeshow_p(scored):
    y, probs = scored
    fig = plot_calibration_curves(y, probs, n_groups=10)
    texts = _legend(fig)
    assert texts[-1] == "Ideal"
    for text, (name, p) in zip(texts[:-1], probs.items(), strict=True):
        hl = hosmer_lemeshow(y, p, 10)
        expected = "< 0.001" if hl.p_value < 0.001 else f"= {hl.p_value:.3f}"
        assert text == f"{name} (Hosmer-Lemeshow P {expected})"
    ax = fig.axes[0]
    assert ax.get_xlabel() == "Predicted probability"
    # per model: the lowess curve and the quantile-bin dots; then the ideal line
    assert len(ax.get_lines()) == 2 * len(probs) + 1
    assert len(ax.collections) == len(probs)  # the bootstrap bands
    # the curves and points are (predicted, observed): inside the unit square
    for line in ax.get_lines()[:-1]:
        x, t = line.get_data()
        assert np.all((x >= 0) & (x <= 1)) and np.all((t >= 0) & (t <= 1))


def test_decision_curves_have_model_treat_all_treat_none(scored):
    y, probs = scored
    fig = plot_decision_curves(y, probs, thresholds=np.linspace(0.05, 0.6, 12))
    assert _legend(fig) == ["combined", "clinical", "Treat all", "Treat none"]
    lines = fig.axes[0].get_lines()
    # treat none is zero everywhere, treat all starts at prevalence - (1 - prev) * odds
    assert np.all(lines[3].get_ydata() == 0)
    pt = 0.05
    prev = y.mean()
    assert lines[2].get_ydata()[0] == pytest.approx(prev - (1 - prev) * pt / (1 - pt))
    assert fig.axes[0].get_ylabel() == "Net benefit"
    assert not fig.axes[0].collections  # no band unless asked


def test_decision_curves_draw_the_bootstrap_band(scored):
    from thyronet.metrics import decision_curve

    y, probs = scored
    pts = np.linspace(0.05, 0.6, 12)
    fig = plot_decision_curves(y, probs, thresholds=pts, n_bootstrap=100, random_state=0)
    bands = fig.axes[0].collections
    assert len(bands) == len(probs)
    curve = decision_curve(y, probs["combined"], pts, n_bootstrap=100, random_state=0)
    vertices = bands[0].get_paths()[0].vertices
    assert np.isclose(vertices[:, 1].max(), curve["net_benefit_high"].max())
    assert np.isclose(vertices[:, 1].min(), curve["net_benefit_low"].min())


def test_lasso_path_and_cv_figures_use_the_selectors_attributes():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6))
    y = (X[:, 0] + X[:, 2] + 0.3 * rng.normal(size=120) > 0).astype(int)
    sel = LassoSelector(alphas=25).fit(X, y)
    names = [f"f{j}" for j in range(6)]
    fig = plot_lasso_path(sel, feature_names=names)
    ax = fig.axes[0]
    coef_lines = [ln for ln in ax.get_lines() if ln.get_label() not in ("_alpha", "_zero")]
    assert len(coef_lines) == 6
    labelled = set(_legend(fig))
    kept = {names[j] for j in sel.get_support(indices=True)}
    assert {"f0", "f2"} <= labelled and labelled <= kept
    vline = next(ln for ln in ax.get_lines() if ln.get_label() == "_alpha")
    assert vline.get_xdata()[0] == pytest.approx(np.log10(sel.alpha_))
    assert f"{int(sel.support_.sum())} features kept" in ax.get_title()

    fig = plot_lasso_cv(sel)
    ax = fig.axes[0]
    assert ax.get_ylabel() == "CV mean squared error"
    assert f"chosen alpha = {sel.alpha_:.3g}" in _legend(fig)
    plt.close("all")
    with pytest.raises(ValueError, match="feature_names has 2 names"):
        plot_lasso_path(sel, feature_names=["a", "b"])


def test_lasso_figures_need_a_fitted_selector():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        plot_lasso_path(LassoSelector())


def test_save_figure_writes_png_and_svg(tmp_path, scored):
    y, scores = scored
    fig = plot_roc_curves(y, scores)
    paths = save_figure(fig, tmp_path / "figs" / "roc_test.png")
    assert [p.name for p in paths] == ["roc_test.png", "roc_test.svg"]
    assert paths[0].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = paths[1].read_text()
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    assert not plt.fignum_exists(fig.number)
    fig2 = plot_roc_curves(y, scores)
    with pytest.raises(FileExistsError, match=r"roc_test\.png already exists"):
        save_figure(fig2, tmp_path / "figs" / "roc_test", overwrite=False)
    with pytest.raises(ValueError, match="fmt must be"):
        figure_bytes(fig2, "jpg")


def test_fused_pairs_take_series_whatever_their_index():
    import pandas as pd

    fused = np.random.default_rng(0).random((3, 2, 8, 8)).astype(np.float32)
    frame = pd.DataFrame({"clnm": [1, 0, 1], "id": ["p7", "p8", "p9"]}, index=[40, 41, 42])
    fig = plot_fused_pairs(
        fused, labels=frame["clnm"], ids=frame["id"], channel_names=["longitudinal", "transverse"]
    )
    assert [ax.get_ylabel() for ax in fig.axes[::2]] == ["p7\nCLNM=1", "p8\nCLNM=0", "p9\nCLNM=1"]
    assert [ax.get_title() for ax in fig.axes[:2]] == ["longitudinal", "transverse"]
    with pytest.raises(ValueError, match="labels has 2 entries for 3 images"):
        plot_fused_pairs(fused, labels=[0, 1])
    plt.close("all")


def test_figure_img_embeds_a_png_and_escapes_its_text():
    import base64
    import re

    from thyronet.plotting import figure_img

    fig, _ = plt.subplots()
    tag = figure_img(fig, 'ROC "A" & B', width="50%", dpi=50)
    assert tag.startswith('<img alt="ROC &quot;A&quot; &amp; B" width="50%" src="data:image/png;')
    payload = re.search(r"base64,([^\"]+)", tag).group(1)
    assert base64.b64decode(payload) == figure_bytes(fig, "png", dpi=50)
    png = figure_bytes(fig, "png", dpi=50)
    assert figure_img(png, "x") == f'<img alt="x" src="data:image/png;base64,{payload}">'
    plt.close("all")


def test_nomogram_figure_has_one_scale_per_predictor():
    from sklearn.linear_model import LogisticRegression

    from thyronet.metrics import nomogram
    from thyronet.plotting import plot_nomogram

    rng = np.random.default_rng(0)
    X = np.column_stack([rng.normal(50, 10, 200), rng.integers(0, 2, 200), rng.normal(size=200)])
    y = (0.1 * (X[:, 0] - 50) + X[:, 1] + rng.normal(size=200) > 0.5).astype(int)
    nomo = nomogram(LogisticRegression(max_iter=1000).fit(X, y), X)
    fig = plot_nomogram(nomo, title="Nomogram")
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert labels == [
        "Points",
        *nomo.predictors.index,
        "Total points",
        "Linear predictor",
        "Probability",
    ]
    assert ax.get_title() == "Nomogram"
    texts = {t.get_text() for t in ax.texts}
    assert {"0", "100", "1"} <= texts  # the points ruler and the 0/1 predictor
    # the strongest predictor's scale spans the whole 0-100 ruler
    row = ax.get_lines()
    spans = [ln.get_xdata() for ln in row if ln.get_ydata()[0] == ln.get_ydata()[1] == 1]
    assert min(spans[0]) == pytest.approx(0.0) and max(spans[0]) <= 100 + 1e-9
