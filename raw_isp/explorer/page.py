"""The explorer's Gradio page over an :class:`~raw_isp.explorer.views.Explorer`, and serving it.

    build_app   the ``gradio.Blocks`` page: layout (:func:`_layout`), callbacks (:class:`Callbacks`),
                events (:func:`_wire`)
    serve       warm the first views, build the page, launch the server (the script and the Space)

Gradio (the project's ``demo`` extra) is imported only here, when a page is built. Every callback
catches what goes wrong and shows it in the message box (``#message``); unexpected errors are
logged with their traceback on the server, never sent to the page.
"""

from __future__ import annotations

import logging
import os
from types import SimpleNamespace
from typing import Any

from ..registry import DATASETS, dataset_for_model
from ..training.data import SPLITS
from .frames import DATASET_NAMES, UPLOAD_MAX_BYTES, ExampleSource, ExplorerError, Frame
from .pictures import cfa_false_colour, mask_picture
from .predictor import Predictor
from .views import PARAM_DEFAULTS, RATIOS, VARIANTS, Explorer, Rendered

__all__ = ["CSS", "error_markdown", "Callbacks", "build_app", "launch_options", "default_model_roots", "serve"]

logger = logging.getLogger(__name__)

#: Page style (Gradio 6 takes it at launch): the message box in red.
CSS = "#message p { color: #b00020; font-size: 1.05em; }"
_MARKDOWN_SPECIALS = str.maketrans({c: "\\" + c for c in "\\`*_[]<>#|"})


def _gradio():
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import gradio

    return gradio


def error_markdown(message: str) -> str:
    """The error box's text (Markdown): the message as plain text (a file name such as
    ``*_v2.tif`` is not read as emphasis), the file or field named first."""
    return f"**Error:** {message.translate(_MARKDOWN_SPECIALS)}"


def intensity_text(ratio_index: int, frame: Frame | None) -> str:
    """The line under the intensity slider."""
    ratio = Explorer.ratio_of(ratio_index)
    if ratio == 1.0:
        return "Intensity ratio **1** (the frame as captured)."
    sensor = f" with the {frame.camera} sensor model" if frame is not None else ""
    return f"Intensity ratio **{ratio:g}**: photons thinned physically (`SensorModel.scale_intensity`){sensor}."


def _table(columns: list[str], rows: list[list[Any]]):
    import pandas as pd

    return pd.DataFrame(rows, columns=columns) if columns else pd.DataFrame()


