"""GDPW Studio: one-shot face editing and reenactment driven by a 3D face model.

Heavy dependencies (mediapipe, gradio) are imported only by the modules that need them, so
``import core`` stays fast.
"""

__version__ = "0.1.0"
