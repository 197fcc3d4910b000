"""Segmentation metrics (mean IoU, per-class IoU, pixel accuracy) as an evaluate module.

Load it offline with ``evaluate.load(<path of this folder>)`` or ``raw_isp.metrics.load("segmentation")``.
"""

import datasets
import evaluate
import numpy as np

from raw_isp.citation import STUDY_CITATION
from raw_isp.metrics.confusion import add_confusion_matrices, confusion_matrix
from raw_isp.metrics.scores import check_names_cover, segmentation_scores

_DESCRIPTION = """\
Mean IoU, per-class IoU (e.g. `iou_car` on Raw-Drone), mean and per-class accuracy and pixel
(overall) accuracy of semantic segmentation maps, with the definitions of the Hub metric `mean_iou`:
intersections and unions are summed per class over the whole dataset, pixels whose reference is
`ignore_index` are left out whatever was predicted there, per-class IoU is NaN for a class absent
from both references and predictions, and `mean_iou` / `mean_accuracy` are NaN-means (absent
classes do not count; a class that is only predicted counts with IoU 0).

Unlike the Hub metric, the maps are never stored: `add_batch` folds each batch into a confusion
matrix with a single `bincount` (numpy for CPU data, `torch.bincount` on the tensors' device),
which costs a few milliseconds for 16 maps of 256x256. At `compute`, each process writes its one
partial confusion matrix through evaluate's usual cache file, and process 0 sums them, so
distributed evaluation with `num_process`/`process_id` (same `experiment_id` and a shared
`cache_dir`) is exact. With accelerate, the alternative is to `gather_for_metrics` the predicted
and reference maps and call `add_batch` on every process with the default `num_process=1`.

Settings that `add_batch` needs (`num_labels` for validation, `ignore_index`) should be given to
`evaluate.load(..., num_labels=K, ignore_index=255)` when batches are streamed; `compute` accepts
them too (as the Hub metric does) and `num_labels` may be left out entirely, in which case it is
the largest label seen plus one. `reduce_labels` and `label_map` are not supported: remap the labels
before calling the metric.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (numpy array or torch tensor `(B, H, W)` or any shape, or a list of `(H, W)` maps
        of possibly different sizes; any integer or bool dtype): predicted class ids.
    references (same shapes as `predictions`): true class ids, or `ignore_index`.
    num_labels (`int`, *optional*): number of classes K; labels of non-ignored pixels must lie in
        [0, K). Also accepted by `evaluate.load`; the value given to `compute` wins.
    ignore_index (`int` or `None`, *optional*, defaults to 255): reference value to leave out.
        Also accepted by `evaluate.load`; must not change between `add_batch` and `compute`.
    label_names (`list` of `str`, *optional*): K class names; adds `iou_<name>` entries.
    nan_to_num (`float`, *optional*): replace NaN in every result by this value (as the Hub metric).

Returns:
    mean_iou (`float`): NaN-mean of the per-class IoU.
    mean_accuracy (`float`): NaN-mean of the per-class accuracy.
    overall_accuracy (`float`): correct pixels / non-ignored pixels; `pixel_accuracy` is the same value.
    per_category_iou (`np.ndarray` float64 `(K,)`): IoU of each class (NaN when undefined).
    per_category_accuracy (`np.ndarray` float64 `(K,)`): accuracy (recall) of each class.
    iou_<name> (`float`): IoU of each named class, when `label_names` is given.
    confusion_matrix (`np.ndarray` int64 `(K, K)`): pixel counts, rows are references.
    num_pixels (`int`): number of non-ignored pixels.

Examples:
    >>> import numpy as np, raw_isp.metrics
    >>> metric = raw_isp.metrics.load("segmentation", num_labels=2, label_names=["background", "car"])
    >>> metric.add_batch(predictions=np.array([[[0, 1], [1, 1]]]), references=np.array([[[0, 1], [0, 255]]]))
    >>> r = metric.compute()
    >>> round(r["iou_car"], 3), round(r["mean_iou"], 3), round(r["pixel_accuracy"], 3)
    (0.5, 0.5, 0.667)
"""



