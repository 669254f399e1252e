"""Hook specifications: everything a thyronet plugin can implement.

A plugin is a module (or object) with functions decorated by :data:`hookimpl`,
published under the entry-point group ``thyronet``::

    # pyproject.toml of the plugin distribution
    [project.entry-points.thyronet]
    my_plugin = "my_plugin"

Every hook receives a ``register`` callable: ``register(name, entry)`` adds one
named entry to a registry. Names must be unique across plugins; a duplicate is
reported with both plugin names and the first registration is kept.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "thyronet"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


@hookspec
def thyronet_register_fusions(register):
    """Register fusion strategies for :class:`thyronet.DualChannelFuser`.

    Call ``register(name, strategy)`` with a :class:`thyronet.fusion.FusionStrategy`
    for each strategy; ``DualChannelFuser(strategy=name)`` then uses it.
    """


@hookspec
def thyronet_register_backbones(register):
    """Register CNN backbones for :class:`thyronet.SkorchCNN`.

    Call ``register(name, backbone)`` with a backbone entry that builds a
    ``torch.nn.Module`` for a channel count, and names its feature size,
    Grad-CAM target layer and preprocessing.
    """


@hookspec
def thyronet_register_classifiers(register):
    """Register candidate classifiers for :class:`thyronet.ClassifierSelector`.

    Call ``register(name, factory)`` where ``factory()`` returns an unfitted
    scikit-learn classifier with ``predict_proba``.
    """
