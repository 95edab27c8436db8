import pytest
import torch

from medtask.errors import CorruptFileError, InvalidParameterError
from medtask.methods.mvmicnet.codecs.bitstream import LearnedCodec, pad_to_multiple
from medtask.methods.mvmicnet.codecs.learned import build_codec, check_lambda, codec_spec, zoo_widths

from comp_helpers import smooth_image


@pytest.fixture(scope="module")
def mbt():
    torch.manual_seed(0)
    spec = codec_spec("mbt2018-mean", 16, 24)
    return LearnedCodec(spec.build(), spec, tag="q1")


def test_registry_widths_and_errors():
    assert zoo_widths("mbt2018-mean", 3) == {"N": 128, "M": 192}
    assert zoo_widths("cheng2020-anchor", 6) == {"N": 192}
    m = build_codec("mbt2018-mean", N=16, M=24)
    assert m.N == 16 and m.M == 24
    assert build_codec("cheng2020_anchor", N=16).N == 16
    with pytest.raises(InvalidParameterError, match="unknown learned codec"):
        build_codec("bpg")
    with pytest.raises(InvalidParameterError, match="single width"):
        codec_spec("cheng2020-anchor", 16, 24)
    for bad in (0, -1, 100, float("nan")):
        with pytest.raises(InvalidParameterError, match="lambda1"):
            check_lambda(bad)


def test_decode_equals_eval_reconstruction_mbt(mbt):
    x = torch.stack([smooth_image(seed=s) for s in range(2)])
    enc = mbt.encode(x)
    dec = torch.stack(mbt.decode_many(enc))
    rec, _ = mbt.reconstruct(x)
    assert torch.allclose(dec, rec.cpu(), atol=1e-5)


def test_cheng_roundtrip_close_to_eval_reconstruction():
    torch.manual_seed(0)
    spec = codec_spec("cheng2020-anchor", 16)
    codec = LearnedCodec(spec.build(), spec)
    x = smooth_image(h=64, w=64)
    dec = codec.decode(codec.encode(x)[0])
    rec, _ = codec.reconstruct(x)
    # compress() rounds y around the predicted means, forward() rounds y itself: small differences only
    assert dec.shape == x.shape
    assert (dec - rec[0]).abs().mean() < 0.05


def test_bpp_counted_from_bytes_with_header(mbt):
    x = smooth_image(h=64, w=64)
    e = mbt.encode(x)[0]
    assert e.bpp == pytest.approx(8 * len(e.data) / (64 * 64))
    c, h, w, strings = mbt.parse(e.data)
    header = len(e.data) - sum(len(s) for s in strings)
    assert (c, h, w, len(strings)) == (3, 64, 64, 2)
    assert 7 <= header <= 12


def test_odd_size_and_greyscale_roundtrip(mbt):
    x = smooth_image(c=1, h=37, w=71)
    e = mbt.encode(x)[0]
    y = mbt.decode(e, expected_shape=(1, 37, 71))
    assert y.shape == (1, 37, 71)
    assert y.min() >= 0 and y.max() <= 1
    assert e.bpp == pytest.approx(8 * e.num_bytes / (37 * 71))
    assert pad_to_multiple(x.unsqueeze(0)).shape[-2:] == (64, 128)


def test_bad_inputs_and_corrupt_bitstreams(mbt):
    with pytest.raises(InvalidParameterError, match="alpha"):
        mbt.encode(torch.rand(4, 32, 32))
    with pytest.raises(InvalidParameterError, match="float"):
        mbt.encode(torch.zeros(3, 32, 32, dtype=torch.uint8))
    data = mbt.encode(smooth_image(h=64, w=64))[0].data
    with pytest.raises(CorruptFileError, match="truncated"):
        mbt.decode(data[:-3])
    with pytest.raises(CorruptFileError, match="truncated"):
        mbt.decode(data[:3])
    with pytest.raises(CorruptFileError, match="empty"):
        mbt.decode(b"")
    with pytest.raises(CorruptFileError, match="not a medtask"):
        mbt.decode(b"\x00" + data[1:])
    flipped = bytearray(data)
    flipped[-1] ^= 0xFF
    with pytest.raises(CorruptFileError, match="checksum"):
        mbt.decode(bytes(flipped))
    other = LearnedCodec(mbt.model, mbt.spec, tag="q2")  # same weights, another rate point's tag
    with pytest.raises(CorruptFileError, match="different codec"):
        other.decode(data)
    with pytest.raises(InvalidParameterError, match="expected"):
        mbt.decode(data, expected_shape=(3, 32, 32))


def test_a_flipped_bit_anywhere_in_a_bitstream_is_refused(mbt):
    """Header included: a flip in the flags, H, W or a length must not decode to another shape or channel count."""
    for x in (smooth_image(h=64, w=64), smooth_image(c=1, h=37, w=71)):
        data = mbt.encode(x)[0].data
        assert mbt.parse(data)[:3] == (x.shape[0], x.shape[1], x.shape[2])
        for i in range(len(data)):
            for bit in range(8):
                flipped = bytearray(data)
                flipped[i] ^= 1 << bit
                with pytest.raises(CorruptFileError):
                    mbt.parse(bytes(flipped))
