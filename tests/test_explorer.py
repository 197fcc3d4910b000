"""The Raw-to-logit explorer (raw_isp.explorer) without a browser: what each input produces."""

from pathlib import Path

import numpy as np
import pytest
import tifffile
import torch

import raw_isp
import raw_isp.explorer as E
from raw_isp.training.cli import main as train_main


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The app's setting (``--threads 1``); also keeps two xdist workers off each other's cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ex(cache):
    return E.Explorer(E.ExampleSource(cache_dir=cache, num_examples=60, num_tiles=16))


def tiny_classifier(tmp_path_factory, cache, name, *options):
    """A one-step vit-micro classifier on 60 synthetic cells, with extra training ``options``."""
    out = tmp_path_factory.mktemp(name)
    assert train_main("classification", [
        "--output_dir", str(out), "--cache_dir", cache, "--num_examples", "60", "--model_name_or_path", "vit-micro",
        "--max_train_steps", "1", "--per_device_train_batch_size", "8", "--max_eval_samples", "4", *options]) == 0
    return str(out)


@pytest.fixture(scope="module")
def cls_model(tmp_path_factory, cache):
    return tiny_classifier(tmp_path_factory, cache, "cls_model", "--isp", "static:ma_s_me")


@pytest.fixture(scope="module")
def seg_model(tmp_path_factory, cache):
    out = tmp_path_factory.mktemp("seg_model")
    assert train_main("segmentation", [
        "--output_dir", str(out), "--cache_dir", cache, "--num_scenes", "10", "--frame_size", "512", "512",
        "--num_examples", "16", "--model_name_or_path", "segformer-micro", "--max_train_steps", "1",
        "--per_device_train_batch_size", "4", "--max_eval_samples", "2"]) == 0
    return str(out)


@pytest.fixture(scope="module")
def cell(ex):
    return ex.example("raw_microscopy", "test", 0)


@pytest.fixture(scope="module")
def tile(ex):
    return ex.example("raw_drone", "test", 0)


def crop(frame, size=64):
    """A small centre piece of a frame (the drift table's 84 views stay cheap)."""
    y = (frame.raw.shape[0] - size) // 2 & ~1
    mask = None if frame.mask is None else frame.mask[y:y + size, y:y + size]
    return E.Frame(raw=frame.raw[y:y + size, y:y + size].copy(), camera=frame.camera, pattern=frame.pattern,
                   title=frame.title + " (centre)", label=frame.label, mask=mask)


def static_view(frame, variant, ratio=1.0):
    """The reference view: StaticISP on the (intensity-scaled) frame, one variant at a time."""
    raw = frame.raw if ratio == 1.0 else raw_isp.SENSORS[frame.camera].scale_intensity(frame.raw, ratio, seed=0)
    isp = raw_isp.StaticISP(raw_isp.ISPConfig.from_variant(variant, pattern=frame.pattern), camera=frame.camera)
    return isp(raw_isp.io.raw_to_unit(torch.from_numpy(raw))[None])


# ---------------------------------------------------------------- pictures and frames


@pytest.mark.parametrize("pattern, colours", [("RGGB", (0, 1, 1, 2)), ("BGGR", (2, 1, 1, 0)), ("GRBG", (1, 0, 2, 1))])
def test_cfa_false_colour_paints_each_site_in_its_colour(pattern, colours):
    raw = np.full((6, 8), 30000, np.uint16)
    pic = E.cfa_false_colour(raw, pattern)
    assert pic.shape == (6, 8, 3) and pic.dtype == np.uint8
    for k, (y, x) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        c = colours[k]
        assert pic[y, x, c] == 255 and pic[y, x].sum() == 255, (pattern, y, x, pic[y, x])
        assert (pic[y + 2, x + 4] == pic[y, x]).all()  # the 2x2 tile repeats


def test_cfa_false_colour_removes_the_black_level_and_scales():
    cam = raw_isp.CAMERAS["drone"]
    black = int(round(cam.black_level[0] * 65535))
    raw = np.full((4, 4), black, np.uint16)
    raw[0, 0] = black + 4000
    pic = E.cfa_false_colour(raw, "RGGB", "drone")
    assert pic[0, 0, 0] == 255  # the brightest site is white after scaling
    assert pic[1, 1].max() <= 1  # at black level: dark


