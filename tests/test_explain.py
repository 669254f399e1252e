"""Grad-CAM and SHAP (thyronet.explain): targets, shapes, signs, explainer choice, figures."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.figure import Figure
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.naive_bayes import GaussianNB
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer

from thyronet import DualChannelFuser, SkorchCNN
from thyronet.datasets import make_ptmc_cohort
from thyronet.explain import (
    GradCAMExplainer,
    GradCAMResult,
    GradCAMWarning,
    ShapExplainer,
    gradcam,
    plot_gradcam,
    plot_gradcam_gallery,
    plot_shap_bar,
    plot_shap_summary,
    plot_shap_waterfall,
    shap_explain,
)
from thyronet.pipelines import make_combined_model, make_dl_model

TINY = {
    "image_size": 32,
    "backbone": "test_resnet",
    "max_epochs": 1,
    "batch_size": 16,
    "verbose": 0,
    "random_state": 0,
    "device": "cpu",
    "augment": False,
    "early_stopping": False,
    "validation_fraction": None,
}
CNN = {k: v for k, v in TINY.items() if k != "image_size"}


@pytest.fixture(scope="module")
def cohort():
    return make_ptmc_cohort(n_patients=40, image_size=32, random_state=0)


@pytest.fixture(scope="module")
def dl_model(cohort):
    return make_dl_model(**TINY).fit(cohort, cohort["clnm"])


@pytest.fixture(scope="module")
def cnns():
    """A 1-epoch CNN per channel count, fitted at 32 px (explained at 64 px: 2x2 maps)."""
    rng = np.random.default_rng(0)
    y = np.arange(8) % 2
    return {
        c: SkorchCNN(**{**CNN, "batch_size": 4}).fit(
            rng.random((8, c, 32, 32), dtype=np.float32), y
        )
        for c in (1, 2, 3)
    }


def _open_in_pyplot(fig):
    """Whether pyplot still holds ``fig`` (the figure functions close theirs)."""
    return any(plt.figure(n) is fig for n in plt.get_fignums())


def _images(n_channels, n=5, size=64, seed=1):
    return np.random.default_rng(seed).random((n, n_channels, size, size), dtype=np.float32)


def _reference_gradcam(cnn, X, sign):
    """Grad-CAM written out with torch autograd: ReLU(sum_k mean(d(sign*logit)/dA_k) A_k)."""
    module = cnn.net_.module_
    was_training = module.training
    module.eval()
    layer = module.model.get_submodule(cnn.backbone_.target_layer_name)
    store = {}
    handle = layer.register_forward_hook(lambda _m, _i, out: store.setdefault("a", out))
    try:
        logit = module(torch.from_numpy(X))[:, 0]
    finally:
        handle.remove()
        module.train(was_training)
    activations = store["a"]
    (grads,) = torch.autograd.grad((sign * logit).sum(), activations)
    cam = torch.relu((grads.mean((2, 3), keepdim=True) * activations).sum(1))

    def rescale(t):
        t = t - t.amin((1, 2), keepdim=True)
        return t / (1e-7 + t.amax((1, 2), keepdim=True))

    up = torch.nn.functional.interpolate(
        rescale(cam)[:, None], size=X.shape[2:], mode="bilinear", align_corners=False
    )[:, 0]
    return rescale(up).detach().numpy()


# --------------------------------------------------------------------------- Grad-CAM
@pytest.mark.parametrize("n_channels", [1, 2, 3])
def test_gradcam_shapes_range_and_backbone_layer(cnns, n_channels):
    cnn = cnns[n_channels]
    was_training = cnn.net_.module_.training
    explainer = GradCAMExplainer(cnn)
    assert explainer.target_layer_name == cnn.backbone_.target_layer_name == "layer4"
    assert explainer.target_layer is cnn.net_.module_.model.layer4
    X = _images(n_channels)
    heat = gradcam(cnn, X)
    assert heat.shape == (5, 64, 64) and heat.dtype == np.float32
    assert heat.min() >= 0.0 and heat.max() <= 1.0
    negative = gradcam(cnn, X, target="negative")
    # Every image has spatial evidence for one class or the other: its map reaches 1.
    assert np.allclose(np.maximum(heat.max((1, 2)), negative.max((1, 2))), 1.0, atol=1e-4)
    # Batching does not change the result.
    np.testing.assert_allclose(gradcam(cnn, X, batch_size=2), heat, atol=1e-5)
    assert cnn.net_.module_.training == was_training  # mode restored
    assert all(p.grad is None for p in cnn.net_.module_.parameters())


def test_gradcam_follows_the_logit_for_the_positive_class(cnns):
    cnn = cnns[2]
    X = _images(2, n=4)
    positive, negative = gradcam(cnn, X), gradcam(cnn, X, target="negative")
    np.testing.assert_allclose(positive, _reference_gradcam(cnn, X, +1), atol=1e-4)
    np.testing.assert_allclose(negative, _reference_gradcam(cnn, X, -1), atol=1e-4)
    assert not np.allclose(positive, negative)
    # Class labels name the same targets.
    np.testing.assert_array_equal(gradcam(cnn, X, target=cnn.classes_[1]), positive)
    np.testing.assert_array_equal(gradcam(cnn, X, target=cnn.classes_[0]), negative)


def _one_view_cohort(n, size=32, seed=0):
    """The label is a bright nodule in the longitudinal view; the transverse one is noise."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    rows = []
    for label in y:
        views = rng.normal(0.4, 0.1, (2, size, size)).astype(np.float32)
        if label:
            r, c = rng.integers(2, size - 12, 2)
            views[0, r : r + 10, c : c + 10] += 1.0
        rows.append({"longitudinal": views[0], "transverse": views[1], "clnm": int(label)})
    return pd.DataFrame(rows)


