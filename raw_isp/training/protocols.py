"""Training protocols: named sets of training settings that reproduce a published setup.

``--protocol raw2logit`` (:func:`raw_isp.training.parse_training_args`) starts from the settings
of Oala et al. (TMLR 2023, code: Raw2Logit), as close as the transformers models allow; any
option given on the command line overrides them. The comparison table (setting | Raw2Logit | this
project's default | the preset) is in ``docs/training.md``.

What differs from Raw2Logit, by construction:

* the classifier is transformers' ``ResNetForImageClassification`` with ResNet-18's blocks and
  widths, not torchvision's ResNet-18 (same architecture family; no ImageNet weights offline:
  name a Hub id with ``--model_name_or_path`` to start from pretrained ones);
* the segmenter is UperNet on a ResNet-34 backbone, the closest CNN encoder-decoder in
  transformers, where Raw2Logit used UNet++ with a ResNet-34 encoder (segmentation_models_pytorch);
* the data is re-split with ``--split_seed 0..4`` into this project's grouped, stratified
  70/15/15 train / validation / test split (the validation part selects the best epoch), where
  Raw2Logit drew 5 random stratified 80/20 train / test splits.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PROTOCOLS", "RAW2LOGIT_SPLIT_SEEDS", "protocol_defaults"]

#: The seeds of the 5 re-splits (``--split_seed``) a protocol's figures are averaged over.
RAW2LOGIT_SPLIT_SEEDS = (0, 1, 2, 3, 4)

_RAW2LOGIT_COMMON: dict[str, Any] = {
    # One Adam optimiser for the task model and the ISP, one learning rate, no schedule.
    "optim": "adam", "learning_rate": 1e-5, "isp_learning_rate": 1e-5, "weight_decay": 0.0,
    "lr_scheduler_type": "constant", "num_warmup_steps": 0,
    # The ISP parameters in their own units at that rate, unclipped, as Raw2Logit trains them.
    "isp_rate_units": "raw", "isp_max_grad_norm": 0.0,
    # The study's pipelines have no exposure stage; 256 px inputs, batch 32.
    "exposure": "none", "image_size": 256, "per_device_train_batch_size": 32, "num_train_epochs": 100,
}

#: ``{protocol: {task: settings}}``; the settings are :class:`RawTrainingArguments` fields.
PROTOCOLS: dict[str, dict[str, dict[str, Any]]] = {
    "raw2logit": {
        "classification": {**_RAW2LOGIT_COMMON, "model_name_or_path": "resnet-18"},
        "segmentation": {**_RAW2LOGIT_COMMON, "model_name_or_path": "upernet-resnet34", "loss": "dice"},
    },
}


def protocol_defaults(name: str, task: str) -> dict[str, Any]:
    """The settings of protocol ``name`` for ``task``; ``ValueError`` naming the known ones otherwise."""
    if name not in PROTOCOLS:
        raise ValueError(f"--protocol {name!r}: unknown; expected one of {sorted(PROTOCOLS)}")
    if task not in PROTOCOLS[name]:
        raise ValueError(f"--protocol {name}: has no {task} settings (it has {sorted(PROTOCOLS[name])})")
    return dict(PROTOCOLS[name][task])