def test_centre_crop_keeps_the_cfa_phase():
    raw = np.arange(1001 * 700, dtype=np.uint32).reshape(1001, 700)[:1000].astype(np.uint16)
    crop, (y, x) = E.centre_crop(raw, 512)
    assert crop.shape == (512, 512) and y % 2 == 0 and x % 2 == 0
    assert (crop == raw[y:y + 512, x:x + 512]).all()
    same, offset = E.centre_crop(raw[:256, :300], 512)
    assert offset is None and same.shape == (256, 300)


def test_overlay_mask_tints_only_the_mask():
    view = np.full((4, 4, 3), 100, np.uint8)
    mask = np.zeros((4, 4), bool)
    mask[1, 2] = True
    out = E.overlay_mask(view, mask, colour=(255, 0, 0), alpha=0.5)
    assert (out[1, 2] == [178, 50, 50]).all()
    assert (np.delete(out.reshape(16, 3), 6, axis=0) == 100).all()


def test_upload_reads_a_tiff_and_a_dng_with_its_pattern(tmp_path, ex):
    raw = (np.random.default_rng(0).random((64, 96)) * 50000).astype(np.uint16)
    raw_isp.write_raw(tmp_path / "frame.tiff", raw)
    frame = ex.upload(tmp_path / "frame.tiff", "raw_drone")
    assert (frame.raw == raw).all() and frame.camera == "drone" and frame.pattern == "RGGB"
    assert "frame.tiff" in frame.title and "RGGB is assumed" in frame.note
    raw_isp.write_dng(tmp_path / "frame.dng", raw, pattern="GBRG")
    frame = ex.upload(tmp_path / "frame.dng", "raw_microscopy")
    assert frame.pattern == "GBRG" and frame.camera == "microscopy" and frame.note == ""


def test_upload_crops_a_large_frame_and_says_so(tmp_path, ex):
    raw = (np.random.default_rng(1).random((700, 1200)) * 50000).astype(np.uint16)
    raw_isp.write_raw(tmp_path / "big.tif", raw)
    frame = ex.upload(tmp_path / "big.tif", "raw_drone")
    assert frame.raw.shape == (512, 512)
    assert "700x1200" in frame.note and "512x512" in frame.note
    y, x = (700 - 512) // 2 & ~1, (1200 - 512) // 2 & ~1
    assert (frame.raw == raw[y:y + 512, x:x + 512]).all()


def _png(path):
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 64)


@pytest.mark.parametrize("name, write, problem", [
    ("photo.png", _png, "not a TIFF or DNG file (a PNG image)"),
    ("notes.tiff", lambda p: p.write_text("hello, not a raw frame\n"), "not a TIFF or DNG file (a text file)"),
    ("rgb.tiff", lambda p: tifffile.imwrite(p, np.zeros((64, 64, 3), np.uint16), photometric="rgb"),
     "an RGB or multi-channel image"),
    ("eight_bit.tiff", lambda p: tifffile.imwrite(p, np.zeros((64, 64), np.uint8)),
     "pixel type uint8 (8-bit) found, expected uint16"),
    ("odd.tiff", lambda p: tifffile.imwrite(p, np.zeros((63, 64), np.uint16)), "is odd"),
    ("tiny.tiff", lambda p: tifffile.imwrite(p, np.zeros((16, 16), np.uint16)), "too small"),
    ("empty.dng", lambda p: p.write_bytes(b""), "file is empty"),
])
def test_upload_refuses_bad_files_naming_file_and_problem(tmp_path, ex, name, write, problem):
    path = tmp_path / name
    write(path)
    with pytest.raises(E.ExplorerError) as err:
        ex.upload(path, "raw_microscopy")
    message = str(err.value)
    assert message.startswith(f"{name}: ") and problem in message, message
    assert str(tmp_path) not in message  # the upload's temporary folder is noise to the user


