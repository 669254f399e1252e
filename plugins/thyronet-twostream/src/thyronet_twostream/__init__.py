"""thyronet plugin: a two-stream late-fusion CNN backbone.

Installed, it registers backbones with thyronet's plugin manager (entry point
``twostream`` in the group ``thyronet``) that :class:`thyronet.SkorchCNN` trains
like any other:

=========================  ==============  ========================================
name                       trunk (timm)    features (V views)
=========================  ==============  ========================================
``twostream_resnet101``    resnet101       V x 2048 (the paper's backbone as trunk)
``twostream_resnet50``     resnet50        V x 2048
``twostream_resnet18``     resnet18        V x 512
``twostream_test_resnet``  test_resnet     V x 96 (tiny, for tests)
=========================  ==============  ========================================

Every view (a channel of the fused image) goes through the same trunk; the
pooled per-view features are concatenated (the penultimate features that
:class:`thyronet.DeepFeatureExtractor` returns) and a linear head classifies them.
Grad-CAM targets the ``views`` layer (the per-view maps side by side in channels).
:func:`twostream_backbone` makes an entry for any other timm trunk.

Examples
--------
>>> import numpy as np
>>> from thyronet import SkorchCNN
>>> X = np.random.default_rng(0).random((8, 2, 32, 32), dtype=np.float32)
>>> cnn = SkorchCNN("twostream_test_resnet", max_epochs=1, batch_size=4,
...                 validation_fraction=None, early_stopping=False, verbose=0,
...                 random_state=0).fit(X, np.arange(8) % 2)
>>> cnn.feature_dim_
192
"""

from __future__ import annotations

import functools
from importlib import metadata

from thyronet.backbones import Backbone
from thyronet.hookspecs import hookimpl

from thyronet_twostream.model import TwoStreamNet, ViewConcat, build_twostream, load_weights_file

try:
    __version__ = metadata.version("thyronet-twostream")
except metadata.PackageNotFoundError:  # pragma: no cover - used from a source tree
    __version__ = "0.0.0"

__all__ = [
    "GRADCAM_LAYER",
    "TWOSTREAM_BACKBONES",
    "TwoStreamNet",
    "ViewConcat",
    "__version__",
    "build_twostream",
    "load_weights_file",
    "thyronet_register_backbones",
    "twostream_backbone",
]

GRADCAM_LAYER = "views"
"""The Grad-CAM target of every two-stream network (a :class:`ViewConcat`)."""

# ImageNet grey-level statistics: the average of the RGB mean/std, used for every view.
_MEAN = (0.449,)
_STD = (0.226,)


def twostream_backbone(trunk: str, name: str | None = None,
                       description: str | None = None) -> Backbone:
    """A :class:`thyronet.backbones.Backbone` entry for a two-stream network on ``trunk``.

    Parameters
    ----------
    trunk : str
        A timm architecture (``timm.list_models()``).
    name : str or None
        Registry name; ``"twostream_<trunk>"`` by default.
    description : str or None
        One line for ``thyronet plugins``.

    Returns
    -------
    Backbone
        Its ``feature_dim`` is left unset: the feature size is the number of views
        times the trunk's (``Backbone.num_features`` reports it for 3 views; a built
        model's ``num_features`` for its own view count).

    Examples
    --------
    >>> from thyronet_twostream import twostream_backbone
    >>> entry = twostream_backbone("test_resnet")
    >>> entry.name, entry.target_layer_name
    ('twostream_test_resnet', 'views')
    >>> entry.build_net(in_chans=2).model.num_features
    192
    """
    return Backbone(
        name or f"twostream_{trunk}",
        factory=functools.partial(build_twostream, trunk=trunk),
        gradcam_layer=GRADCAM_LAYER,
        input_size=(224, 224),
        mean=_MEAN,
        std=_STD,
        description=description or f"two-stream late fusion, shared {trunk} trunk per view",
    )


TWOSTREAM_BACKBONES: tuple[Backbone, ...] = (
    twostream_backbone("resnet101", description="two-stream late fusion, shared ResNet101 "
                                                "trunk per view (the paper's CNN)"),
    twostream_backbone("resnet50"),
    twostream_backbone("resnet18"),
    twostream_backbone("test_resnet", description="two-stream late fusion, tiny trunk for "
                                                  "fast tests"),
)
"""The backbones this plugin registers."""


@hookimpl
def thyronet_register_backbones(register):
    """Register the two-stream backbones."""
    for backbone in TWOSTREAM_BACKBONES:
        register(backbone.name, backbone)
