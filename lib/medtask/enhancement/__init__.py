"""Study C: image-quality enhancement networks and the degradations they learn to undo.

- :mod:`medtask.enhancement.networks`      the SR-ResNet-style enhancer (denoising and ×2/×4 SR)
- :mod:`medtask.enhancement.degradations`  seeded degradations on ``[0, 1]`` images, by name
"""

from medtask.enhancement.degradations import (
    DEGRADATIONS,
    BicubicDownsample,
    CompositeNoiseBlur,
    Degradation,
    GaussianNoise,
    make_degradation,
)
from medtask.enhancement.networks import SRResNet, build_enhancer

__all__ = [
    "DEGRADATIONS", "BicubicDownsample", "CompositeNoiseBlur", "Degradation", "GaussianNoise",
    "SRResNet", "build_enhancer", "make_degradation",
]