def test_upload_refuses_a_declared_giant_frame_before_decoding_it(tmp_path, ex, deflate_tiff_bomb):
    """A 1 kB Deflate TIFF declaring 20000 x 20000 pixels (800 MB decoded, under read_raw's general
    limit) is refused from its header, naming the size; a full Raw-Drone frame stays within it."""
    path = deflate_tiff_bomb(tmp_path / "bomb.tiff", 20000, 20000)
    assert path.stat().st_size < 1200
    with pytest.raises(E.ExplorerError) as err:
        ex.upload(path, "raw_microscopy")
    assert str(err.value).startswith("bomb.tiff: ") and "20000" in str(err.value), str(err.value)
    assert 3648 * 5472 <= E.frames.UPLOAD_MAX_PIXELS < 20000 * 20000


def test_upload_without_a_file(ex):
    with pytest.raises(E.ExplorerError, match="no file uploaded"):
        ex.upload(None, "raw_microscopy")


def test_examples_carry_their_label_or_mask(ex, cell, tile):
    import raw_microscopy

    assert cell.raw.dtype == np.uint16 and cell.raw.shape == (256, 256)
    assert cell.label in raw_microscopy.CLASS_NAMES and cell.mask is None and cell.camera == "microscopy"
    assert "Raw-Microscopy test #0" in cell.title and f"label **{cell.label}**" in cell.describe()
    assert tile.raw.shape == (256, 256) and tile.camera == "drone" and tile.label is None
    assert set(np.unique(tile.mask)) <= {0, 1} and tile.mask.any()
    assert ex.example("raw_microscopy", "test", 0).key == cell.key  # same pixels, same cache key
    assert ex.example("raw_microscopy", "test", 1).key != cell.key


@pytest.mark.parametrize("args, problem", [
    (("raw_microscopy", "test", 999), "example index 999 is beyond the test split of Raw-Microscopy"),
    (("raw_microscopy", "test", -1), "example index -1 is beyond"),
    (("raw_microscopy", "test", 2.5), "enter a whole number"),
    (("raw_microscopy", "test", None), "enter a whole number"),
    (("raw_microscopy", "holdout", 0), "split 'holdout'"),
    (("imagenet", "test", 0), "dataset 'imagenet'"),
])
def test_bad_example_choices_get_clear_messages(ex, args, problem):
    with pytest.raises(E.ExplorerError, match=problem.replace("(", r"\(")):
        ex.example(*args)


def test_a_missing_local_copy_is_reported_in_the_page(tmp_path, cache):
    source = E.ExampleSource({"raw_microscopy": tmp_path / "nothing-here"}, cache_dir=cache)
    assert "local copy at" in source.describe("raw_microscopy")
    with pytest.raises(E.ExplorerError, match="could not be loaded"):
        source.example("raw_microscopy", "test", 0)


# ---------------------------------------------------------------- views


def test_render_without_a_model_gives_the_12_static_views(ex, cell):
    r = ex.render(cell, 0)
    assert r.views.shape == (12, 256, 256, 3) and r.views.dtype == np.uint8
    assert r.captions == list(E.VARIANTS) and r.table == [] and r.outcome is None
    for i in (0, 5, 11):  # each view is the variant's StaticISP output, rounded to 8 bits
        assert (r.views[i] == E.to_uint8(static_view(cell, E.VARIANTS[i]))[0]).all()
    assert len({v.tobytes() for v in r.views}) == 12  # every variant develops differently


def test_lower_intensity_is_physically_scaled_and_darker(ex, cell):
    full, dim = ex.render(cell, 0), ex.render(cell, 5)  # ratio 0.05
    assert dim.ratio == 0.05
    assert (dim.views.reshape(12, -1).mean(1) < full.views.reshape(12, -1).mean(1)).all()
    assert (dim.views[3] == E.to_uint8(static_view(cell, E.VARIANTS[3], 0.05))[0]).all()
    with pytest.raises(E.ExplorerError, match="intensity step 7"):
        ex.render(cell, 7)


def test_predictions_equal_the_models_own_isp_path(ex, cell, cls_model):
    predictor = ex.load_model(cls_model)
    assert predictor.task == "classification" and predictor.training_variant == "ma_s_me"
    r = ex.render(cell, 0, predictor)
    model = predictor.model
    raw = torch.from_numpy(cell.raw)[None]
    for i, v in enumerate(E.VARIANTS):
        isp = raw_isp.StaticISP(raw_isp.ISPConfig.from_variant(v), camera=cell.camera)
        with torch.no_grad():
            probs = model.with_isp(isp)(raw).logits.softmax(-1)[0].numpy()
        np.testing.assert_allclose(r.outcome[i], probs, atol=1e-5)
        top = predictor.label_names[int(probs.argmax())]
        assert r.captions[i].startswith(v) and f": {top} " in r.captions[i]
        assert r.table[i][1].startswith(top + " ")
    assert r.columns == ["variant", "top 1", "top 2", "top 3"] and len(r.table) == 12
    assert r.table[E.VARIANTS.index("ma_s_me")][0] == "ma_s_me (training view)"


