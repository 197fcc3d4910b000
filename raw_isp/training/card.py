"""The model card (``README.md``) of a training output folder, from the run's own settings and results.

The metadata is built with ``huggingface_hub`` (:func:`card_data`: ``ModelCardData`` and one
``EvalResult`` per headline metric and split), so the Hub shows the evaluation results: the
``model-index`` holds the validation and test values of ``all_results.json`` with the task,
the dataset (package, config, source, intensity) and the split; beside it ``library_name``,
``pipeline_tag``, ``license``, ``tags``, ``datasets``, ``metrics`` and, for a model fine-tuned
from the Hub, ``base_model``. The body gives the setup, the results table and examples that run
as written against the folder (the project's loader; the ``Auto`` classes when the processor
can replay the ISP).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from ..models.modeling import MODEL_PRESETS, RawISPModel, parse_isp
from .arguments import RawTrainingArguments
from .registry import get_dataset, get_task

__all__ = ["card_data", "hub_metric", "model_card"]

#: Dataset licences: the real recordings are CC BY 4.0 (Zenodo); synthetic data comes from this
#: project's simulators, which are Apache-2.0 like the code.
_LICENSES = {"synthetic": "apache-2.0", "local": "cc-by-4.0", "zenodo": "cc-by-4.0"}

#: Project metric key -> (Hub metric id, its config, display name).
_HUB_METRICS = {
    "accuracy": ("accuracy", None, "Accuracy"),
    "macro_f1": ("f1", "macro", "Macro F1"),
    "f1": ("f1", None, "F1"),
    "mean_iou": ("mean_iou", None, "Mean IoU"),
    "pixel_accuracy": ("accuracy", "pixel", "Pixel accuracy"),
    "mean_accuracy": ("accuracy", "mean per class", "Mean class accuracy"),
}
_PER_CLASS = {"iou_": ("iou", "IoU"), "f1_": ("f1", "F1")}
_TASK_NAMES = {"classification": "Image classification", "segmentation": "Semantic segmentation"}


def hub_metric(key: str) -> tuple[str, str | None, str]:
    """``(metric_type, metric_config, metric_name)`` of a project metric key in a model-index
    (e.g. ``"macro_f1"`` -> ``("f1", "macro", "Macro F1")``, ``"iou_car"`` -> ``("iou", "car",
    "IoU (car)")``)."""
    if key in _HUB_METRICS:
        return _HUB_METRICS[key]
    for prefix, (metric, name) in _PER_CLASS.items():
        if key.startswith(prefix):
            return metric, key[len(prefix):], f"{name} ({key[len(prefix):]})"
    return key, None, key.replace("_", " ")


def _base_model(name: str) -> str | None:
    """The Hub id a run started from, or None for a preset (random weights) or a local folder."""
    return None if name in MODEL_PRESETS or Path(name).exists() else name


def card_data(args: RawTrainingArguments, results: dict[str, Any], model_name: str | None = None):
    """The card's metadata (``huggingface_hub.ModelCardData``) of a run with ``results`` (the
    content of ``all_results.json``): one ``EvalResult`` per headline metric of the dataset and
    task and per split (``eval_*``: validation, ``test_*``: test); missing or NaN values are left out."""
    from huggingface_hub import EvalResult, ModelCardData

    task, info = get_task(args.task), get_dataset(args.dataset)
    metrics = list(args.headline_metrics)
    evals = []
    for split, prefix in (("validation", "eval_"), ("test", "test_")):
        for key in metrics:
            value = results.get(prefix + key)
            if not isinstance(value, (int, float)) or not math.isfinite(value):
                continue
            metric_type, metric_config, metric_name = hub_metric(key)
            evals.append(EvalResult(
                task_type=task.pipeline_tag, task_name=_TASK_NAMES[task.name], dataset_type=args.dataset,
                dataset_name=f"{info.display_name} ({args.source})", dataset_config=args.config_name,
                dataset_split=split, dataset_args={"intensity": args.intensity, "fold": args.fold},
                metric_type=metric_type, metric_config=metric_config, metric_name=metric_name,
                metric_value=float(value)))
    tags = ["raw-images", "bayer", "isp", f"isp-{parse_isp(args.isp).kind}", args.dataset.replace("_", "-")]
    if args.source == "synthetic":
        tags.append("synthetic-data")
    return ModelCardData(
        model_name=model_name or args.hub_model_id or Path(args.output_dir).name,
        library_name="transformers", pipeline_tag=task.pipeline_tag, license=_LICENSES.get(args.source, "other"),
        tags=tags, datasets=[args.dataset], metrics=list(dict.fromkeys(hub_metric(k)[0] for k in metrics)),
        base_model=_base_model(args.model_name_or_path), eval_results=evals or None)


def _examples(args: RawTrainingArguments, learned: bool) -> list[str]:
    """Python examples that run as written against the output folder (a ``frame.tiff`` beside)."""
    folder = f"folder = {str(args.output_dir)!r}  # this folder (or huggingface_hub.snapshot_download of its repo)"
    dense = get_task(args.task).dense
    # A model with metadata exposure develops each frame with gain 1 / its intensity ratio, so the
    # examples pass the ratio (1.0: a frame taken at full light).
    metadata = args.exposure == "metadata"
    own = [
        "import torch",
        "",
        "import raw_isp",
        "from raw_isp.models.modeling import load_raw_model" + (", logits_at" if dense else ""),
        "",
        folder,
        "model, info = load_raw_model(folder)",
        "raw = torch.from_numpy(raw_isp.read_raw(\"frame.tiff\"))[None]  # (1, H, W) uint16 Bayer mosaic",
        "with torch.no_grad():",
        ("    logits = model(raw, intensity=torch.tensor([1.0])).logits  # the frame's light intensity ratio"
         if metadata else "    logits = model(raw).logits"),
    ]
    if dense:
        own += ["mask = logits_at(logits, raw.shape[-2:]).argmax(1)[0]  # (H, W) class ids",
                "print({name: float((mask == i).float().mean()) for i, name in model.model.config.id2label.items()})"]
    else:
        own += ["print(model.model.config.id2label[int(logits.argmax(-1))])"]
    blocks = [own]
    if not learned:
        auto = get_task(args.task).auto_class
        replay = [
            "import raw_isp  # registers the raw image processor with transformers",
            f"from transformers import AutoImageProcessor, {auto}",
            "",
            folder,
            "processor = AutoImageProcessor.from_pretrained(folder)  # replays the training ISP",
            f"model = {auto}.from_pretrained(folder)",
            ("inputs = processor(\"frame.tiff\", intensity=1.0, return_tensors=\"pt\")  # the frame's intensity ratio"
             if metadata else "inputs = processor(\"frame.tiff\", return_tensors=\"pt\")"),
            "outputs = model(**inputs)",
        ]
        if dense:
            replay += ["size = raw_isp.read_raw(\"frame.tiff\").shape",
                       "mask = processor.post_process_semantic_segmentation(outputs, target_sizes=[size])[0]",
                       "print(mask.shape)"]
        else:
            replay += ["print(model.config.id2label[int(outputs.logits.argmax(-1))])"]
        blocks.append(replay)
    return ["```python\n" + "\n".join(block) + "\n```" for block in blocks]


def model_card(args: RawTrainingArguments, result: Any, model: RawISPModel) -> str:
    """The card's text: YAML metadata (:func:`card_data`), setup, validation and test figures of
    the headline metrics, and how to use the folder. ``result``: the run's
    :class:`~raw_isp.training.loop.TrainResult` (its ``results`` are ``all_results.json``)."""
    from huggingface_hub import ModelCard

    r = result.results
    data = card_data(args, r)
    info = get_dataset(args.dataset)
    rows = "\n".join(f"| {hub_metric(k)[2]} | {r.get('eval_' + k, float('nan')):.4f} | "
                     f"{r.get('test_' + k, float('nan')):.4f} |" for k in args.headline_metrics)
    n_params = sum(p.numel() for p in model.model.parameters())
    isp_params = sum(p.numel() for p in model.isp.parameters())
    learned = parse_isp(args.isp).kind == "learned"
    use = ("`load_raw_model(folder)` rebuilds the whole model, ISP included. The folder also loads with the "
           "transformers Auto classes: `AutoImageProcessor.from_pretrained(folder)` (after `import raw_isp`, or "
           "with `trust_remote_code=True`) replays the training ISP exactly." if not learned else
           "The learned ISP is a network the image processor cannot run: `load_raw_model(folder)` rebuilds the "
           "whole model and restores the ISP from `isp.safetensors`.")
    data_source = {"synthetic": "synthetic stand-in generated by the project's simulator (not the real recordings)",
                   "local": "real recordings (a local copy)", "zenodo": "real recordings (Zenodo)"}
    lines = [
        f"# {data.model_name}",
        "",
        f"{type(model.model).__name__} for {args.task} on {info.display_name}, with the ISP `{args.isp}` as its "
        f"first module: raw uint16 Bayer mosaics are developed on the device, inside the model. Trained by "
        f"`scripts/train_{args.task}.py` (raw_isp) on the {data_source.get(args.source, args.source)}, config "
        f"`{args.config_name}`, intensity {args.intensity}, "
        + ("the fixed split." if args.fold is None else f"fold {args.fold} of {args.n_folds}."),
        "",
        "## Setup",
        "",
        f"- model: `{args.model_name_or_path}` ({n_params:,} parameters); ISP `{args.isp}` ({isp_params:,} "
        f"parameters), camera `{args.camera_name}`",
        f"- {r['train_steps']} steps, batch {args.per_device_train_batch_size} x {args.gradient_accumulation_steps} "
        f"accumulation x {result.accelerator.num_processes} process(es), AdamW lr {args.learning_rate} "
        f"({args.lr_scheduler_type}), weight decay {args.weight_decay}, seed {args.seed}, augmentation {args.augment}",
        f"- exposure `{args.exposure}`; training light levels {args.train_intensities or args.intensity}; training ISP "
        f"variants {args.train_isp_variants or 'the ISP alone'}; corruption augmentation "
        f"{args.corruption_augment or 'none'}; class balance `{args.class_balance}`; model selection: "
        + (f"best validation `{args.metric_for_best_model}`" if args.load_best_model_at_end else "last epoch"),
        f"- samples: train {r['train_samples']}, validation {r['eval_samples']}, test {r['test_samples']}",
        f"- licence `{data.license}`: the real Raw-Microscopy and Raw-Drone recordings are CC BY 4.0 (Zenodo, "
        "DOI 10.5281/zenodo.5235536); the synthetic data and the code are Apache-2.0",
        "",
        "## Results",
        "",
        "| metric | validation | test |",
        "|---|---|---|",
        rows,
        "",
        "## Use",
        "",
        f"{use} With a raw frame `frame.tiff` in the working folder:",
        "",
        "\n\n".join(_examples(args, learned)),
        "",
    ]
    return str(ModelCard(f"---\n{data.to_yaml()}\n---\n\n" + "\n".join(lines)))
