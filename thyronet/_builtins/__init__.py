"""thyronet's built-in plugins: fusion strategies, backbones and candidate classifiers.

Registered first, through the same plugin manager as third-party plugins, under the
names ``thyronet._builtins.fusions``, ``thyronet._builtins.backbones`` and
``thyronet._builtins.classifiers`` (the names ``THYRONET_DISABLE_PLUGINS`` takes).
Importing them loads no torch.
"""