_COMPUTE_KWARGS = ("num_labels", "ignore_index", "label_names", "nan_to_num", "reduce_labels", "label_map")


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RawSegmentation(evaluate.Metric):
    """Mean IoU and friends from a streamed confusion matrix; see the module description."""

    def __init__(self, num_labels=None, ignore_index=255, label_names=None, **kwargs):
        super().__init__(**kwargs)
        self._num_labels = num_labels
        self._ignore_index = ignore_index
        self._label_names = None if label_names is None else list(label_names)
        # With the number of classes taken from label_names, labels beyond the names are the
        # names' fault: count without a limit and say so (check_names_cover).
        self._names_set_k = num_labels is None and label_names is not None
        if self._names_set_k:
            self._num_labels = len(self._label_names)
        self._partial = None  # int64 (k, k) confusion matrix of this process since the last compute

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=STUDY_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            # What evaluate stores: one row per process and compute, the flattened partial
            # confusion matrix ("predictions") and its shape ("references"); see compute().
            features=datasets.Features(
                {
                    "predictions": datasets.Sequence(datasets.Value("int64")),
                    "references": datasets.Sequence(datasets.Value("int64")),
                }
            ),
            reference_urls=["https://huggingface.co/spaces/evaluate-metric/mean_iou"],
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Fold a batch of predicted and reference maps into this process' confusion matrix."""
        if kwargs:
            raise ValueError(f"Bad inputs for raw_segmentation.add_batch: {sorted(kwargs)}; expected predictions, references")
        if predictions is None or references is None:
            raise ValueError("raw_segmentation.add_batch needs both predictions and references")
        limit = None if self._names_set_k else self._num_labels
        cm = confusion_matrix(predictions, references, limit, self._ignore_index)
        if hasattr(cm, "detach"):
            cm = cm.cpu().numpy()
        if self._names_set_k:
            check_names_cover(cm, self._label_names)
        if self._partial is not None and self._partial.shape == cm.shape:
            self._partial += cm
        else:
            self._partial = add_confusion_matrices(self._partial, cm)

    def add(self, *, prediction=None, reference=None, **kwargs):
        """Fold one predicted map and its reference map into this process' confusion matrix."""
        if kwargs:
            raise ValueError(f"Bad inputs for raw_segmentation.add: {sorted(kwargs)}; expected prediction, reference")
        if prediction is None or reference is None:
            raise ValueError("raw_segmentation.add needs both prediction and reference")
        self.add_batch(predictions=[prediction], references=[reference])

    def compute(self, *, predictions=None, references=None, **kwargs):
        """Score everything added so far (on every process); returns the results on process 0, None elsewhere."""
        unknown = sorted(set(kwargs) - set(_COMPUTE_KWARGS))
        if unknown:
            raise ValueError(f"Unknown arguments for raw_segmentation.compute: {unknown}; accepted: {list(_COMPUTE_KWARGS)}")
        if kwargs.pop("reduce_labels", False) or kwargs.pop("label_map", None):
            raise ValueError("raw_segmentation does not support reduce_labels or label_map: remap the labels first")

        saved = (self._num_labels, self._ignore_index, self._label_names, self._names_set_k)
        try:
            if "ignore_index" in kwargs and kwargs["ignore_index"] != self._ignore_index:
                if self._partial is not None:
                    raise ValueError(
                        f"ignore_index={kwargs['ignore_index']} given to compute, but the batches were added with "
                        f"ignore_index={self._ignore_index}; pass it to evaluate.load(..., ignore_index=...) instead"
                    )
                self._ignore_index = kwargs["ignore_index"]
            if kwargs.get("num_labels") is not None:
                self._num_labels, self._names_set_k = kwargs["num_labels"], False
            elif self._num_labels is None and kwargs.get("label_names") is not None:
                self._label_names = list(kwargs["label_names"])
                self._num_labels, self._names_set_k = len(self._label_names), True
            if predictions is not None or references is not None:
                self.add_batch(predictions=predictions, references=references)
            names_set_k, names = self._names_set_k, self._label_names
        finally:
            self._num_labels, self._ignore_index, self._label_names, self._names_set_k = saved
        # Fail before anything is written when this process alone already contradicts num_labels
        # (the same check runs in _compute over all processes).
        num_labels = kwargs.get("num_labels") or self._num_labels
        if names_set_k and self._partial is not None:
            check_names_cover(self._partial, names)
        if num_labels is not None and self._partial is not None and self._partial.shape[0] > num_labels:
            raise ValueError(
                f"num_labels={num_labels}, but label {self._partial.shape[0] - 1} occurs in the non-ignored pixels"
            )

        # Hand this process' partial matrix to evaluate's storage: one row per process, which
        # process 0 reads back from every process' cache file and sums in _compute.
        partial = self._partial if self._partial is not None else np.zeros((0, 0), dtype=np.int64)
        self._partial = None
        evaluate.EvaluationModule.add_batch(
            self, predictions=[partial.ravel().tolist()], references=[list(partial.shape)]
        )
        kwargs.setdefault("ignore_index", self._ignore_index)
        return evaluate.EvaluationModule.compute(self, **kwargs)

    def _compute(self, predictions, references, num_labels=None, ignore_index=None, label_names=None, nan_to_num=None):
        partials = [np.asarray(flat, dtype=np.int64).reshape(shape) for flat, shape in zip(predictions, references)]
        cm = add_confusion_matrices(*partials)
        if label_names is None:
            label_names = self._label_names
        if num_labels is None and not self._names_set_k:
            num_labels = self._num_labels
        if num_labels is None and label_names is not None:
            check_names_cover(cm, label_names)
            num_labels = len(label_names)
        if num_labels is None:
            num_labels = cm.shape[0]
        if cm.shape[0] > num_labels:
            raise ValueError(
                f"num_labels={num_labels}, but label {cm.shape[0] - 1} occurs in the non-ignored pixels"
            )
        cm = add_confusion_matrices(cm, np.zeros((num_labels, num_labels), dtype=np.int64))
        results = segmentation_scores(cm, label_names=label_names)
        if nan_to_num is not None:
            results = {
                key: np.nan_to_num(value, nan=nan_to_num) if isinstance(value, (float, np.ndarray)) else value
                for key, value in results.items()
            }
            results = {key: float(v) if isinstance(v, np.floating) else v for key, v in results.items()}
        return results
