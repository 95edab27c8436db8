"""Study B: lightweight angiography quality assessment by segmentation-classification multi-task learning.

- :mod:`medtask.angio.modules`   depthwise-separable blocks, L-GSAM, FAM, decoder, quality head
- :mod:`medtask.angio.model`     :class:`AngioQANet` (the paper-sized model and its ablations)
- :mod:`medtask.angio.loss`      the joint loss (Dice + BCE for vessels, cross-entropy for quality)
- :mod:`medtask.angio.quality`   angiogram-like conversion and the seeded degradation protocol
- :mod:`medtask.angio.baselines` U-Net, Attention U-Net, SA-UNet, TransUNet-like and classifier baselines
"""

from medtask.angio.model import PAPER_PARAMETERS, AngioQAConfig, AngioQANet, build_angioqa, count_parameters

__all__ = ["PAPER_PARAMETERS", "AngioQAConfig", "AngioQANet", "build_angioqa", "count_parameters"]
