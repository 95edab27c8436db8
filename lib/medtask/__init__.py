"""medtask: the library behind the reproducible study of task-driven medical imaging.

Sub-packages (each with one job):

- :mod:`medtask.data`      datasets (manifests, verification, fetching, loaders, phantoms)
- :mod:`medtask.codecs`    learned and classic image codecs (Study A)
- :mod:`medtask.tasks`     task networks: segmenters, detectors, classifiers
- :mod:`medtask.training`  the one training loop and its pluggable strategies
- :mod:`medtask.metrics`   image-quality, segmentation, detection, classification, BD-rate
- :mod:`medtask.plots`     figures shared by the chapters
- :mod:`medtask.pipeline`  papermill execution, profiles, caching, provenance, book build
"""

__version__ = "0.1.0"
