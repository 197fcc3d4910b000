"""The raw-to-logit explorer: one raw frame through the 12 ISP variants, 7 light levels and a trained model.

    frames      Frame, read_upload (TIFF / DNG uploads), ExampleSource (dataset examples), ExplorerError
    pictures    uint8 views, the false-colour CFA mosaic, car-mask overlays, IoU
    predictor   Predictor: a training output folder applied to developed views (its task from the folder)
    views       Explorer: the 12 views at an intensity, the 12 x 7 drift table, the ParametrizedISP panel
    page        the Gradio page (build_app) and serve(); gradio is imported only there

``scripts/explorer.py`` parses the command line and calls :func:`serve`; the Hugging Face Space
template (``docs/space/app.py``) does the same.
"""

from .frames import DATASET_NAMES, MAX_SIDE, MIN_SIDE, ExampleSource, ExplorerError, Frame, centre_crop, read_upload
from .page import CSS, build_app, error_markdown, serve
from .pictures import cfa_false_colour, iou, mask_picture, overlay_mask, to_uint8
from .predictor import Predictor, truth_for
from .views import PARAM_DEFAULTS, RATIOS, TOP_K, VARIANTS, DriftTable, Explorer, Rendered

__all__ = [
    "DATASET_NAMES", "MAX_SIDE", "MIN_SIDE", "ExampleSource", "ExplorerError", "Frame", "centre_crop", "read_upload",
    "CSS", "build_app", "error_markdown", "serve",
    "cfa_false_colour", "iou", "mask_picture", "overlay_mask", "to_uint8", "Predictor", "truth_for",
    "PARAM_DEFAULTS", "RATIOS", "TOP_K", "VARIANTS", "DriftTable", "Explorer", "Rendered",
]  # fmt: skip
