"""Study B: lightweight angiography quality assessment by segmentation-classification multi-task learning.

- :mod:`medtask.methods.angioqa.modules`   depthwise-separable blocks, L-GSAM, FAM, decoder, quality head
- :mod:`medtask.methods.angioqa.model`     :class:`AngioQANet` (the paper-sized model and its ablations)
- :mod:`medtask.methods.angioqa.loss`      the joint loss (Dice + BCE for vessels, cross-entropy for quality)
- :mod:`medtask.methods.angioqa.quality`   angiogram-like conversion and the seeded degradation protocol
- :mod:`medtask.methods.angioqa.baselines` U-Net, Attention U-Net, SA-UNet, TransUNet-like and classifier baselines
- :mod:`medtask.methods.angioqa.strategies` multi-task, segmentation-only and classification-only training
- :mod:`medtask.methods.angioqa.study`     protocol data, training and evaluation of every arm, cost, Grad-CAM
- :mod:`medtask.methods.angioqa.report`    published numbers and the protocol's summary
- :mod:`medtask.methods.angioqa.plots`     the protocol's example grid
"""

from medtask.methods.angioqa.model import (
    PAPER_PARAMETERS,
    AngioQAConfig,
    AngioQANet,
    build_angioqa,
    count_parameters,
)

__all__ = ["PAPER_PARAMETERS", "AngioQAConfig", "AngioQANet", "build_angioqa", "count_parameters"]