class Callbacks:
    """The page's event handlers. Each returns one value per output component; on an error the
    message box gets it and every other output is ``gr.skip()`` (the page keeps what it showed)."""

    #: Outputs of a new frame: message, frame state, frame info, mosaic, truth, views, predictions, intensity info.
    FRAME_OUTPUTS = 8

    def __init__(self, explorer: Explorer) -> None:
        self.explorer, self.gr = explorer, _gradio()

    def fail(self, err: Exception) -> str:
        if isinstance(err, ExplorerError):
            return error_markdown(str(err))
        logger.exception("unexpected error in a callback")
        return error_markdown(f"unexpected {type(err).__name__}: {err}".rstrip(": "))

    def _failed(self, err: Exception, n: int) -> tuple:
        return (self.fail(err),) + (self.gr.skip(),) * (n - 1)

    def predictor_of(self, model_dir: str | None) -> Predictor | None:
        return self.explorer.load_page_model(model_dir) if model_dir else None

    def _predictions(self, rendered: Rendered):
        return self.gr.update(value=_table(rendered.columns, rendered.table), visible=bool(rendered.columns))

    def _show(self, frame: Frame, ratio_index: int, model_dir: str | None) -> tuple:
        gr = self.gr
        rendered = self.explorer.render(frame, ratio_index, self.predictor_of(model_dir))
        truth = gr.update(value=mask_picture(frame.mask), visible=True) if frame.mask is not None else \
            gr.update(value=None, visible=False)
        return ("", frame, frame.describe(), cfa_false_colour(frame.raw, frame.pattern, frame.camera), truth,
                rendered.gallery, self._predictions(rendered), intensity_text(ratio_index, frame))

    def on_example(self, dataset_key, split_name, index, ratio_index, model_dir):
        try:
            return self._show(self.explorer.example(dataset_key, split_name, index), ratio_index, model_dir)
        except Exception as err:  # shown in the page, never raised to Gradio
            return self._failed(err, self.FRAME_OUTPUTS)

    def on_upload(self, file, dataset_key, ratio_index, model_dir):
        try:
            return self._show(self.explorer.upload(getattr(file, "name", file), dataset_key), ratio_index, model_dir)
        except Exception as err:
            return self._failed(err, self.FRAME_OUTPUTS)

    def on_intensity(self, frame, ratio_index, model_dir):
        skip = self.gr.skip()
        try:
            if frame is None:
                return skip, skip, skip, intensity_text(ratio_index, None)
            rendered = self.explorer.render(frame, ratio_index, self.predictor_of(model_dir))
            return skip, rendered.gallery, self._predictions(rendered), intensity_text(ratio_index, frame)
        except Exception as err:
            return self._failed(err, 4)

    def on_drift(self, frame, model_dir):
        skip = self.gr.skip()
        try:
            if frame is None:
                return skip, skip, skip
            table = self.explorer.drift_table(frame, self.predictor_of(model_dir))
            return skip, table.summary, _table(table.columns, table.rows)
        except Exception as err:
            return self._failed(err, 3)

    def on_param(self, frame, ratio_index, model_dir, variant, wb_red, wb_blue, gamma, sharpen, blur_sigma):
        skip = self.gr.skip()
        try:
            if frame is None:
                return skip, skip, skip
            picture, caption = self.explorer.parametrized_view(frame, ratio_index, self.predictor_of(model_dir),
                                                               variant, wb_red, wb_blue, gamma, sharpen, blur_sigma)
            return skip, picture, caption
        except Exception as err:
            return self._failed(err, 3)

    def on_load_model(self, model_dir):
        try:
            predictor = self.explorer.load_page_model(model_dir)
            if predictor is None:
                return "", "", "No model: views only.", self.gr.skip()
            return "", predictor.folder, predictor.describe(), predictor.training_variant or self.gr.skip()
        except Exception as err:
            return self._failed(err, 4)


def _inputs_column(gr, explorer: Explorer, start: Predictor | None, dataset: str, split: str) -> SimpleNamespace:
    """Left column: dataset, split, example index, upload, model folder."""
    c = SimpleNamespace()
    with gr.Column(scale=1, min_width=280):
        c.dataset = gr.Radio([(label, key) for key, label in DATASET_NAMES.items()], value=dataset,
                             label="Dataset", elem_id="dataset")
        gr.Markdown("  \n".join(explorer.source.describe(d) for d in DATASET_NAMES), elem_id="sources")
        with gr.Row():
            c.split = gr.Dropdown(list(SPLITS), value=split, label="Split", elem_id="split")
            c.index = gr.Number(0, precision=0, minimum=0, label="Example index", elem_id="index")
        c.show = gr.Button("Show example", variant="primary", elem_id="show-example")
        c.upload = gr.File(label="...or upload a raw frame (16-bit TIFF or DNG)", elem_id="upload")
        with gr.Row():
            c.model_in = gr.Textbox(start.folder if start is not None else "",
                                    label="Model folder (from the training scripts)", elem_id="model-dir", scale=3)
            c.load = gr.Button("Load model", elem_id="load-model", scale=1)
        c.model_info = gr.Markdown(start.describe() if start is not None else "No model: views only.",
                                   elem_id="model-info")
    return c


def _parametrized_panel(gr, start_variant: str) -> SimpleNamespace:
    """The ParametrizedISP accordion: base variant, five sliders, the live view."""
    c = SimpleNamespace()
    with gr.Accordion("ParametrizedISP: white balance, gamma, sharpening, blur", open=True):
        with gr.Row():
            with gr.Column(scale=1, min_width=280):
                c.variant = gr.Dropdown(list(VARIANTS), value=start_variant, label="Base variant",
                                        elem_id="param-variant")
                c.wb_red = gr.Slider(0.25, 4.0, value=PARAM_DEFAULTS["wb_red"], step=0.05,
                                     label="White balance: red gain x", elem_id="param-wb-red")
                c.wb_blue = gr.Slider(0.25, 4.0, value=PARAM_DEFAULTS["wb_blue"], step=0.05,
                                      label="White balance: blue gain x", elem_id="param-wb-blue")
                c.gamma = gr.Slider(1.0, 3.0, value=PARAM_DEFAULTS["gamma"], step=0.05, label="Gamma",
                                    elem_id="param-gamma")
                c.sharpen = gr.Slider(0.0, 4.0, value=PARAM_DEFAULTS["sharpen"], step=0.1,
                                      label="Sharpening x (0 = none, 1 = the variant's)", elem_id="param-sharpen")
                c.blur = gr.Slider(0.3, 2.0, value=PARAM_DEFAULTS["blur_sigma"], step=0.05,
                                   label="Blur sigma (px; Gaussian variants only)", elem_id="param-blur")
            with gr.Column(scale=2):
                c.image = gr.Image(label="Live view", interactive=False, elem_id="param-view", height=360)
                c.caption = gr.Markdown(elem_id="param-caption")
    return c


