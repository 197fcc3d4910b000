"""Classification metrics (accuracy, macro-F1, per-class F1, confusion matrix) as an evaluate module.

Load it offline with ``evaluate.load(<path of this folder>)`` or ``raw_isp.metrics.load("classification")``.
"""

import datasets
import evaluate
import numpy as np

from raw_isp.citation import STUDY_CITATION
from raw_isp.metrics.confusion import confusion_matrix
from raw_isp.metrics.scores import check_label_names, classification_scores

_DESCRIPTION = """\
Accuracy, macro-F1, per-class F1 and the confusion matrix of integer class predictions, computed
from one confusion matrix. Equal to the Hub metrics `accuracy` (sklearn `accuracy_score`) and `f1`
with `average="macro"` / `average=None`, `labels=range(num_labels)` and `zero_division=0`: per-class
F1 is 2 TP / (2 TP + FP + FN), and 0 for a class that is neither present nor predicted, so
macro-F1 is the unweighted mean over all `num_labels` classes (the classes of Raw-Microscopy are
very imbalanced; macro-F1 weighs them equally). Without `num_labels` the classes are those that
occur in references or predictions, as sklearn does with `labels=None`.

Predictions and references are stored by `evaluate` as one int64 each per sample, so streaming
`add_batch` and distributed evaluation (`num_process`/`process_id`, or gathering with accelerate's
`gather_for_metrics`) work as for any evaluate metric; process 0 returns the results.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions (`list` of `int`, numpy array or torch tensor `(N,)`): predicted class ids.
    references (`list` of `int`, numpy array or torch tensor `(N,)`): true class ids.
    num_labels (`int`, *optional*): number of classes K; every label must lie in [0, K).
        May also be given to `evaluate.load(..., num_labels=K)`; the value given to `compute` wins.
    label_names (`list` of `str`, *optional*): K class names; adds `f1_<name>` entries (and sets
        `num_labels` when that is not given). May also be given to `evaluate.load`.

Returns:
    accuracy (`float`): fraction of correct predictions, in [0, 1].
    macro_f1 (`float`): unweighted mean of the per-class F1 scores.
    per_class_f1 (`np.ndarray` float64 `(K,)`): F1 of each class.
    f1_<name> (`float`): F1 of each named class, when `label_names` is given.
    confusion_matrix (`np.ndarray` int64 `(K, K)`): rows are references, columns predictions.
    num_samples (`int`): number of scored samples.

Examples:
    >>> import raw_isp.metrics
    >>> metric = raw_isp.metrics.load("classification")
    >>> r = metric.compute(predictions=[0, 1, 1, 2], references=[0, 1, 2, 2], num_labels=3)
    >>> round(r["accuracy"], 2), round(r["macro_f1"], 3)
    (0.75, 0.778)
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class RawClassification(evaluate.Metric):
    """Accuracy, macro-F1, per-class F1 and confusion matrix; see the module description."""

    def __init__(self, num_labels=None, label_names=None, **kwargs):
        super().__init__(**kwargs)
        self._num_labels = num_labels
        self._label_names = None if label_names is None else list(label_names)

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

    def _compute(self, predictions, references, num_labels=None, label_names=None):
        if num_labels is None:
            num_labels = self._num_labels
        if label_names is None:
            label_names = self._label_names
        if num_labels is None and label_names is not None:
            num_labels = len(label_names)
        cm = confusion_matrix(
            np.asarray(predictions, dtype=np.int64), np.asarray(references, dtype=np.int64), num_labels
        )
        check_label_names(label_names, cm.shape[0])
        return classification_scores(cm, label_names=label_names, present_only=num_labels is None)
