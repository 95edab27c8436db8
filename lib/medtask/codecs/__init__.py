"""Image codecs for Study A: learned (CompressAI, real bitstreams) and classic (Pillow / pillow-heif).

- :mod:`medtask.codecs.learned`    registry of learned codec architectures with widths as parameters
- :mod:`medtask.codecs.bitstream`  compress/decompress to bytes, padding, greyscale, bpp accounting
- :mod:`medtask.codecs.classic`    HEVC-intra (x265, BPG-equivalent), JPEG, JPEG 2000, WebP, AVIF
"""
