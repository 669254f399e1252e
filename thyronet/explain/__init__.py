"""Explaining the models: Grad-CAM for the CNN, SHAP for the combined model.

**Grad-CAM** (Selvaraju et al. 2017, through `pytorch-grad-cam`_) shows where a
fitted :class:`~thyronet.SkorchCNN` looks. It targets the layer that the CNN's
backbone entry names (``Backbone.target_layer_name``: ``layer4`` for ResNets,
``views`` for the two-stream plugin) and explains the single output logit: the
heatmap for the *positive* class (``classes_[1]``, CLNM) follows the gradient of
the logit, the one for the *negative* class the gradient of minus the logit. A
dual-channel model sees one fused image, so it has one heatmap over that image;
it is overlaid on each view (the paper's Figure 3):

- :func:`gradcam` -- heatmaps, float32 ``(n, H, W)`` in [0, 1];
- :class:`GradCAMExplainer` -- heatmaps with the patients' views, the heatmap
  laid on each view and the predicted probabilities (:class:`GradCAMResult`);
- :func:`plot_gradcam` (one patient) and :func:`plot_gradcam_gallery` (several).

**SHAP** (Lundberg & Lee 2017, through `shap`_) explains the combined (or the
clinical) model's classifier on the features that reach it, named as the
pipeline names them (``model[:-1].get_feature_names_out()``). The explainer
follows the classifier chosen by :class:`~thyronet.ClassifierSelector`:
:class:`shap.TreeExplainer` for LightGBM (and other tree ensembles),
:class:`shap.LinearExplainer` for logistic regression (and other linear models),
and the model-agnostic :class:`shap.PermutationExplainer` for naive Bayes and any
other classifier. Values are in log-odds of the positive class (probability for
tree ensembles that average probabilities, such as random forests):

- :func:`shap_explain` -- a :class:`shap.Explanation` (usable with shap's plots);
- :class:`ShapExplainer` -- the explainer itself (``kind``, ``model_output``...);
- :func:`plot_shap_summary` (beeswarm, the paper's Figure 6),
  :func:`plot_shap_bar` and :func:`plot_shap_waterfall` (one patient).

Every figure function returns a :class:`matplotlib.figure.Figure` (closed in
pyplot, so loops do not accumulate open figures; ``fig.savefig`` works).

**Occlusion per view** of a dual-channel model (``stack`` fusion, one channel per
view): :func:`occlusion_by_view` replaces one view by its mean intensity and reports
the mean absolute change in predicted probability per cohort; :func:`plot_occlusion`
draws it. It shows how much the model relies on each view, not where.

The modules: ``_route`` finds the CNN inside a fitted model, ``_gradcam``
computes the heatmaps, ``_shap`` the SHAP values, ``_plots`` draws the figures.

.. _pytorch-grad-cam: https://github.com/jacobgil/pytorch-grad-cam
.. _shap: https://shap.readthedocs.io
"""

from thyronet.explain._gradcam import (
    GRADCAM_METHODS,
    GradCAMExplainer,
    GradCAMResult,
    GradCAMWarning,
    gradcam,
)
from thyronet.explain._occlusion import occlusion_by_view, plot_occlusion
from thyronet.explain._plots import (
    plot_gradcam,
    plot_gradcam_gallery,
    plot_shap_bar,
    plot_shap_summary,
    plot_shap_waterfall,
)
from thyronet.explain._shap import SHAP_ALGORITHMS, ShapExplainer, shap_explain

__all__ = [
    "GRADCAM_METHODS",
    "SHAP_ALGORITHMS",
    "GradCAMExplainer",
    "GradCAMResult",
    "GradCAMWarning",
    "ShapExplainer",
    "gradcam",
    "occlusion_by_view",
    "plot_gradcam",
    "plot_gradcam_gallery",
    "plot_occlusion",
    "plot_shap_bar",
    "plot_shap_summary",
    "plot_shap_waterfall",
    "shap_explain",
]
