"""medtask: the library behind the reproducible study of task-driven medical imaging.

Sub-packages (each with one job):

- :mod:`medtask.data`       datasets (manifests, verification, fetching, registered loaders, phantoms)
- :mod:`medtask.nn`         task networks: segmenters, detectors, classifiers
- :mod:`medtask.engine`     the one training loop, its :class:`~medtask.engine.Strategy` interface, batches,
                            timing and Grad-CAM
- :mod:`medtask.metrics`    image quality, segmentation, detection, classification, BD-rate, spread over seeds
- :mod:`medtask.methods`    one folder per paper's method: ``mvmicnet``, ``angioqa``, ``gradprom``
- :mod:`medtask.reporting`  published tables, side-by-side tables, figures shared by the chapters
- :mod:`medtask.pipeline`   papermill execution, profiles, caching, provenance, book build
"""

__version__ = "0.1.0"