def test_gradcam_of_a_cnn_trained_on_one_view_is_highest_on_that_view():
    # Side-by-side fusion keeps the views apart in space, so the heatmap can say which one
    # the CNN used; split back per view, it must sit on the longitudinal view.
    data = _one_view_cohort(32)
    model = make_dl_model(strategy="mosaic", **{**TINY, "max_epochs": 4, "lr": 1e-2}).fit(
        data, data["clnm"]
    )
    assert (model.predict(data) == data["clnm"]).mean() >= 0.9
    positive = data["clnm"].to_numpy() == 1
    explainer = GradCAMExplainer(model)
    result = explainer.explain(data)
    assert result.heatmaps.shape == (32, 32, 64)  # the fused mosaic image
    assert result.view_heatmaps.shape == (32, 2, 32, 32)
    per_view = result.view_heatmaps.mean(axis=(2, 3))
    assert (per_view[positive, 0] > per_view[positive, 1]).mean() >= 0.9
    assert per_view[positive, 0].mean() > per_view[positive, 1].mean() + 0.5
    # The negative class's evidence is not on the nodule.
    against = explainer.explain(data, target="negative").view_heatmaps.mean(axis=(2, 3))
    assert against[positive, 0].mean() < per_view[positive, 0].mean() - 0.5


