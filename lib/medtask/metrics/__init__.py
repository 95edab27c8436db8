"""Metrics: image quality, segmentation, detection, classification, BD-rate. Import the sub-modules directly."""
