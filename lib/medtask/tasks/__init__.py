"""Task networks: segmenters (U-Net, ERFNet), detectors, classifiers. Import the sub-modules directly."""