def test_gradcam_of_pipelines_and_the_figure_3_layout(cohort, dl_model):
    X = cohort.head(3)
    with pytest.warns(GradCAMWarning, match="1x1 activation map"):
        flat = gradcam(dl_model, X)  # layer4 of test_resnet is 1x1 at 32 px
    assert not flat.any()
    explainer = GradCAMExplainer(dl_model, target_layer="layer3")
    assert explainer.target_layer is dl_model["cnn"].net_.module_.model.layer3
    result = explainer.explain(X)
    assert result.heatmaps.shape == (3, 32, 32) and result.layer == "layer3"
    assert result.view_names == ("longitudinal", "transverse")
    np.testing.assert_array_equal(result.views, dl_model["fuse"].transform(X))
    inside = ~np.isnan(result.view_heatmaps)  # NaN only on each view's padding
    assert inside.mean() > 0.5
    for view in range(2):  # one heatmap over the fused image, laid on each view
        np.testing.assert_array_equal(
            result.view_heatmaps[:, view][inside[:, view]], result.heatmaps[inside[:, view]]
        )
    np.testing.assert_allclose(result.probabilities, dl_model.predict_proba(X)[:, 1], atol=1e-5)

    fig = plot_gradcam(result, index=1, label=1, patient_id="p-2")
    assert isinstance(fig, Figure) and not _open_in_pyplot(fig)
    images = [ax for ax in fig.axes if ax.get_images()]
    assert [ax.get_title() for ax in images] == [
        "Longitudinal ROI",
        "Transverse ROI",
        "Grad-CAM: longitudinal",
        "Grad-CAM: transverse",
    ]
    assert [len(ax.get_images()) for ax in images] == [1, 1, 2, 2]  # overlays on both views
    assert len(fig.axes) == 5 and "p-2" in fig.get_suptitle()

    fig = plot_gradcam_gallery(
        dl_model,
        cohort,
        labels=cohort["clnm"].tolist(),
        ids=cohort["patient_id"].tolist(),
        max_patients=3,
        target_layer="layer3",
    )
    assert len(fig.axes) == 3 * 4 + 1
    first = [ax.get_ylabel() for ax in fig.axes[:12:4]]
    assert all(pid in text for pid, text in zip(cohort["patient_id"][:3], first, strict=True))
    with pytest.raises(ValueError, match="labels has 2 entries for 3 patients"):
        plot_gradcam_gallery(result, labels=[0, 1])