@pytest.fixture(scope="module")
def metadata_model(tmp_path_factory, cache):
    return tiny_classifier(tmp_path_factory, cache, "metadata_model", "--exposure", "metadata")


def test_a_metadata_exposure_model_sees_views_developed_as_in_training(ex, cell, metadata_model):
    """The views a model with ``--exposure metadata`` predicts on get its gain 1 / ratio, and the
    prediction is the model's own (ISP with exposure, intensity passed) on the thinned frame."""
    predictor = ex.load_model(metadata_model)
    assert predictor.exposure == "metadata" and "exposure metadata" in predictor.describe()
    cell = crop(cell)
    dim_plain, dim = ex.render(cell, 5), ex.render(cell, 5, predictor)  # ratio 0.05
    full = ex.render(cell, 0, predictor)
    # Without the gain the 0.05 view is far darker; with it, about as bright as the full-light view.
    assert dim_plain.views.mean() < 0.8 * full.views.mean()
    assert abs(float(dim.views.mean()) - float(full.views.mean())) < 0.05 * float(full.views.mean())
    raw = raw_isp.SENSORS[cell.camera].scale_intensity(cell.raw, 0.05, seed=0)
    model = predictor.model
    with torch.no_grad():
        probs = model(torch.from_numpy(raw)[None], intensity=torch.tensor([0.05])).logits.softmax(-1)[0].numpy()
    np.testing.assert_allclose(dim.outcome[E.VARIANTS.index("bi_s_ga")], probs, atol=1e-5)
    ex.clear_cache()
    table = ex.drift_table(cell, predictor)  # the 84-view batch passes each column's ratio
    np.testing.assert_allclose(ex.render(cell, 5, predictor).outcome, dim.outcome, atol=1e-5)
    assert len(table.rows) == 12


def test_drift_table_covers_variants_and_intensities_and_fills_the_cache(ex, cell, cls_model):
    predictor = ex.load_model(cls_model)
    cell = crop(cell)
    ex.clear_cache()
    table = ex.drift_table(cell, predictor)
    assert table.columns == ["variant"] + [f"intensity {r:g}" for r in raw_isp.INTENSITY_RATIOS]
    assert [row[0] for row in table.rows] == list(E.VARIANTS) and all(len(row) == 8 for row in table.rows)
    assert f"Ground truth **{cell.label}**" in table.summary and "of 84 views" in table.summary
    cached = ex.render(cell, 4, predictor)
    assert ex.render(cell, 4, predictor) is cached  # the slider's views come from the table's batch
    ex.clear_cache()
    fresh = ex.render(cell, 4, predictor)  # computed on its own: the same numbers
    np.testing.assert_allclose(cached.outcome, fresh.outcome, atol=1e-5)
    for row, probs in zip(table.rows, fresh.outcome):
        name = predictor.label_names[int(probs.argmax())]
        assert row[5] == f"{name} {100 * probs.max():.0f}%"


def test_without_a_model_the_table_says_how_to_get_one(ex, cell):
    table = ex.drift_table(cell, None)
    assert table.rows == [] and "--model" in table.summary


