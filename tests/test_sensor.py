"""Tests of raw_isp.sensor: presets, photon transfer, intensity scaling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from raw_isp.sensor import INTENSITY_RATIOS, SENSORS, SensorModel

N_SIGMA = 5.0  # tolerance in standard errors for statistical checks
SHAPE = (256, 256)
N = SHAPE[0] * SHAPE[1]

# A flat exposure per preset, well inside the ADC range at ratio 1 (drone full well ~7.3k e-).
MEAN_E = {"drone": 3000.0, "microscopy": 12000.0}


def predicted_var(s: SensorModel, mean_e: float) -> float:
    """Photon-transfer variance in DN^2 of a flat patch with mean_e photo-electrons."""
    return s.gain**2 * (mean_e + s.read_noise**2) + s.adc_step**2 / 12.0


def var_tolerance(var: float, n: int) -> float:
    # Standard error of a sample variance of n (near-Gaussian) samples: var * sqrt(2 / (n - 1)).
    return N_SIGMA * var * math.sqrt(2.0 / (n - 1))


@pytest.fixture(scope="module", params=sorted(SENSORS))
def flat(request):
    s = SENSORS[request.param]
    mean_e = MEAN_E[request.param]
    frame = s.expose(np.full(SHAPE, mean_e), seed=1234)
    return s, mean_e, frame


# --------------------------------------------------------------------------- presets


def test_drone_preset_matches_datasheet():
    s = SENSORS["drone"]
    assert s.bit_depth == 12 and s.justify_bits == 4
    assert s.gain == pytest.approx(0.528 * 16)
    assert s.black_level == 256 * 16
    assert s.black_level / 65536 == 0.0625
    assert s.white_level == 4095 * 16 == 65520
    assert s.adc_step == 16
    assert s.full_well == pytest.approx((65520 - 4096) / 8.448)
    assert 2.0 <= s.read_noise <= 3.0


def test_microscopy_preset():
    s = SENSORS["microscopy"]
    assert s.bit_depth == 16 and s.justify_bits == 0
    assert s.white_level == 65535 and s.adc_step == 1
    assert s.black_level == pytest.approx(0.644, abs=1e-3)
    assert s.black_level / 65535 == pytest.approx(9.834368e-06, rel=1e-12)
    assert s.full_well == pytest.approx(32767, abs=1)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        (dict(gain=0.0), "gain"),
        (dict(gain=float("nan")), "gain"),
        (dict(read_noise=-1.0), "read_noise"),
        (dict(bit_depth=17), "bit_depth"),
        (dict(bit_depth=12, justify_bits=5), "justify_bits"),
        (dict(black_level=70000.0), "black_level"),
    ],
)
def test_sensor_model_validates(kwargs, word):
    base = dict(name="x", gain=1.0, black_level=0.0, read_noise=1.0, bit_depth=16)
    base.update(kwargs)
    with pytest.raises(ValueError, match=word):
        SensorModel(**base)


def test_sensor_model_is_frozen():
    with pytest.raises(AttributeError):
        SENSORS["drone"].gain = 1.0  # type: ignore[misc]


def test_intensity_ratios():
    assert INTENSITY_RATIOS == (1.0, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01)


# --------------------------------------------------------------------------- conversions


def test_electrons_numpy_and_torch():
    s = SensorModel("t", gain=2.0, black_level=100.0, read_noise=0.0, bit_depth=16)
    raw = np.array([[50, 100], [102, 300]], dtype=np.uint16)
    e = s.electrons(raw)
    assert e.dtype == np.float64
    np.testing.assert_array_equal(e, [[0.0, 0.0], [1.0, 100.0]])
    et = s.electrons(torch.from_numpy(raw))
    assert isinstance(et, torch.Tensor) and et.dtype == torch.float32
    np.testing.assert_array_equal(et.numpy(), e.astype(np.float32))


def test_digitize_noiseless_quantises_and_clips():
    s = SensorModel("t", gain=8.0, black_level=64.0, read_noise=0.0, bit_depth=12, justify_bits=4)
    e = np.array([-100.0, 0.0, 0.9, 1.1, 10.0, 1e9])
    out = s.digitize(e)
    assert out.dtype == np.uint16
    # 64 + 8 e rounded to a multiple of 16, clipped to [0, 65520]
    np.testing.assert_array_equal(out, [0, 64, 64, 80, 144, 65520])


def test_digitize_clips_at_white_level_for_presets():
    for s in SENSORS.values():
        out = s.digitize(np.full((4, 4), 10 * s.full_well), seed=0)
        assert out.dtype == np.uint16
        assert np.all(out == s.white_level)
        out = s.expose(np.full((4, 4), 10 * s.full_well), seed=0)
        assert np.all(out == s.white_level)


def test_digitize_output_on_adc_grid():
    s = SENSORS["drone"]
    out = s.digitize(np.linspace(0, 1000, 64 * 64).reshape(64, 64), seed=3)
    assert np.all(out % s.adc_step == 0)
    assert out.max() <= s.white_level


def test_expose_rejects_negative_means():
    with pytest.raises(ValueError, match="mean_electrons"):
        SENSORS["drone"].expose(np.array([[1.0, -1.0]]), seed=0)


def test_expose_photon_transfer(flat):
    s, mean_e, frame = flat
    assert frame.dtype == np.uint16 and frame.shape == SHAPE
    x = frame.astype(np.float64)
    var = predicted_var(s, mean_e)
    assert abs(x.var(ddof=1) - var) < var_tolerance(var, N)
    assert abs(x.mean() - s.black_level - s.gain * mean_e) < N_SIGMA * math.sqrt(var / N)


# --------------------------------------------------------------------------- scale_intensity


@pytest.mark.parametrize("ratio", [0.75, 0.5, 0.25, 0.1, 0.05, 0.01])
def test_scale_intensity_photon_transfer(flat, ratio):
    """Mean scales with ratio; variance follows var = g^2 (ratio m + rn^2) + step^2/12."""
    s, mean_e, frame = flat
    out = s.scale_intensity(frame, ratio, seed=99)
    assert out.dtype == np.uint16 and out.shape == SHAPE
    x = out.astype(np.float64)
    var = predicted_var(s, ratio * mean_e)
    # The pixels are independent, so the mean's standard error follows from the variance.
    mean_err = x.mean() - s.black_level - s.gain * ratio * mean_e
    assert abs(mean_err) < N_SIGMA * math.sqrt(var / N)
    assert abs(x.var(ddof=1) - var) < var_tolerance(var, N)


@pytest.mark.parametrize(
    "name, mean_e, ratio",
    [
        ("drone", 60.0, 0.75),
        ("drone", 60.0, 0.25),
        ("drone", 60.0, 0.05),
        ("microscopy", 40.0, 0.75),
        ("microscopy", 40.0, 0.5),
    ],
)
def test_scale_intensity_photon_transfer_low_light(name, mean_e, ratio):
    """At low light the read noise carried over from the input would be visible: check it is not."""
    s = SENSORS[name]
    frame = s.expose(np.full(SHAPE, mean_e), seed=21)
    x = s.scale_intensity(frame, ratio, seed=22).astype(np.float64)
    var = predicted_var(s, ratio * mean_e)
    assert abs(x.mean() - s.black_level - s.gain * ratio * mean_e) < N_SIGMA * math.sqrt(var / N)
    assert abs(x.var(ddof=1) - var) < var_tolerance(var, N)


def test_scale_intensity_deterministic_for_a_seed(flat):
    s, _, frame = flat
    a = s.scale_intensity(frame, 0.25, seed=7)
    b = s.scale_intensity(frame, 0.25, seed=7)
    c = s.scale_intensity(frame, 0.25, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    d = s.scale_intensity(frame, 0.25)
    e = s.scale_intensity(frame, 0.25)
    assert not np.array_equal(d, e)
    g = s.scale_intensity(frame, 0.25, seed=np.random.default_rng(7))
    np.testing.assert_array_equal(a, g)


def test_scale_intensity_numpy_and_torch_agree(flat):
    s, _, frame = flat
    a = s.scale_intensity(frame, 0.1, seed=5)
    t = s.scale_intensity(torch.from_numpy(frame), 0.1, seed=5)
    assert isinstance(t, torch.Tensor) and t.dtype == torch.uint16
    np.testing.assert_array_equal(t.numpy(), a)


@pytest.mark.parametrize("ratio", [0, 0.0, -0.1, 1.5, float("nan"), float("inf"), "half", True])
def test_scale_intensity_bad_ratio(ratio):
    frame = np.full((4, 4), 5000, dtype=np.uint16)
    with pytest.raises(ValueError, match="ratio") as info:
        SENSORS["drone"].scale_intensity(frame, ratio, seed=0)
    assert repr(ratio) in str(info.value)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scale_intensity_refuses_float(dtype):
    with pytest.raises(TypeError, match="uint16"):
        SENSORS["drone"].scale_intensity(np.full((4, 4), 5000, dtype=dtype), 0.5)
    with pytest.raises(TypeError, match="uint16"):
        SENSORS["drone"].scale_intensity(torch.full((4, 4), 0.5), 0.5)


def test_scale_intensity_ratio_one_is_exact_copy(flat):
    s, _, frame = flat
    out = s.scale_intensity(frame, 1.0, seed=0)
    np.testing.assert_array_equal(out, frame)
    assert out.dtype == np.uint16 and not np.shares_memory(out, frame)
    t = torch.from_numpy(frame)
    out_t = s.scale_intensity(t, 1, seed=0)
    assert torch.equal(out_t, t) and out_t.data_ptr() != t.data_ptr()


def test_scale_intensity_clipping_and_saturation():
    s = SENSORS["drone"]
    saturated = np.full((64, 64), s.white_level, dtype=np.uint16)
    out = s.scale_intensity(saturated, 0.75, seed=1)
    assert out.max() <= s.white_level and np.all(out % s.adc_step == 0)
    # A saturated pixel is taken as holding full_well electrons.
    expected = s.black_level + s.gain * 0.75 * s.full_well
    var = predicted_var(s, 0.75 * s.full_well)
    assert abs(out.mean() - expected) < N_SIGMA * math.sqrt(var / out.size)
    # Values above the sensor's white level (65535 for a 12-bit sensor) still stay in range.
    out = s.scale_intensity(np.full((8, 8), 65535, dtype=np.uint16), 0.999, seed=1)
    assert out.max() <= s.white_level


def test_scale_intensity_dark_frame_stays_near_black():
    s = SENSORS["microscopy"]
    dark = s.expose(np.zeros((64, 64)), seed=2)
    out = s.scale_intensity(dark, 0.5, seed=3)
    assert out.min() >= 0 and out.mean() < s.black_level + 3 * s.gain * s.read_noise


def test_scale_intensity_batched():
    s = SENSORS["microscopy"]
    batch = s.expose(np.full((3, 32, 32), 500.0), seed=4)
    out = s.scale_intensity(batch, 0.5, seed=4)
    assert out.shape == (3, 32, 32) and out.dtype == np.uint16
    assert not np.array_equal(out[0], out[1])
    out_t = s.scale_intensity(torch.from_numpy(batch), 0.5, seed=4)
    np.testing.assert_array_equal(out_t.numpy(), out)


def test_scale_intensity_rejects_out_of_range_integers():
    with pytest.raises(ValueError, match="0..65535"):
        SENSORS["drone"].scale_intensity(np.array([[-1, 70000]], dtype=np.int32), 0.5)


# ---------------------------------------------------------------- on-device batches


@pytest.mark.parametrize("name, mean_e", [("microscopy", 3000.0), ("drone", 2000.0)])
def test_scale_intensity_batch_photon_transfer(name, mean_e):
    """Each frame of a batch follows the photon-transfer relation of its own ratio."""
    s = SENSORS[name]
    ratios = [1.0, 0.5, 0.1, 0.05]
    frame = s.expose(np.full((len(ratios),) + SHAPE, mean_e), seed=31)
    out = s.scale_intensity_batch(torch.from_numpy(frame), ratios, generator=torch.Generator().manual_seed(4))
    assert out.dtype == torch.uint16 and out.shape == frame.shape
    assert torch.equal(out[0], torch.from_numpy(frame[0]))  # ratio 1: unchanged
    for i, r in enumerate(ratios[1:], start=1):
        x = out[i].numpy().astype(np.float64)
        var = predicted_var(s, r * mean_e)
        assert abs(x.mean() - s.black_level - s.gain * r * mean_e) < N_SIGMA * math.sqrt(var / N)
        assert abs(x.var(ddof=1) - var) < var_tolerance(var, N)


def test_scale_intensity_batch_deterministic_and_int16_view():
    s = SENSORS["microscopy"]
    frame = torch.from_numpy(s.expose(np.full((2, 64, 64), 30000.0), seed=1))  # DN above 32767
    a = s.scale_intensity_batch(frame, [0.75, 0.25], generator=torch.Generator().manual_seed(9))
    b = s.scale_intensity_batch(frame.view(torch.int16), [0.75, 0.25], generator=torch.Generator().manual_seed(9))
    c = s.scale_intensity_batch(frame, [0.75, 0.25], generator=torch.Generator().manual_seed(10))
    assert b.dtype == torch.int16 and torch.equal(a.view(torch.int16), b)
    assert not torch.equal(a, c)
    assert int(a.view(torch.int16).to(torch.int32).bitwise_and(0xFFFF).max()) > 32767


def test_scale_intensity_batch_checks_arguments():
    s = SENSORS["drone"]
    frame = torch.full((2, 4, 4), 5000, dtype=torch.uint16)
    with pytest.raises(ValueError, match="one per frame"):
        s.scale_intensity_batch(frame, [0.5])
    with pytest.raises(ValueError, match="ratio"):
        s.scale_intensity_batch(frame, [0.5, 0.0])
    with pytest.raises(TypeError, match="uint16"):
        s.scale_intensity_batch(frame.float(), [0.5, 0.5])
