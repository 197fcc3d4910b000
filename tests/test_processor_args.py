"""RawISPImageProcessor takes BaseImageProcessor's common arguments where they make sense for raw
input (resample, do_rescale / rescale_factor, data_format, input_data_format, return_tensors) and
refuses the others with the reason."""

import numpy as np
import pytest
import torch
from transformers.image_utils import ChannelDimension, PILImageResampling
from transformers.utils import TensorType

from raw_isp.models.processor import RawISPImageProcessor


@pytest.fixture
def raw():
    return (np.random.default_rng(0).random((2, 32, 32)) * 50000 + 1000).astype(np.uint16)


@pytest.fixture
def proc():
    return RawISPImageProcessor(size=16)


def test_data_format_channels_last(proc, raw):
    first = proc(raw).pixel_values
    last = proc(raw, data_format="channels_last").pixel_values
    assert last.shape == (2, 16, 16, 3)
    torch.testing.assert_close(last, first.permute(0, 2, 3, 1), rtol=0, atol=0)
    assert proc(raw, data_format=ChannelDimension.LAST).pixel_values.shape == (2, 16, 16, 3)
    with pytest.raises(ValueError, match="data_format must be 'channels_first', 'channels_last' or None"):
        proc(raw, data_format="NCHW")


def test_input_data_format_drops_a_singleton_channel_axis(proc, raw):
    plain = proc(raw).pixel_values
    for fmt, arr, one in (("channels_first", raw[:, None], raw[0][None]), ("channels_last", raw[..., None],
                                                                            raw[0][..., None])):
        torch.testing.assert_close(proc(arr, input_data_format=fmt).pixel_values, plain, rtol=0, atol=0)
        torch.testing.assert_close(proc([one, one], input_data_format=fmt).pixel_values[0], plain[0], rtol=0, atol=0)
    with pytest.raises(ValueError, match=r"input_data_format='channels_last' declares a channel axis.*got \(2, 32, 32\)"):
        proc(raw, input_data_format="channels_last")


def test_resample_maps_to_resize_mode_and_lanczos_is_refused(proc, raw):
    for resample, mode in ((PILImageResampling.BILINEAR, "bilinear"), (PILImageResampling.BICUBIC, "bicubic"),
                           (PILImageResampling.NEAREST, "nearest"), (PILImageResampling.BOX, "area"), (3, "bicubic")):
        torch.testing.assert_close(proc(raw, resample=resample).pixel_values, proc(raw, resize_mode=mode).pixel_values,
                                   rtol=0, atol=0)
    for bad in (PILImageResampling.LANCZOS, PILImageResampling.HAMMING):
        with pytest.raises(ValueError, match=r"resample=(LANCZOS|HAMMING) has no counterpart"):
            proc(raw, resample=bad)
    assert RawISPImageProcessor(resample=PILImageResampling.BICUBIC).resize_mode == "bicubic"


def test_rescale_factor_is_one_over_raw_scale_and_do_rescale_false_is_refused(raw):
    small = (raw // 257).astype(np.uint16)  # 8-bit range in a uint16 array
    by_scale = RawISPImageProcessor(size=16, raw_scale=255)(small).pixel_values
    torch.testing.assert_close(RawISPImageProcessor(size=16)(small, rescale_factor=1 / 255).pixel_values, by_scale)
    assert RawISPImageProcessor(rescale_factor=1 / 255).raw_scale == pytest.approx(255)
    torch.testing.assert_close(RawISPImageProcessor(size=16)(raw, do_rescale=True).pixel_values,
                               RawISPImageProcessor(size=16)(raw).pixel_values, rtol=0, atol=0)
    with pytest.raises(ValueError, match="do_rescale=False: integer raw DN are always divided by raw_scale"):
        RawISPImageProcessor()(raw, do_rescale=False)
    with pytest.raises(ValueError, match="contradicts raw_scale"):
        RawISPImageProcessor()(raw, rescale_factor=1 / 255, raw_scale=1000)


@pytest.mark.parametrize("key, value, reason", [
    ("do_convert_rgb", True, "one channel and the ISP makes the RGB view"),
    ("do_center_crop", True, "crop the raw mosaic before"),
    ("crop_size", {"height": 8, "width": 8}, "crop the raw mosaic before"),
    ("do_pad", True, "pad the raw mosaic before"),
    ("default_to_square", False, "size is always"),
])
def test_arguments_that_do_not_apply_to_raw_are_refused_with_the_reason(proc, raw, key, value, reason):
    with pytest.raises(ValueError, match=rf"{key}={value!r}.*{reason}".replace("{", r"\{").replace("}", r"\}")
                       if key != "default_to_square" else reason):
        proc(raw, **{key: value})
    with pytest.raises(ValueError, match=reason):
        RawISPImageProcessor(**{key: value})


def test_arguments_that_ask_for_nothing_are_accepted_and_typos_are_type_errors(proc, raw):
    plain = proc(raw).pixel_values
    same = proc(raw, do_convert_rgb=False, do_center_crop=False, crop_size=None, do_pad=None, default_to_square=True,
                disable_grouping=True).pixel_values
    torch.testing.assert_close(same, plain, rtol=0, atol=0)
    with pytest.raises(TypeError, match="unexpected keyword argument 'do_resise'"):
        proc(raw, do_resise=False)


def test_return_tensors_takes_transformers_tensor_type(proc, raw):
    assert isinstance(proc(raw, return_tensors=TensorType.PYTORCH).pixel_values, torch.Tensor)
    assert isinstance(proc(raw, return_tensors="np").pixel_values, np.ndarray)
    assert isinstance(proc(raw, return_tensors=None).pixel_values, list)
    with pytest.raises(ValueError, match="return_tensors must be 'pt', 'np' or None"):
        proc(raw, return_tensors="jax")