def _layout(gr, explorer: Explorer, start: Predictor | None, dataset: str, split: str) -> SimpleNamespace:
    """Every component of the page, in page order (call inside a ``gr.Blocks``)."""
    c = SimpleNamespace(frame=gr.State(None), model=gr.State(start.folder if start is not None else ""))
    gr.Markdown("# Raw-to-logit explorer\nThe same photons, different pictures: a raw Bayer frame through the "
                "12 ISP variants of the Raw2Logit study, at 7 light levels, and what a trained model makes of "
                "each view.")
    c.message = gr.Markdown("", elem_id="message")
    with gr.Row():
        c.inputs = _inputs_column(gr, explorer, start, dataset, split)
        with gr.Column(scale=2):
            c.frame_info = gr.Markdown(elem_id="frame-info")
            with gr.Row():
                c.mosaic = gr.Image(label="Raw mosaic (false-colour CFA)", interactive=False, elem_id="mosaic",
                                    format="png", height=300)
                c.truth = gr.Image(label="Ground-truth car mask", interactive=False, visible=False,
                                   elem_id="truth", format="png", height=300)
    c.intensity = gr.Slider(0, len(RATIOS) - 1, value=0, step=1, elem_id="intensity",
                            label="Light level: step 0-6 over the intensity ratios " + ", ".join(f"{r:g}" for r in RATIOS))
    c.intensity_info = gr.Markdown(intensity_text(0, None), elem_id="intensity-info")
    c.views = gr.Gallery(label="The 12 ISP variants ({bi,ma,me}_{s,u}_{ga,me}: demosaicing, sharpening, denoising)",
                         columns=6, height="auto", allow_preview=True, object_fit="contain", elem_id="views",
                         interactive=False)
    c.predictions = gr.Dataframe(label="Prediction per view", interactive=False, elem_id="predictions",
                                 visible=start is not None)
    c.drift_summary = gr.Markdown(elem_id="drift-summary")
    c.drift = gr.Dataframe(label="Prediction across ISP variants (rows) and intensities (columns)",
                           interactive=False, elem_id="drift-table")
    start_variant = start.training_variant if start is not None and start.training_variant else VARIANTS[0]
    c.param = _parametrized_panel(gr, start_variant)
    return c


def _wire(demo, c: SimpleNamespace, cb: Callbacks) -> None:
    """Connect the events: a new frame (example, dataset, page load, upload) renders its views,
    then the drift table and the ParametrizedISP view follow."""
    i, p = c.inputs, c.param
    frame_outputs = [c.message, c.frame, c.frame_info, c.mosaic, c.truth, c.views, c.predictions, c.intensity_info]
    param_inputs = [c.frame, c.intensity, c.model, p.variant, p.wb_red, p.wb_blue, p.gamma, p.sharpen, p.blur]
    param_outputs = [c.message, p.image, p.caption]
    view_outputs = [c.message, c.views, c.predictions, c.intensity_info]

    def then_drift_and_param(event):
        return (event.then(cb.on_drift, [c.frame, c.model], [c.message, c.drift_summary, c.drift],
                           show_progress="minimal")
                .then(cb.on_param, param_inputs, param_outputs, show_progress="hidden"))

    example_inputs = [i.dataset, i.split, i.index, c.intensity, c.model]
    then_drift_and_param(i.show.click(cb.on_example, example_inputs, frame_outputs))
    # A new dataset starts at its first example (the old index may be beyond its split).
    then_drift_and_param(i.dataset.change(lambda: 0, None, i.index).then(cb.on_example, example_inputs, frame_outputs))
    then_drift_and_param(demo.load(cb.on_example, example_inputs, frame_outputs))
    then_drift_and_param(i.upload.upload(cb.on_upload, [i.upload, i.dataset, c.intensity, c.model], frame_outputs))
    c.intensity.change(cb.on_intensity, [c.frame, c.intensity, c.model], view_outputs, trigger_mode="always_last",
                       show_progress="minimal").then(cb.on_param, param_inputs, param_outputs, show_progress="hidden")
    for slider in (p.variant, p.wb_red, p.wb_blue, p.gamma, p.sharpen, p.blur):
        slider.change(cb.on_param, param_inputs, param_outputs, trigger_mode="always_last", show_progress="hidden")
    loaded = i.load.click(cb.on_load_model, [i.model_in], [c.message, c.model, i.model_info, p.variant])
    then_drift_and_param(loaded.then(cb.on_intensity, [c.frame, c.intensity, c.model], view_outputs))