def _padded_cohort(n=6, size=32, seed=0):
    """Wide ROIs (16 x 32 px): squaring them pads 8 rows above and 8 below."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "longitudinal": [rng.random((16, 32), dtype=np.float32) + 0.1 for _ in range(n)],
            "transverse": [rng.random((32, 16), dtype=np.float32) + 0.1 for _ in range(n)],
            "clnm": np.arange(n) % 2,
        }
    )


def test_gradcam_masks_the_padding_of_each_view(cnns):
    data = _padded_cohort()
    fuser = DualChannelFuser(image_size=32).fit(data)
    views = fuser.transform(data)
    # resize_square pads with the image's minimum: longitudinal rows, transverse columns
    assert np.all(views[:, 0, :8] == 0) and np.all(views[:, 1, :, :8] == 0)
    model = Pipeline([("fuse", fuser), ("cnn", cnns[2])])
    result = GradCAMExplainer(model, target_layer="layer3").explain(data)
    heat = result.view_heatmaps
    assert np.isnan(heat[:, 0, :8]).all() and np.isnan(heat[:, 0, 24:]).all()
    assert np.isnan(heat[:, 1, :, :8]).all() and np.isnan(heat[:, 1, :, 24:]).all()
    assert not np.isnan(heat[:, 0, 9:23]).any() and not np.isnan(heat[:, 1, :, 9:23]).any()
    # the joint map itself is not masked (it covers the fused input)
    assert not np.isnan(result.heatmaps).any()


def test_gradcam_per_view_is_the_map_of_each_view_alone(cohort, cnns):
    fuser = DualChannelFuser(image_size=64).fit(cohort)
    model = Pipeline([("fuse", fuser), ("cnn", cnns[2])])
    X = cohort.head(4)
    images = fuser.transform(X)
    result = GradCAMExplainer(model, target_layer="layer4").explain(X, per_view=True)
    assert result.per_view and result.view_heatmaps.shape == (4, 2, 64, 64)
    inside = ~np.isnan(result.view_heatmaps)
    for channel in range(2):  # the CAM with the other channel at its per-image mean
        alone = np.repeat(images.mean(axis=(2, 3), keepdims=True), 64, 2).repeat(64, 3)
        alone[:, channel] = images[:, channel]
        expected = _reference_gradcam(cnns[2], alone.astype(np.float32), +1)
        keep = inside[:, channel]
        np.testing.assert_allclose(
            result.view_heatmaps[:, channel][keep], expected[keep], atol=1e-4
        )
    joint = GradCAMExplainer(model, target_layer="layer4").explain(X)
    np.testing.assert_array_equal(result.heatmaps, joint.heatmaps)  # the joint map is kept
    np.testing.assert_array_equal(result.probabilities, joint.probabilities)
    assert not np.allclose(result.view_heatmaps[:, 0][inside[:, 0]], joint.heatmaps[inside[:, 0]])
    fig = plot_gradcam_gallery(result)
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert "Grad-CAM: transverse alone" in titles and "other(s) at their mean" in fig.get_suptitle()


def test_gradcam_per_view_needs_one_channel_per_view(cohort, cnns):
    fuser = DualChannelFuser(strategy="mosaic", image_size=32).fit(cohort)
    model = Pipeline([("fuse", fuser), ("cnn", cnns[1])])
    with pytest.raises(ValueError, match=r"one input channel per view.*'mosaic'"):
        GradCAMExplainer(model, target_layer="layer3").explain(cohort.head(2), per_view=True)


def test_gradcam_reaches_the_cnn_inside_the_combined_model(cohort, dl_model):
    combined = make_combined_model(dl_model, n_components=8).set_params(
        lasso__alphas=10, classify__cv=3, classify__candidates=["logistic_regression"]
    )
    combined.fit(cohort, cohort["clnm"])
    explainer = GradCAMExplainer(combined, target_layer="layer3")
    assert explainer.cnn.net_.module_ is dl_model["cnn"].net_.module_
    np.testing.assert_array_equal(
        explainer.heatmaps(cohort.head(4)), gradcam(dl_model, cohort.head(4), target_layer="layer3")
    )


def test_gradcam_single_view_model_overlays_only_its_view(cohort, cnns):
    fuser = DualChannelFuser(strategy="longitudinal", image_size=32).fit(cohort)
    model = Pipeline([("fuse", fuser), ("cnn", cnns[1])])
    result = GradCAMExplainer(model, target_layer="layer3").explain(cohort.head(2))
    assert result.view_names == ("longitudinal", "transverse")
    inside = ~np.isnan(result.view_heatmaps[:, 0])  # NaN only on the padding
    np.testing.assert_array_equal(result.view_heatmaps[:, 0][inside], result.heatmaps[inside])
    assert np.isnan(result.view_heatmaps[:, 1]).all()
    fig = plot_gradcam(result)
    assert len(fig.axes[3].get_images()) == 1  # the transverse view has no overlay
    assert "not used" in fig.axes[3].texts[0].get_text()


def test_gradcam_on_the_twostream_plugin_backbone():
    twostream = pytest.importorskip("thyronet_twostream")
    backbone = twostream.twostream_backbone("test_resnet")
    rng = np.random.default_rng(0)
    cnn = SkorchCNN(**{**CNN, "backbone": backbone, "batch_size": 4}).fit(
        rng.random((8, 2, 32, 32), dtype=np.float32), np.arange(8) % 2
    )
    explainer = GradCAMExplainer(cnn)
    assert explainer.target_layer_name == "views"
    assert explainer.target_layer is cnn.net_.module_.model.views
    X = _images(2, n=3)
    heat = explainer.heatmaps(X)
    assert heat.shape == (3, 64, 64) and 0.0 <= heat.min() and heat.max() <= 1.0
    np.testing.assert_allclose(heat, _reference_gradcam(cnn, X, +1), atol=1e-4)


def test_gradcam_finds_the_cnn_wherever_the_model_holds_it(cnns):
    """Nested pipelines, unions and frozen wrappers: the steps before the CNN prepare its input."""
    cnn = cnns[2]
    X = _images(2, n=3)
    flip = FunctionTransformer(lambda images: np.ascontiguousarray(images[..., ::-1])).fit(X)
    union = FeatureUnion([("deep", FrozenEstimator(cnn))])
    model = Pipeline([("outer", Pipeline([("flip", flip), ("union", union)]))])
    explainer = GradCAMExplainer(model)
    assert explainer.cnn is cnn and explainer.fuser is None
    np.testing.assert_array_equal(explainer.images(X), X[..., ::-1])
    np.testing.assert_allclose(explainer.heatmaps(X), gradcam(cnn, X[..., ::-1].copy()), atol=1e-6)


def test_gradcam_bad_input(cnns):
    with pytest.raises(NotFittedError):
        GradCAMExplainer(SkorchCNN("test_resnet"))
    with pytest.raises(TypeError, match="needs a fitted SkorchCNN"):
        GradCAMExplainer(LogisticRegression())
    with pytest.raises(ValueError, match=r"no layer 'layer9'.*layer4"):
        GradCAMExplainer(cnns[2], target_layer="layer9")
    with pytest.raises(ValueError, match="unknown Grad-CAM method"):
        GradCAMExplainer(cnns[2], method="magic")
    with pytest.raises(ValueError, match="target must be 'positive', 'negative'"):
        gradcam(cnns[2], _images(2, n=1), target="maybe")
    with pytest.raises(ValueError, match="channel"):
        gradcam(cnns[2], _images(3, n=1))
    with pytest.raises(TypeError, match="pass the patients X"):
        plot_gradcam_gallery(cnns[2])


# --------------------------------------------------------------------------- SHAP
@pytest.mark.parametrize(
    ("candidate", "kind", "pandas_output"),
    [
        ("lightgbm", "tree", True),
        ("logistic_regression", "linear", False),
        ("naive_bayes", "permutation", True),
    ],
)
def test_shap_explainer_follows_the_selected_classifier(
    cohort, dl_model, candidate, kind, pandas_output
):
    import shap

    model = make_combined_model(dl_model, n_components=8).set_params(
        lasso__alphas=10, classify__cv=3, classify__candidates=[candidate]
    )
    if pandas_output:
        model.set_output(transform="pandas")
    model.fit(cohort, cohort["clnm"])
    explainer = ShapExplainer(model, cohort)
    assert explainer.kind == kind and explainer.classifier_name == candidate
    expected = {
        "tree": shap.TreeExplainer,
        "linear": shap.LinearExplainer,
        "permutation": shap.PermutationExplainer,
    }[kind]
    assert isinstance(explainer.explainer, expected)
    explanation = explainer(cohort)
    names = list(model[:-1].get_feature_names_out())
    assert explanation.feature_names == names
    assert explanation.values.shape == (len(cohort), len(names))
    # Additivity: the values add up to the explained output, which is the model's log-odds.
    output = explainer.model_output(cohort)
    np.testing.assert_allclose(
        explanation.values.sum(1) + explanation.base_values, output, atol=1e-6
    )
    np.testing.assert_allclose(
        1 / (1 + np.exp(-output)), model.predict_proba(cohort)[:, 1], atol=1e-6
    )
    # display_data: the same features before standardisation.
    raw = pd.DataFrame(
        np.asarray(model[:1].transform(cohort), dtype=float),
        columns=model["features"].get_feature_names_out(),
    )
    np.testing.assert_allclose(explanation.display_data, raw[names].to_numpy(), atol=1e-6)


def test_permutation_values_match_the_exact_linear_ones():
    X, y = make_classification(n_samples=80, n_features=4, random_state=0)
    model = LogisticRegression().fit(X, y)
    linear = ShapExplainer(model, X)(X[:10])
    permutation = ShapExplainer(model, X, algorithm="permutation")(X[:10])
    np.testing.assert_allclose(permutation.values, linear.values, atol=1e-8)
    np.testing.assert_allclose(permutation.base_values, linear.base_values, atol=1e-8)
    assert permutation.feature_names == ["x0", "x1", "x2", "x3"]
    direct = shap_explain(model, X[:10], background=X)
    np.testing.assert_allclose(direct.values, linear.values)


def test_shap_figures(cohort):
    X, y = make_classification(n_samples=60, n_features=5, random_state=0)
    names = ["size", "capsular_contact_present", "ete_present", "pca0", "age"]
    frame = pd.DataFrame(X, columns=names)
    explanation = shap_explain(GaussianNB().fit(frame, y), frame)
    assert explanation.feature_names == names

    fig = plot_shap_summary(explanation)
    assert isinstance(fig, Figure) and not _open_in_pyplot(fig)
    ax = fig.axes[0]
    assert ax.get_xlabel().startswith("SHAP value")
    assert {t.get_text() for t in ax.get_yticklabels()} == set(names)
    assert fig.axes[1].get_ylabel() == "Feature value"  # the colour bar

    fig = plot_shap_bar(explanation, max_display=3)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    order = np.argsort(-np.abs(explanation.values).mean(0))
    assert set(labels) == {names[order[0]], names[order[1]], "Sum of 3 other features"}

    fig = plot_shap_waterfall(explanation, 7)
    assert fig.get_suptitle() == "SHAP waterfall (patient 7)"
    texts = {t.get_text() for t in fig.axes[0].get_yticklabels()}
    assert any(name in text for text in texts for name in names)
    with pytest.raises(IndexError, match="out of range"):
        plot_shap_waterfall(explanation, 60)
    with pytest.raises(TypeError, match=r"shap\.Explanation"):
        plot_shap_summary(explanation.values)


def test_shap_bad_input():
    X, y = make_classification(
        n_samples=60, n_features=4, n_informative=3, n_redundant=0, n_classes=3, random_state=0
    )
    with pytest.raises(ValueError, match="binary classifiers"):
        ShapExplainer(LogisticRegression().fit(X, y), X)
    y2 = (y > 0).astype(int)
    with pytest.raises(ValueError, match="algorithm='linear' needs a binary linear"):
        ShapExplainer(GaussianNB().fit(X, y2), X, algorithm="linear")
    with pytest.raises(ValueError, match="TreeExplainer cannot explain the classifier"):
        ShapExplainer(GaussianNB().fit(X, y2), X, algorithm="tree")
    with pytest.raises(ValueError, match="unknown SHAP algorithm"):
        ShapExplainer(GaussianNB().fit(X, y2), X, algorithm="deep")
    with pytest.raises(TypeError, match="predict_proba"):
        ShapExplainer(LinearRegression().fit(X, y2), X)
    with pytest.raises(NotFittedError):
        ShapExplainer(GaussianNB(), X)
    with pytest.raises(ValueError, match="expected 4 classifier features"):
        ShapExplainer(GaussianNB().fit(X, y2), X)(X[:, :3], transformed=True)


def test_gradcam_result_plots_without_a_model():
    views = np.random.default_rng(0).random((2, 2, 16, 16), dtype=np.float32)
    result = GradCAMResult(
        views[:, 0],
        views,
        ("longitudinal", "transverse"),
        views,
        np.array([0.9, 0.1]),
        "positive",
        "layer4",
    )
    fig = plot_gradcam_gallery(result, labels=[1, 0], ids=["a", "b"])
    assert fig.axes[0].get_ylabel().splitlines() == ["a", "CLNM +", "p = 0.90"]
    assert fig.axes[4].get_ylabel().splitlines() == ["b", "CLNM -", "p = 0.10"]
    with pytest.raises(IndexError):
        plot_gradcam(result, index=2)


def test_occlusion_by_view_measures_each_channel(dl_model, cohort):
    from thyronet.explain import occlusion_by_view, plot_occlusion

    table = occlusion_by_view(dl_model, cohort, n_bootstrap=20)
    views = list(dl_model.named_steps["fuse"].views_)
    assert list(pd.unique(table["view"])) == views
    assert (table["n"].groupby(table["view"]).sum() == len(cohort)).all()
    assert (
        (table["ci_low"] <= table["mean_abs_change"] + 1e-12)
        & (table["mean_abs_change"] <= table["ci_high"] + 1e-12)
    ).all()
    assert (table["mean_abs_change"] >= table["mean_change"].abs() - 1e-12).all()
    fig = plot_occlusion(table)
    assert len(fig.axes[0].patches) == len(table)


def test_occlusion_needs_one_channel_per_view(cohort):
    from thyronet.explain import occlusion_by_view

    model = make_dl_model(strategy="mosaic", **{**TINY, "max_epochs": 1}).fit(
        cohort, cohort["clnm"]
    )
    with pytest.raises(TypeError, match="one channel per view"):
        occlusion_by_view(model, cohort)
