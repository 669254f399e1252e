"""Built-in backbones: the paper's ResNet101, other timm families and a tiny test net.

Each entry names a timm architecture; nothing is built (and torch is not loaded)
until a CNN is initialised.
"""

from __future__ import annotations

from collections.abc import Callable

from thyronet.backbones import BUILTIN_BACKBONES, Backbone
from thyronet.hookspecs import hookimpl


@hookimpl
def thyronet_register_backbones(register: Callable[[str, Backbone], None]) -> None:
    """Register the built-in backbones."""
    for backbone in BUILTIN_BACKBONES:
        register(backbone.name, backbone)