def test_segmentation_model_masks_and_iou(ex, tile, seg_model):
    predictor = ex.load_model(seg_model)
    assert predictor.task == "segmentation" and predictor.label_names == ["background", "car"]
    r = ex.render(tile, 0, predictor)
    assert r.outcome.shape == (12, 256, 256) and r.outcome.dtype == bool
    assert r.columns == ["variant", "car pixels", "IoU with the mask"]
    with torch.no_grad():
        isp = raw_isp.StaticISP(raw_isp.ISPConfig.from_variant(E.VARIANTS[2]), camera="drone")
        logits = predictor.model.with_isp(isp)(torch.from_numpy(tile.raw)[None]).logits
        up = torch.nn.functional.interpolate(logits, size=(256, 256), mode="bilinear", align_corners=False)
    expected = (up.argmax(1)[0] == 1).numpy()
    assert (r.outcome[2] == expected).mean() > 0.999  # equal but for float ties
    for row, pred in zip(r.table, r.outcome):
        assert row[1] == f"{100 * pred.mean():.1f}%" and row[2] == f"{E.iou(pred, tile.mask.astype(bool)):.3f}"
    table = ex.drift_table(crop(tile, 128), predictor)
    values = [float(c.split()[1]) for row in table.rows for c in row[1:]]
    assert len(values) == 84 and all(0 <= v <= 1 for v in values)
    assert "Mean IoU" in table.summary


def test_iou():
    a = np.array([[1, 1], [0, 0]], bool)
    b = np.array([[1, 0], [1, 0]], bool)
    assert E.iou(a, b) == pytest.approx(1 / 3)
    assert E.iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 1.0


# ---------------------------------------------------------------- ParametrizedISP panel


@pytest.mark.parametrize("variant", ["bi_s_ga", "me_u_me", "ma_u_ga"])
def test_parametrized_view_at_defaults_equals_the_static_variant(ex, cell, variant):
    picture, caption = ex.parametrized_view(cell, 0, None, variant)
    reference = E.to_uint8(static_view(cell, variant))[0]
    assert np.abs(picture.astype(int) - reference).max() <= 1
    assert caption.startswith(f"ParametrizedISP {variant} at intensity 1")


def test_parametrized_controls_move_the_view(ex, cell):
    base, _ = ex.parametrized_view(cell, 0, None, "bi_s_ga")
    bright, _ = ex.parametrized_view(cell, 0, None, "bi_s_ga", gamma=3.0)
    flat, _ = ex.parametrized_view(cell, 0, None, "bi_s_ga", gamma=1.2)
    assert bright.mean() > base.mean() > flat.mean()  # a larger gamma lifts the mid-tones
    redder, _ = ex.parametrized_view(cell, 0, None, "bi_s_ga", wb_red=2.0)
    bluer, _ = ex.parametrized_view(cell, 0, None, "bi_s_ga", wb_blue=2.0)
    assert not (redder == base).all() and not (bluer == base).all() and not (redder == bluer).all()

    def detail(img):  # mean absolute horizontal gradient of the green channel
        return np.abs(np.diff(img[..., 1].astype(float), axis=1)).mean()

    soft, _ = ex.parametrized_view(cell, 0, None, "bi_u_ga", sharpen=0.0, blur_sigma=1.5)
    crisp, _ = ex.parametrized_view(cell, 0, None, "bi_u_ga", sharpen=3.0, blur_sigma=0.3)
    assert detail(crisp) > detail(base) > detail(soft)
    median_a, caption = ex.parametrized_view(cell, 0, None, "bi_s_me", blur_sigma=0.4)
    median_b, _ = ex.parametrized_view(cell, 0, None, "bi_s_me", blur_sigma=1.8)
    assert (median_a == median_b).all() and "blur n/a (median denoiser)" in caption


def test_parametrized_view_with_a_model_names_the_prediction(ex, cell, cls_model):
    predictor = ex.load_model(cls_model)
    _, caption = ex.parametrized_view(cell, 2, predictor, "ma_s_me", wb_red=1.3)
    assert "at intensity 0.5" in caption and "prediction: " in caption
    assert any(f"prediction: {name} " in caption for name in predictor.label_names)


@pytest.mark.parametrize("kwargs, problem", [
    ({"variant": "xx_s_ga"}, "ISP variant 'xx_s_ga'"),
    ({"variant": "bi_s_ga", "gamma": 0.0}, "gamma must be a positive number"),
    ({"variant": "bi_s_ga", "wb_red": float("nan")}, "white balance \\(red\\) must be a positive number"),
    ({"variant": "bi_s_ga", "sharpen": -1.0}, "sharpening must be a number >= 0"),
])
def test_parametrized_view_refuses_bad_settings(ex, cell, kwargs, problem):
    with pytest.raises(E.ExplorerError, match=problem):
        ex.parametrized_view(cell, 0, None, **kwargs)


