import pytest
import torch

from medtask.errors import CorruptFileError, InvalidParameterError
from medtask.methods.mvmicnet.codecs import classic

from comp_helpers import smooth_image

CODECS = classic.available_codecs()


def test_hevc_and_core_codecs_available():
    assert {"hevc-intra", "jpeg", "jpeg2000", "webp"} <= set(CODECS)
    assert classic.get_codec("hevc-intra").label == "HEVC-intra (x265), BPG-equivalent"
    with pytest.raises(InvalidParameterError, match="unknown classic codec"):
        classic.get_codec("bpg")


@pytest.mark.parametrize("name", CODECS)
def test_roundtrip_shape_and_bpp_from_bytes(name):
    x = smooth_image(h=48, w=80)
    y, enc = classic.roundtrip(name, x, classic.get_codec(name).hi * 0.6)
    assert y.shape == x.shape
    assert enc.bpp == pytest.approx(8 * enc.counted_bytes / (48 * 80))
    assert enc.counted_bytes <= len(enc.data)
    assert (y - x).abs().mean() < 0.1


@pytest.mark.parametrize("name", CODECS)
def test_quality_search_hits_target_bpp(name):
    images = [smooth_image(h=96, w=96, seed=s) for s in range(2)]
    target = 0.6
    choice = classic.search_quality(name, images, target)
    assert abs(choice.relative_error) < 0.15, choice
    assert choice.bpp == pytest.approx(classic.mean_bpp(name, images, choice.knob))


def test_hevc_counts_elementary_stream_not_container():
    enc = classic.encode("hevc-intra", smooth_image(h=64, w=64), 30)
    assert 0 < enc.counted_bytes < len(enc.data) - 100  # the HEIF boxes are several hundred bytes


def test_greyscale_and_corrupt_data():
    g = smooth_image(c=1, h=40, w=40)
    y, enc = classic.roundtrip("webp", g, 80)
    assert y.shape == (1, 40, 40)
    bad = classic.ClassicEncoded(enc.data[: len(enc.data) // 3], enc.counted_bytes, 40, 40, 1, "webp")
    with pytest.raises(CorruptFileError):
        classic.decode(bad)
    with pytest.raises(InvalidParameterError, match="quality"):
        classic.encode("jpeg", g, 500)
    with pytest.raises(InvalidParameterError, match="alpha"):
        classic.encode("jpeg", torch.rand(4, 16, 16), 50)
