"""GDPW Studio's Gradio editing app: ``from studio import build_app; build_app().launch()``.

Gradio is imported only when the app is built (``studio.app``), so ``import studio`` stays light.
"""

from __future__ import annotations

__all__ = ["build_app", "slider_names"]


def build_app(*args, **kwargs):
    """See ``studio.app.build_app``."""
    from studio.app import build_app as _build

    return _build(*args, **kwargs)


def slider_names(*args, **kwargs):
    """See ``studio.app.slider_names``."""
    from studio.app import slider_names as _names

    return _names(*args, **kwargs)
