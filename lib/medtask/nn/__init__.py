"""Task networks shared by the methods: segmenters (U-Net, ERFNet), detectors, classifiers.

Import the sub-modules directly (:mod:`medtask.nn.erfnet`, :mod:`medtask.nn.unet`,
:mod:`medtask.nn.classifiers`, :mod:`medtask.nn.detection`).
"""
