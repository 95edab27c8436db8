"""Image codecs for Study A: learned (CompressAI, real bitstreams) and classic (Pillow / pillow-heif).

- :mod:`medtask.methods.mvmicnet.codecs.learned`    registry of learned codec architectures with widths as parameters
- :mod:`medtask.methods.mvmicnet.codecs.bitstream`  compress/decompress to bytes, padding, greyscale, bpp accounting
- :mod:`medtask.methods.mvmicnet.codecs.classic`    HEVC-intra (x265, BPG-equivalent), JPEG, JPEG 2000, WebP, AVIF
"""
