"""Classification metrics (accuracy, F1 with evaluate's labels/average, per-class F1, confusion matrix) as an evaluate module.

Load it offline with ``evaluate.load(<path of this folder>)`` or ``raw_isp.metrics.load("classification")``.
"""

import datasets
import evaluate
import numpy as np

from raw_isp.citation import STUDY_CITATION
from raw_isp.metrics.confusion import add_confusion_matrices, confusion_matrix
from raw_isp.metrics.scores import (
    check_average,
    check_label_names,
    check_labels,
    check_names_cover,
    classification_scores,
)

_DESCRIPTION = """\
Accuracy, F1 (macro, micro, weighted or per class), per-class F1 and the confusion matrix of integer
class predictions, computed from one confusion matrix. Equal to the Hub metrics `accuracy`
(sklearn `accuracy_score`) and `f1` (sklearn `f1_score`) with `zero_division=0`: per-class F1 is
2 TP / (2 TP + FP + FN), and 0 for a class that is neither present nor predicted.

`labels=` and `average=` work as in the Hub `f1` (sklearn semantics) and decide the `f1` entry:
`average="macro"` (the default here; the Hub's default "binary" is not supported, pass `labels=[c]`
for the F1 of class c), `"micro"`, `"weighted"`, or `None` for one score per class in the order
of `labels`. Without `labels`, the classes are `range(num_labels)` when `num_labels` (or
`label_names`) is known, else those that occur in references or predictions (sklearn's default).
So with `num_labels` the macro average counts every class, also absent ones (the classes of
Raw-Microscopy are very imbalanced; macro-F1 weighs them equally).

`macro_f1`, `per_class_f1` and the `f1_<name>` entries do not depend on `labels` / `average`.
`per_class_f1` is indexed by class id: its length is `num_labels`, or, without it, the largest
label seen plus one (absent classes in between score 0), the same as the confusion matrix. The
Hub's `f1(average=None)` instead lists only the classes present in the data; that list is what
`f1` holds with `average=None` and neither `labels` nor `num_labels`.

Predictions and references are stored by `evaluate` as one int64 each per sample, so streaming
`add_batch` and distributed evaluation (`num_process`/`process_id`, or gathering with accelerate's
`gather_for_metrics`) work as for any evaluate metric; process 0 returns the results.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`, numpy array or torch tensor `(N,)`): predicted class ids.
    references (`list` of `int`, numpy array or torch tensor `(N,)`): true class ids.
    num_labels (`int`, *optional*): number of classes K; every label must lie in [0, K).
    label_names (`list` of `str`, *optional*): K class names; adds `f1_<name>` entries (and sets
        `num_labels` when that is not given).
    labels (`list` of `int`, *optional*): the classes `f1` scores, and the order of its entries
        for `average=None` (sklearn's `labels`); ids below `num_labels` when that is known.
    average (`str` or `None`, *optional*, defaults to `"macro"`): `"macro"`, `"micro"`,
        `"weighted"` or `None` (per-class scores), as in sklearn's `f1_score`.
    Each of these may also be given to `evaluate.load(..., num_labels=K, average="weighted")`;
    the value given to `compute` wins.

Returns:
    accuracy (`float`): fraction of correct predictions, in [0, 1].
    f1 (`float`, or `np.ndarray` float64 `(len(labels),)` for `average=None`): F1 as asked.
    macro_f1 (`float`): unweighted mean of the per-class F1 over `range(num_labels)`, or over the
        classes present when `num_labels` is unknown.
    per_class_f1 (`np.ndarray` float64 `(K,)`): F1 of each class id 0..K-1.
    f1_<name> (`float`): F1 of each named class, when `label_names` is given.
    confusion_matrix (`np.ndarray` int64 `(K, K)`): rows are references, columns predictions.
    num_samples (`int`): number of scored samples.

Raises:
    ValueError naming the argument at fault: `labels` outside [0, num_labels), an unknown
    `average`, `label_names` of the wrong length, labels of the data outside [0, num_labels),
    arguments this module does not take (e.g. `sample_weight`).

Examples:
    >>> import raw_isp.metrics
    >>> metric = raw_isp.metrics.load("classification")
    >>> r = metric.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2], num_labels=3)
    >>> round(r["accuracy"], 2), round(r["macro_f1"], 3), round(r["f1"], 3)
    (0.75, 0.778, 0.778)
    >>> r = metric.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2], average="weighted")
    >>> round(r["f1"], 3)
    0.75
    >>> metric.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2], labels=[2, 0], average=None)["f1"]
    array([0.66666667, 1.        ])
"""

# Sentinel: "not given to compute" (None is a meaningful value of average).
_UNSET = object()


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RawClassification(evaluate.Metric):
    """Accuracy, F1, per-class F1 and confusion matrix; see the module description."""

    def __init__(self, num_labels=None, label_names=None, labels=None, average="macro", **kwargs):
        super().__init__(**kwargs)
        self._num_labels = num_labels
        self._label_names = None if label_names is None else list(label_names)
        self._labels = labels
        self._average = check_average(average)

    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=STUDY_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}
            ),
            reference_urls=[
                "https://scikit-learn.org/stable/modules/generated/sklearn.metrics.f1_score.html",
                "https://huggingface.co/spaces/evaluate-metric/f1",
            ],
        )

    def _compute(
        self, predictions, references, num_labels=None, label_names=None, labels=None, average=_UNSET, **unsupported
    ):
        if unsupported:
            raise ValueError(
                f"raw_classification does not take {sorted(unsupported)}; it takes num_labels, label_names, labels "
                "and average"
            )
        num_labels = self._num_labels if num_labels is None else num_labels
        label_names = self._label_names if label_names is None else label_names
        labels = self._labels if labels is None else labels
        average = self._average if average is _UNSET else check_average(average)
        # Arguments first, so that an error names the argument rather than the data.
        if num_labels is not None and (
            isinstance(num_labels, bool) or not isinstance(num_labels, (int, np.integer)) or num_labels < 1
        ):
            raise ValueError(f"num_labels must be a positive int or None, got {num_labels!r}")
        names_set_k = num_labels is None and label_names is not None
        if names_set_k:
            check_label_names(label_names, len(label_names))
        elif label_names is not None:
            check_label_names(label_names, num_labels)
        k = len(label_names) if names_set_k else num_labels
        if labels is not None:
            labels = check_labels(labels, k)
        preds, refs = np.asarray(predictions, dtype=np.int64), np.asarray(references, dtype=np.int64)
        if names_set_k:
            cm = confusion_matrix(preds, refs)
            check_names_cover(cm, label_names)
            cm = add_confusion_matrices(cm, np.zeros((k, k), dtype=np.int64))
        else:
            cm = confusion_matrix(preds, refs, num_labels)
        return classification_scores(
            cm, label_names=label_names, present_only=k is None, labels=labels, average=average
        )
