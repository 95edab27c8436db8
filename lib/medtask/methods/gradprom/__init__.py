"""Study C: GradProm, task-driven enhancement whose enhancer takes the recognition gradient only when it agrees.

- :mod:`medtask.methods.gradprom.networks`      the SR-ResNet-style enhancer (denoising and ×2/×4 SR)
- :mod:`medtask.methods.gradprom.degradations`  seeded degradations on ``[0, 1]`` images, by name
- :mod:`medtask.methods.gradprom.strategies`    the gradient combiners and the Joint / Frozen / GradProm strategies
- :mod:`medtask.methods.gradprom.study`         settings, seed spreads, step cost, polyp crops, CAM focus
- :mod:`medtask.methods.gradprom.report`        gradient-cosine diagnostics, the step-cost sentence, published numbers
- :mod:`medtask.methods.gradprom.plots`         enhancement examples, CAM grids, cosine diagnostics
"""

from medtask.methods.gradprom.degradations import (
    DEGRADATIONS,
    BicubicDownsample,
    CompositeNoiseBlur,
    Degradation,
    GaussianNoise,
    make_degradation,
)
from medtask.methods.gradprom.networks import SRResNet, build_enhancer

__all__ = [
    "DEGRADATIONS", "BicubicDownsample", "CompositeNoiseBlur", "Degradation", "GaussianNoise",
    "SRResNet", "build_enhancer", "make_degradation",
]