# ---------------------------------------------------------------- models


def test_load_model_caches_and_explains_wrong_folders(ex, tmp_path, cls_model):
    assert ex.load_model("") is None and ex.load_model(None) is None
    assert ex.load_model(cls_model) is ex.load_model(cls_model + "/")
    with pytest.raises(E.ExplorerError, match="no such folder"):
        ex.load_model(tmp_path / "missing")
    (tmp_path / "some_folder").mkdir()
    (tmp_path / "some_folder" / "notes.txt").write_text("not a model")
    with pytest.raises(E.ExplorerError, match="some_folder: not a model folder written by the training scripts"):
        ex.load_model(tmp_path / "some_folder")
    info = ex.load_model(cls_model).describe()
    assert "ViTForImageClassification (classification)" in info and "static:ma_s_me" in info
    assert "microscopy camera" in info


def test_a_segmentation_model_of_any_architecture_paints_masks(ex, tile, cache, tmp_path):
    # A BEiT with an UperNet head, not a SegFormer: the task recorded in its folder makes the
    # explorer load it as a segmentation model and paint its car masks.
    from transformers import BeitConfig, BeitForSemanticSegmentation

    config = BeitConfig(image_size=256, patch_size=32, hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                        intermediate_size=64, out_indices=[1, 2, 3, 4], use_auxiliary_head=False, pool_scales=[1, 2],
                        num_labels=2)
    BeitForSemanticSegmentation(config).save_pretrained(tmp_path / "beit")
    assert train_main("segmentation", [
        "--output_dir", str(tmp_path / "model"), "--cache_dir", cache, "--num_scenes", "10", "--frame_size", "512",
        "512", "--num_examples", "16", "--model_name_or_path", str(tmp_path / "beit"), "--max_train_steps", "1",
        "--per_device_train_batch_size", "4", "--max_eval_samples", "2"]) == 0
    predictor = ex.load_model(tmp_path / "model")
    assert predictor.task == "segmentation" and predictor.dense and predictor.label_names == ["background", "car"]
    r = ex.render(crop(tile, 64), 0, predictor)
    assert r.outcome.shape == (12, 64, 64) and r.outcome.dtype == bool and r.columns[1] == "car pixels"


def test_cli_checks_paths_before_starting(tmp_path, capsys, script):
    explorer_cli = script("explorer")
    with pytest.raises(SystemExit):
        explorer_cli.parse_args(["--model", str(tmp_path / "missing")])
    assert "--model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        explorer_cli.parse_args(["--data_dir", str(tmp_path / "missing")])
    assert "--data_dir" in capsys.readouterr().err
    args = explorer_cli.parse_args([])
    assert args.host == "127.0.0.1" and args.model is None and args.threads == 1


# ---------------------------------------------------------------- the Gradio page (no browser)


def test_page_callbacks_show_errors_instead_of_raising(ex, tmp_path, cell):
    gr = pytest.importorskip("gradio")
    demo = E.build_app(ex)
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"message", "views", "predictions", "drift-table", "intensity", "upload", "param-view"} <= ids
    fns = {f.fn.__name__: f.fn for f in demo.fns.values() if getattr(f, "fn", None) is not None}
    bad = tmp_path / "photo.png"
    _png(bad)
    out = fns["on_upload"](str(bad), "raw_microscopy", 0, "")
    assert out[0] == "**Error:** photo.png: not a TIFF or DNG file (a PNG image); expected a 16-bit TIFF or a DNG"
    assert all(isinstance(o, type(gr.skip())) for o in out[1:])  # the page keeps what it showed
    out = fns["on_example"]("raw_microscopy", "test", 0, 0, "")
    assert out[0] == "" and out[1].key == cell.key and len(out[5]) == 12
    out = fns["on_load_model"](str(tmp_path))  # outside the page's model folders (the current folder)
    assert out[0].startswith("**Error:** model folder") and "outside the folders this explorer loads" in out[0]
    out = fns["on_intensity"](None, 3, "")  # before any frame: only the intensity line changes
    assert all(isinstance(o, type(gr.skip())) for o in out[:3]) and "Intensity ratio **0.25**" in out[3]