def default_model_roots(model: str | None = None) -> list[str]:
    """Where the page loads models from unless told: the folder holding ``model`` (its sibling
    runs), else the current folder."""
    from pathlib import Path

    return [str(Path(model).expanduser().resolve().parent)] if model else [os.getcwd()]


def launch_options(host: str = "127.0.0.1", port: int = 7860) -> dict[str, Any]:
    """``demo.launch`` settings of :func:`serve`: local by default, no share link, no error
    details in the page, uploads refused above :data:`~raw_isp.explorer.frames.UPLOAD_MAX_BYTES`."""
    return dict(server_name=host, server_port=port, share=False, ssr_mode=False, show_error=False, css=CSS,
                footer_links=[], inbrowser=False, max_file_size=UPLOAD_MAX_BYTES)


def build_app(explorer: Explorer, model: str | None = None, dataset: str | None = None, split: str = "test",
              model_roots: list[str] | None = None):
    """The Gradio Blocks page over ``explorer``; ``model``: folder loaded at start (optional);
    ``dataset``: the examples shown first (default: the registry's first dataset).
    ``model_roots``: the folders the model textbox may load from (default: the explorer's, else
    :func:`default_model_roots`); the start model is always allowed."""
    gr = _gradio()
    from pathlib import Path

    roots = list(model_roots or explorer.model_roots or default_model_roots(model))
    if model:
        roots.append(str(Path(model).expanduser().resolve()))
    explorer.model_roots = [Path(r).expanduser().resolve() for r in roots]
    start = explorer.load_model(model) if model else None
    dataset = dataset or next(iter(DATASETS))
    cb = Callbacks(explorer)
    # delete_cache: every interaction writes its pictures to Gradio's cache; drop those older than 1 h.
    with gr.Blocks(title="Raw-to-logit explorer", analytics_enabled=False, delete_cache=(1800, 3600)) as demo:
        _wire(demo, _layout(gr, explorer, start, dataset, split), cb)
    return demo


def serve(model: str | None = None, dataset: str | None = None, data_dir: str | None = None,
          cache_dir: str | None = None, num_examples: int = 60, num_tiles: int = 24, host: str = "127.0.0.1",
          port: int = 7860, device: str = "cpu", warmup: bool = True, model_root: str | None = None) -> None:
    """Build the explorer and serve its page until interrupted (``ExplorerError`` for a bad
    model folder or example source). ``dataset``: shown first (default: the model's, else
    Raw-Microscopy); ``data_dir``: a local copy of that dataset. ``warmup``: render the first
    example before serving (the first pass through each ISP is several times slower).
    ``model_root``: the folder the page's model textbox loads from (default
    :func:`default_model_roots`)."""
    explorer = Explorer(device=device, model_roots=[model_root] if model_root else None)
    predictor = explorer.load_model(model)
    if dataset is None:
        dataset = (dataset_for_model(predictor.task, predictor.camera_name, predictor.label_names)
                   if predictor is not None else next(iter(DATASETS)))
    explorer.source = ExampleSource({dataset: data_dir}, cache_dir=cache_dir, num_examples=num_examples,
                                    num_tiles=num_tiles)
    if warmup:
        frame = explorer.example(dataset, "test", 0)
        explorer.render(frame, 0, predictor)
        explorer.drift_table(frame, predictor)
        explorer.parametrized_view(frame, 0, predictor, VARIANTS[0])
    demo = build_app(explorer, model=model, dataset=dataset)
    demo.queue(default_concurrency_limit=1)
    demo.launch(**launch_options(host, port))
