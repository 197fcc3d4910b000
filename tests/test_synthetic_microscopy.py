"""Checks that the synthetic Raw-Microscopy data are fit for purpose (raw_microscopy.synthetic)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from raw_isp import SENSORS
from raw_isp.isp.filters import gaussian_blur_numpy
from raw_microscopy.synthetic import (
    BACKGROUND_LEVEL,
    CLASS_COUNTS,
    CLASS_NAMES,
    FIELD_PX,
    INTENSITIES,
    LATERAL_COLOUR,
    NUM_SLIDES,
    PIXEL_UM,
    PSF_SIGMA_PX,
    WAVELENGTHS_NM,
    MicroscopySimulator,
    label_assignment,
    label_of,
    slide_of,
)
from raw_microscopy.synthetic import scene  # the optics read its LATERAL_COLOUR
from raw_microscopy.synthetic.canvas import _Canvas
from raw_microscopy.synthetic.constants import _STAIN_INDEX
from raw_microscopy.synthetic.painters import PAINTERS
from raw_microscopy.synthetic.simulator import _camera_pattern

SENSOR = SENSORS["microscopy"]


@pytest.fixture(scope="module")
def sim() -> MicroscopySimulator:
    return MicroscopySimulator(seed=0)


@pytest.fixture(scope="module")
def example3(sim):
    return sim.example(3)


def _site_colour(h: int, w: int) -> np.ndarray:
    """Colour index (0 R, 1 G, 2 B) of each pixel of an RGGB mosaic."""
    site = np.array([[0, 1], [1, 2]])
    return np.tile(site, (h // 2, w // 2))


def _background_mask(trans: np.ndarray, margin: int = 4) -> np.ndarray:
    """Pixels of clear glass: every channel transmits > 98 % here and in a (2*margin+1) neighbourhood."""
    clear = trans.min(axis=0) > 0.98
    out = clear.copy()
    for dy in range(-margin, margin + 1, 2):
        for dx in range(-margin, margin + 1, 2):
            out &= np.roll(clear, (dy, dx), axis=(0, 1))
    out[:margin], out[-margin:], out[:, :margin], out[:, -margin:] = False, False, False, False
    return out


# --------------------------------------------------------------------------- shapes, ranges


def test_example_shapes_dtypes_and_ids(sim, example3):
    assert set(example3) == {"image_id", "label", "raws"}
    assert example3["label"] == label_of(3, 0) == sim.label(3)
    assert isinstance(example3["image_id"], str) and example3["image_id"] != sim.example(4, (1.0,))["image_id"]
    assert tuple(example3["raws"]) == INTENSITIES
    for ratio, raw in example3["raws"].items():
        assert raw.dtype == np.uint16 and raw.shape == (256, 256), ratio
    trans = sim.transmission(3)
    assert trans.dtype == np.float32 and trans.shape == (3, 256, 256)
    assert 0.0 < trans.min() and trans.max() <= 1.0 + 1e-5
    # A white cell absorbs: somewhere near the centre some channel transmits less than half.
    assert trans[:, 96:160, 96:160].min() < 0.5


def _vignetting(origin: tuple[int, int], size: int = 256, field: int = FIELD_PX) -> np.ndarray:
    """Illumination fall-off over a crop at ``origin`` of the field (4.5 % at the field's corner)."""
    axis = field / 2
    y = origin[0] + np.arange(size) + 0.5 - axis
    x = origin[1] + np.arange(size) + 0.5 - axis
    return 1 - 0.045 * (y[:, None] ** 2 + x[None, :] ** 2) / (2 * axis * axis)


def test_background_level_and_intensity_scaling(sim, example3):
    """Clear glass sits at BACKGROUND_LEVEL x vignetting x the slide's lamp, and each ratio scales it."""
    trans = sim.transmission(3)
    signal = sim.signal(3)
    mask = _background_mask(trans)
    assert mask.mean() > 0.2, "expected plenty of clear background in a 256x256 crop"
    colour = _site_colour(256, 256)
    full = example3["raws"][1.0].astype(np.float64)
    lamps = []
    for c in range(3):
        sel = mask & (colour == c)
        expected_fraction = signal[c][sel].mean()
        lamps.append(expected_fraction / (BACKGROUND_LEVEL[c] * _vignetting(sim.crop_origin(3))[sel].mean()))
        # The lamp of a slide differs from nominal by +-1.5 % rms (the datasheet: same illumination).
        assert 0.94 < lamps[-1] < 1.06, lamps
        measured = (full[sel].mean() - SENSOR.black_level) / (SENSOR.white_level - SENSOR.black_level)
        assert measured == pytest.approx(expected_fraction, rel=0.01)
        for ratio in INTENSITIES[1:]:
            dn = example3["raws"][ratio].astype(np.float64)[sel].mean() - SENSOR.black_level
            assert dn == pytest.approx(ratio * (full[sel].mean() - SENSOR.black_level), rel=0.03), (c, ratio)
    assert full.max() < SENSOR.white_level  # no saturation at full light


    # One lamp for all three captures of a field: the channels agree on it.
    assert max(lamps) - min(lamps) < 0.002, lamps


def test_mean_electrons_is_the_mosaic_of_the_signal_through_the_fixed_pattern(sim):
    signal = sim.signal(1)
    e = sim.mean_electrons(1)
    gain, dark = sim.sensor_pattern(1)
    scale = (SENSOR.white_level - SENSOR.black_level) / SENSOR.gain
    for (dy, dx), c in zip(((0, 0), (0, 1), (1, 0), (1, 1)), (0, 1, 1, 2)):
        np.testing.assert_allclose(e[dy::2, dx::2], signal[c, dy::2, dx::2] * scale * gain[dy::2, dx::2]
                                   + dark[dy::2, dx::2], rtol=1e-5)


def test_fixed_pattern_belongs_to_the_camera():
    """One pattern per seed, read through each crop's window: overlapping crops share pixels."""
    sim = MicroscopySimulator(seed=0, num_examples=40)
    origins = [sim.crop_origin(i) for i in range(40)]
    gain0, dark0 = sim.sensor_pattern(0)
    assert gain0.dtype == np.float32 and gain0.shape == (256, 256)
    # PRNU 0.6 % rms and column gains 0.2 % rms around 1; dark signal ~0.5 e- with rare hot pixels.
    assert abs(gain0.mean() - 1) < 0.002 and 0.005 < gain0.std() < 0.0075, (gain0.mean(), gain0.std())
    assert np.median(dark0) == pytest.approx(0.5) and dark0.min() >= 0
    pairs = [(i, j) for i in range(40) for j in range(i + 1, 40)
             if abs(origins[i][0] - origins[j][0]) < 200 and abs(origins[i][1] - origins[j][1]) < 200]
    assert pairs, "expected two of 40 crops to overlap on the sensor"
    i, j = pairs[0]
    (ri, ci), (rj, cj) = origins[i], origins[j]
    rows, cols = (max(ri, rj), min(ri, rj) + 256), (max(ci, cj), min(ci, cj) + 256)  # on the sensor
    win_i = (slice(rows[0] - ri, rows[1] - ri), slice(cols[0] - ci, cols[1] - ci))
    win_j = (slice(rows[0] - rj, rows[1] - rj), slice(cols[0] - cj, cols[1] - cj))
    gi, di = sim.sensor_pattern(i)
    gj, dj = sim.sensor_pattern(j)
    np.testing.assert_array_equal(gi[win_i], gj[win_j])
    np.testing.assert_array_equal(di[win_i], dj[win_j])
    # Fixed for the camera: the same from a fresh simulator, another seed's camera differs.
    np.testing.assert_array_equal(MicroscopySimulator(seed=0).sensor_pattern(0)[0], gain0)
    assert not np.array_equal(_camera_pattern(1, FIELD_PX)[0], _camera_pattern(0, FIELD_PX)[0])


def test_smaller_frames_and_bad_arguments():
    small = MicroscopySimulator(seed=2, num_examples=5, size=64)
    assert small.raw(4, 0.5).shape == (64, 64)
    with pytest.raises(IndexError, match="out of range"):
        small.raw(5)
    with pytest.raises(ValueError, match="size"):
        MicroscopySimulator(size=255)
    with pytest.raises(ValueError, match="seed"):
        MicroscopySimulator(seed=-1)
    with pytest.raises(ValueError, match="ratio"):
        small.raw(0, intensity=1.5)
    with pytest.raises(ValueError, match="index"):
        label_of(-1)


# --------------------------------------------------------------------------- labels, determinism


@pytest.mark.parametrize("seed", [0, 7])
def test_label_assignment_has_the_real_counts(seed):
    labels = label_assignment(940 * 3, seed)
    for block in range(3):
        counts = np.bincount(labels[940 * block: 940 * (block + 1)], minlength=9)
        assert dict(zip(CLASS_NAMES, counts.tolist())) == CLASS_COUNTS
    assert [label_of(i, seed) for i in (0, 1, 939, 940, 2000)] == labels[[0, 1, 939, 940, 2000]].tolist()
    assert MicroscopySimulator(seed=seed).labels().tolist() == labels[:940].tolist()


def test_label_assignment_depends_on_seed():
    assert not np.array_equal(label_assignment(940, 0), label_assignment(940, 1))
    # Block 1 is its own permutation, not a copy of block 0.
    assert not np.array_equal(label_assignment(1880, 0)[:940], label_assignment(1880, 0)[940:])


def test_determinism_and_random_access(example3):
    # Example 3 alone, from a fresh simulator, equals example 3 generated after others.
    fresh = MicroscopySimulator(seed=0, num_examples=10)
    for i in (7, 0, 5):
        fresh.raw(i)
    again = fresh.example(3)
    for ratio in INTENSITIES:
        np.testing.assert_array_equal(again["raws"][ratio], example3["raws"][ratio])
    assert again["label"] == example3["label"] and again["image_id"] == example3["image_id"]
    # One intensity asked for alone is the same frame as in the full example.
    np.testing.assert_array_equal(fresh.raw(3, 0.05), example3["raws"][0.05])
    other_seed = MicroscopySimulator(seed=1).raw(3)
    assert not np.array_equal(other_seed, example3["raws"][1.0])
    # A different noise realisation of the same scene: same expectation, different pixels.
    redraw = MicroscopySimulator(seed=0).raw(3, noise_seed=12345)
    assert not np.array_equal(redraw, example3["raws"][1.0])
    assert abs(redraw.astype(float).mean() / example3["raws"][1.0].astype(float).mean() - 1) < 0.002


def test_slides_are_shared_and_every_class_is_spread_over_them():
    """Each class is dealt round the slides; cells of one slide share its lamp, other slides differ."""
    labels = label_assignment(940, 0)
    slides = np.array([slide_of(i, 0) for i in range(940)])
    assert set(slides.tolist()) == set(range(NUM_SLIDES))
    for c, name in enumerate(CLASS_NAMES):
        per_slide = np.bincount(slides[labels == c], minlength=NUM_SLIDES)
        assert per_slide.max() - per_slide.min() <= 1, (name, per_slide)
    assert slide_of(1000, 0) == MicroscopySimulator(seed=0, num_examples=1001).slide(1000)

    # Signal over (transmission x vignetting x BACKGROUND_LEVEL) is the lamp of the cell's slide.
    sim = MicroscopySimulator(seed=0, num_examples=40, size=64)

    def lamp(i):
        signal, trans = sim.signal(i), sim.transmission(i)
        vignetting = _vignetting(sim.crop_origin(i), 64, sim.field_px)
        ratio = signal / (trans * vignetting * np.array(BACKGROUND_LEVEL, dtype=np.float32)[:, None, None])
        assert ratio.max() - ratio.min() < 1e-4  # one lamp level over the frame and the three captures
        return float(ratio.mean())

    by_slide: dict[int, list[float]] = {}
    for i in range(12):
        by_slide.setdefault(sim.slide(i), []).append(lamp(i))
    shared = [v for v in by_slide.values() if len(v) > 1]
    assert shared, by_slide
    for values in shared:
        assert max(values) - min(values) < 1e-5, by_slide
    firsts = sorted(v[0] for v in by_slide.values())
    assert len(firsts) >= 2 and firsts[-1] - firsts[0] > 1e-3, by_slide


def test_a_granule_has_its_physical_size_and_mass():
    """One granule of 0.5 um is a Gaussian of sigma 0.37 x 5 px with the drawn peak density."""
    canvas = _Canvas(256, np.random.default_rng(0))  # a 256-px frame: PIXEL_UM per pixel
    region = np.zeros((256, 256), dtype=np.float32)
    region[28:228, 28:228] = 1.0  # wide, so that the region's edge (which clips granules) is far
    assert canvas.granules("eos_granule", region, 0.5, 0.0, 0.0, (0.8, 0.8), count=1) == 1
    d = canvas.density[_STAIN_INDEX["eos_granule"]].astype(np.float64)
    sigma = 0.37 * 0.5 / PIXEL_UM
    ys, xs = np.indices(d.shape)
    cy, cx = (d * ys).sum() / d.sum(), (d * xs).sum() / d.sum()
    assert min(cy, cx) > 28 + 4 * sigma and max(cy, cx) < 227 - 4 * sigma, (cy, cx)
    assert d.sum() == pytest.approx(0.8 * 2 * math.pi * sigma**2, rel=0.02)  # truncated only beyond 3 sigma
    var = (d * ((ys - cy) ** 2 + (xs - cx) ** 2)).sum() / d.sum() / 2
    # Bilinear sharing of the sub-pixel position adds at most 0.25 px^2 per axis.
    assert sigma**2 - 0.05 < var < sigma**2 + 0.3, (var, sigma**2)
    assert d.max() == pytest.approx(0.8, rel=0.2)


def test_granulocytes_carry_granules_of_their_scale_and_lymphocytes_none():
    sim = MicroscopySimulator(seed=0, num_examples=940, size=128)
    labels = sim.labels()
    counts = {name: [sim.granule_count(int(i)) for i in np.flatnonzero(labels == CLASS_NAMES.index(name))[:3]]
              for name in ("NGS", "NGB", "EOS", "BAS", "MON", "LYT")}
    assert all(c == 0 for c in counts["LYT"]), counts
    for name in ("NGS", "NGB", "EOS", "BAS", "MON"):
        assert min(counts[name]) > 20, counts
    # Neutrophil granules (0.2-0.3 um) are far more numerous than the eosinophil's (0.55-0.8 um),
    # which fill a similar cytoplasm: the number follows the size.
    assert min(counts["NGS"]) > 3 * max(counts["EOS"]), counts


def test_lateral_colour_displaces_red_and_blue_about_the_axis(monkeypatch):
    """Red and blue images are magnified by LATERAL_COLOUR about the field's centre; green stays."""
    sim = MicroscopySimulator(seed=0, num_examples=30)
    axis = sim.field_px / 2
    # A crop far from the axis, where the displacement is largest.
    i = max(range(30), key=lambda k: np.hypot(*(np.array(sim.crop_origin(k)) + 128 - axis)))
    with_ca = sim.transmission(i)
    monkeypatch.setattr(scene, "LATERAL_COLOUR", (0.0, 0.0, 0.0))
    without = sim.transmission(i)
    np.testing.assert_array_equal(with_ca[1], without[1])
    origin = np.array(sim.crop_origin(i), dtype=np.float64)
    centre = slice(64, 192)  # the white cell; over it the displacement varies by < 0.11 px
    for ch in (0, 2):
        a, b = with_ca[ch].astype(np.float64), without[ch].astype(np.float64)
        # with(X) = without(X - d) ~ without(X) - grad(without) . d: least squares for d = (dy, dx).
        gy, gx = np.gradient(b)
        g = np.stack([gy[centre, centre].ravel(), gx[centre, centre].ravel()], axis=1)
        d = np.linalg.lstsq(g, -(a - b)[centre, centre].ravel(), rcond=None)[0]
        expected = LATERAL_COLOUR[ch] * (origin + 128.0 - axis)
        assert np.linalg.norm(expected) > 0.5, expected  # a visible fraction of a pixel ...
        np.testing.assert_allclose(d, expected, atol=0.03)  # ... and the one the optics ask for


def test_psf_scales_with_the_wavelength(monkeypatch):
    """Each capture is blurred by a Gaussian of PSF_SIGMA_PX x wavelength / 525 nm (diffraction)."""
    monkeypatch.setattr(scene, "LATERAL_COLOUR", (0.0, 0.0, 0.0))
    sharp = MicroscopySimulator(seed=0, num_examples=2, psf_sigma=0.0).transmission(1)  # defocus only
    blurred = MicroscopySimulator(seed=0, num_examples=2).transmission(1)
    errors = []
    for ch, nm in enumerate(WAVELENGTHS_NM):
        # Gaussian blurs compose: blur(defocus) then blur(PSF) is the blur of their quadrature sum.
        expected = gaussian_blur_numpy(sharp[ch], PSF_SIGMA_PX * nm / 525)
        errors.append(np.abs(expected - blurred[ch])[8:-8, 8:-8].max())
        wrong = gaussian_blur_numpy(sharp[ch], PSF_SIGMA_PX)  # one PSF for all colours
        if ch != 1:
            assert np.abs(wrong - blurred[ch])[8:-8, 8:-8].max() > 5 * errors[-1], (ch, errors)
    # Sampled, truncated Gaussians of sub-pixel sigma (the defocus) compose only to ~0.5 %.
    assert max(errors) < 6e-3, errors


def test_every_class_has_one_painter():
    assert sorted(PAINTERS) == sorted(CLASS_NAMES)


def test_classes_render_their_stains():
    """Class-specific colour: eosinophil granules pass red, absorb blue/green; lymphocytes pass blue."""
    sim = MicroscopySimulator(seed=0, num_examples=940, size=128)
    labels = sim.labels()

    def mean_optical_density(name):
        idx = np.flatnonzero(labels == CLASS_NAMES.index(name))[:6]
        od = [-np.log10(sim.transmission(int(i))[:, 40:88, 40:88]).mean(axis=(1, 2)) for i in idx]
        return np.mean(od, axis=0)

    eos, lyt = mean_optical_density("EOS"), mean_optical_density("LYT")
    assert eos[2] > 1.5 * eos[0]  # orange-red: blue absorbed much more than red
    assert lyt[1] > lyt[2] and lyt[0] > lyt[2]  # purple nucleus + blue rim transmit blue best


# --------------------------------------------------------------------------- photon statistics


@pytest.mark.parametrize("ratio", [1.0, 0.25, 0.01])
def test_photon_transfer_on_background(ratio):
    """Var(DN) = gain * mean(DN above black) + gain**2 * read_noise**2 + step**2/12 on clear glass.

    The background is not perfectly flat (vignetting), so two independent noise realisations of
    the same scene are differenced: ``var(a - b) / 2`` is the temporal variance whatever the
    pixel's mean, and since the photon-transfer relation is linear in the mean, pooling pixels
    of slightly different means still gives the relation at their average.
    """
    sim = MicroscopySimulator(seed=0, num_examples=4)
    colour = _site_colour(256, 256)
    gain, read, step = SENSOR.gain, SENSOR.read_noise, SENSOR.adc_step
    diffs: dict[int, list[np.ndarray]] = {0: [], 1: [], 2: []}
    means: dict[int, list[np.ndarray]] = {0: [], 1: [], 2: []}
    for i in range(2):
        mask = _background_mask(sim.transmission(i))
        a = sim.raw(i, ratio, noise_seed=1000 + i).astype(np.float64)
        b = sim.raw(i, ratio, noise_seed=2000 + i).astype(np.float64)
        for c in range(3):
            sel = mask & (colour == c)
            diffs[c].append((a - b)[sel])
            means[c].append(((a + b) / 2 - SENSOR.black_level)[sel])
    for c in range(3):
        d = np.concatenate(diffs[c])
        n = d.size
        measured = d.var(ddof=1) / 2
        mean_dn = np.concatenate(means[c]).mean()
        read_term = gain**2 * read**2 + step**2 / 12
        expected = gain * mean_dn + read_term
        # The sample variance of n ~Gaussian values has relative std sqrt(2/(n-1)); allow 4 sigma.
        tol = 4 * math.sqrt(2 / (n - 1))
        assert n > 5000, (c, n)
        assert measured / expected - 1 == pytest.approx(0, abs=tol), (ratio, c, measured, expected, n)
        if ratio == 0.01 and c == 2:
            # At the dimmest level the read noise is a visible part of the blue variance: the
            # check above would fail without it.
            assert read_term / expected > tol


# --------------------------------------------------------------------------- learnability


def _features(rgb: np.ndarray) -> np.ndarray:
    """Colour and texture statistics of the central region of ISP views ``(N, 3, H, W)``."""
    n = rgb.shape[-1]
    m = n * 5 // 16
    centre = rgb[:, :, m:n - m, m:n - m]
    flat = centre.reshape(len(centre), 3, -1)
    feats = [flat.mean(-1), flat.std(-1)] + [np.percentile(flat, q, axis=-1) for q in (5, 25, 50, 75)]
    luma = 0.299 * centre[:, 0] + 0.587 * centre[:, 1] + 0.114 * centre[:, 2]
    feats.append(np.stack([(luma < t).mean((1, 2)) for t in (0.4, 0.55, 0.7, 0.85)], axis=1))
    feats.append(np.stack([(np.diff(luma, axis=1) ** 2).mean((1, 2)), (np.diff(luma, axis=2) ** 2).mean((1, 2))], 1))
    return np.concatenate(feats, axis=1)


@pytest.fixture
def one_torch_thread():
    """Small tensors gain nothing from threads, and on a busy shared CPU threads thrash."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _classifier_accuracy(size: int, per_class: int, seed: int) -> tuple[float, float]:
    """Held-out accuracy of a fixed logistic regression on a class-balanced draw, and the majority rate."""
    from raw_isp import StaticISP  # the ISP is only needed here
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    sim = MicroscopySimulator(seed=seed, num_examples=940 * 8, size=size)
    labels = sim.labels()
    idx = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(len(CLASS_NAMES))])
    raws = np.stack([sim.raw(int(i)) for i in idx])
    y = labels[idx]
    isp = StaticISP("bi_s_ga", camera="microscopy")
    with torch.no_grad():
        rgb = torch.cat([isp(torch.from_numpy(raws[k:k + 64])) for k in range(0, len(raws), 64)]).numpy()
    x = _features(rgb)
    order = np.random.default_rng(0).permutation(len(y))
    n_train = len(y) * 2 // 3
    train, test = order[:n_train], order[n_train:]
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))
    clf.fit(x[train], y[train])
    return float(clf.score(x[test], y[test])), float(np.bincount(y[test]).max() / len(test))


def test_classes_learnable_but_not_trivial_small(one_torch_thread):
    """Fast version: 128x128 frames, 30 per class (180 train / 90 test)."""
    pytest.importorskip("sklearn")
    acc, majority = _classifier_accuracy(size=128, per_class=30, seed=0)
    assert majority < 0.2
    assert 0.55 <= acc <= 0.95, acc


@pytest.mark.slow
def test_classes_learnable_but_not_trivial_full(one_torch_thread):
    """Full version: 256x256 frames, 50 per class (300 train / 150 test)."""
    pytest.importorskip("sklearn")
    acc, majority = _classifier_accuracy(size=256, per_class=50, seed=0)
    assert majority < 0.2
    assert 0.55 <= acc <= 0.95, acc


def test_isp_variant_changes_the_view():
    """The same raw through bi_s_ga and me_u_me: mean |difference| > 0.003 and PSNR < 45 dB.

    Border pixels (8 px) are left out so that padding choices do not count as differences.
    """
    from raw_isp import StaticISP

    sim = MicroscopySimulator(seed=0, num_examples=4)
    raws = np.stack([sim.raw(i, r) for i, r in ((0, 1.0), (1, 0.1), (2, 0.01))])
    with torch.no_grad():
        a = StaticISP("bi_s_ga", camera="microscopy")(raws).numpy()[..., 8:-8, 8:-8]
        b = StaticISP("me_u_me", camera="microscopy")(raws).numpy()[..., 8:-8, 8:-8]
    mad = np.abs(a - b).mean(axis=(1, 2, 3))
    psnr = 10 * np.log10(1.0 / ((a - b) ** 2).mean(axis=(1, 2, 3)))
    assert np.all(mad > 0.003), mad
    assert np.all(psnr < 45.0), psnr