def test_error_text_is_not_read_as_markdown():
    assert E.error_markdown("my_frame*v2.tif: bad <x>") == "**Error:** my\\_frame\\*v2.tif: bad \\<x\\>"


def test_the_space_entry_serves_the_package(monkeypatch):
    # docs/space/app.py imports the installed package (no script, no import-path edits) and serves
    # on every interface of the Space, with the model folder beside it when there is one.
    import runpy

    calls = []
    monkeypatch.setattr(E, "serve", lambda **kwargs: calls.append(kwargs))
    monkeypatch.delenv("GRADIO_SERVER_PORT", raising=False)
    runpy.run_path(str(Path(__file__).resolve().parents[1] / "docs" / "space" / "app.py"))
    assert calls == [{"model": None, "host": "0.0.0.0", "port": 7860}]


def test_the_model_textbox_reads_only_inside_its_model_folders(ex, tmp_path, cls_model):
    # issue 18: the textbox probed any server path (an existing folder answered differently from a missing one)
    gr = pytest.importorskip("gradio")
    saved = ex.model_roots
    try:
        root, elsewhere = tmp_path / "models", tmp_path / "elsewhere"
        (root / "notes").mkdir(parents=True)
        elsewhere.mkdir()
        (root / "link").symlink_to(elsewhere)
        demo = E.build_app(ex, model_roots=[str(root)])
        assert ex.model_roots == [root.resolve()]
        fns = {f.fn.__name__: f.fn for f in demo.fns.values() if getattr(f, "fn", None) is not None}
        answers = {str(p): fns["on_load_model"](str(p))[0] for p in (elsewhere, tmp_path / "missing", "/etc",
                                                                    root / "link", cls_model)}
        for path, answer in answers.items():
            assert answer == E.error_markdown(f"model folder {path}: outside the folders this explorer loads models "
                                              "from (give them with --model_root when starting it)"), path
        assert "not a model folder" in fns["on_load_model"](str(root / "notes"))[0]
        assert "no such folder" in fns["on_load_model"](str(root / "missing"))[0]
        with pytest.raises(E.ExplorerError, match="outside the folders"):
            ex.load_page_model(str(elsewhere))
        E.build_app(ex, model=cls_model, model_roots=[str(root)])  # the start model is allowed beside the roots
        assert fns["on_load_model"](cls_model)[1] == str(Path(cls_model).resolve())
    finally:
        ex.model_roots = saved


def test_the_server_refuses_uploads_above_the_limit_before_storing_them(ex, tmp_path, monkeypatch):
    # issue 18: 300 MiB were written to disk before the pixel limit applied; Gradio's max_file_size was not set
    import http.client
    import socket

    pytest.importorskip("gradio")
    from raw_isp.explorer.frames import UPLOAD_MAX_BYTES, UPLOAD_MAX_PIXELS
    from raw_isp.explorer.page import launch_options

    assert UPLOAD_MAX_BYTES == 2 * UPLOAD_MAX_PIXELS + (1 << 20) and UPLOAD_MAX_BYTES < 82_000_000
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    saved = ex.model_roots
    demo = E.build_app(ex)
    ex.model_roots = saved
    demo.launch(**launch_options("127.0.0.1", port), prevent_thread_lock=True, quiet=True)
    try:
        sent = UPLOAD_MAX_BYTES + (16 << 20)
        head = (b"--b\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.tif\"\r\n"
                b"Content-Type: image/tiff\r\n\r\n")
        tail = b"\r\n--b--\r\n"
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        conn.putrequest("POST", "/gradio_api/upload")
        conn.putheader("Content-Type", "multipart/form-data; boundary=b")
        conn.putheader("Content-Length", str(len(head) + sent + len(tail)))
        conn.endheaders()
        block = bytes(1 << 20)
        try:
            conn.send(head)
            for _ in range(sent >> 20):
                conn.send(block)
            conn.send(tail)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may stop reading once the limit is passed
        response = conn.getresponse()
        assert response.status == 413 and b"maximum allowed size" in response.read()
        stored = sum(p.stat().st_size for p in (tmp_path / "gradio").rglob("*") if p.is_file()) \
            if (tmp_path / "gradio").exists() else 0
        assert stored <= UPLOAD_MAX_BYTES  # what reached the disk stays under the limit
    finally:
        demo.close()
