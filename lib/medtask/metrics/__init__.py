"""Metrics: image quality, segmentation, detection, classification, BD-rate, spread over seeds. Import the sub-modules directly."""
