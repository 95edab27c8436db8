"""Study A: MVMICNet, a learned codec trained jointly with a segmentation or detection network.

- :mod:`medtask.methods.mvmicnet.codecs`      learned (CompressAI, real bitstreams) and classic codecs
- :mod:`medtask.methods.mvmicnet.strategies`  rate–distortion training, MVMICNet's two stages, the task baseline
- :mod:`medtask.methods.mvmicnet.study`       :class:`CompressionStudy` and the rate sweep of chapters A1–A3
- :mod:`medtask.methods.mvmicnet.report`      published tables, BD tables, the paper's claims, speed
- :mod:`medtask.methods.mvmicnet.plots`       rate–quality curves and the qualitative comparison
"""
