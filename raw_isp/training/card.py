"""The model card (``README.md``) of a training output folder, from the run's own settings and results."""

from __future__ import annotations

from typing import Any

from ..models.modeling import RawISPModel, parse_isp
from .arguments import RawTrainingArguments
from .registry import get_task

__all__ = ["model_card"]


def model_card(args: RawTrainingArguments, result: Any, model: RawISPModel) -> str:
    """Markdown with YAML metadata: setup, validation and test figures of the headline metrics,
    and how to reload the folder. ``result``: the run's :class:`~raw_isp.training.loop.TrainResult`."""
    r = result.results
    rows = "\n".join(f"| {k} | {r.get('eval_' + k, float('nan')):.4f} | {r.get('test_' + k, float('nan')):.4f} |"
                     for k in args.headline_metrics)
    n_params = sum(p.numel() for p in model.model.parameters())
    isp_params = sum(p.numel() for p in model.isp.parameters())
    replay = ("`AutoImageProcessor.from_pretrained(folder)` (after `import raw_isp`, or with `trust_remote_code=True`) "
              "replays the training ISP exactly" if parse_isp(args.isp).kind != "learned" else
              "the learned ISP is a network the image processor cannot run: reload with "
              "`raw_isp.models.modeling.load_raw_model(folder)`, which restores the ISP from `isp.safetensors`")
    lines = [
        "---",
        "library_name: transformers",
        f"pipeline_tag: {get_task(args.task).pipeline_tag}",
        "tags: [raw-images, isp, " + args.dataset.replace("_", "-") + "]",
        "---",
        "",
        f"# {type(model.model).__name__} on {args.dataset} with the ISP `{args.isp}` in the loop",
        "",
        f"Trained by `scripts/train_{args.task}.py` (raw_isp) on the {args.source} {args.dataset} data "
        f"(config `{args.config_name}`, intensity {args.intensity}, fold {args.fold}).",
        "Raw uint16 mosaics are developed by the ISP as the first module of the model, on the device.",
        "",
        "## Setup",
        "",
        f"- model: `{args.model_name_or_path}` ({n_params:,} parameters); ISP `{args.isp}` ({isp_params:,} parameters), "
        f"camera `{args.camera_name}`",
        f"- {r['train_steps']} steps, batch {args.per_device_train_batch_size} x {args.gradient_accumulation_steps} "
        f"accumulation x {result.accelerator.num_processes} process(es), AdamW lr {args.learning_rate} "
        f"({args.lr_scheduler_type}), weight decay {args.weight_decay}, seed {args.seed}, augmentation {args.augment}",
        f"- samples: train {r['train_samples']}, validation {r['eval_samples']}, test {r['test_samples']}",
        "",
        "## Results",
        "",
        "| metric | validation | test |",
        "|---|---|---|",
        rows,
        "",
        "## Use",
        "",
        f"{replay}. Example:",
        "",
        "```python",
        "import raw_isp",
        "from raw_isp.models.modeling import load_raw_model",
        "model, _ = load_raw_model('" + str(args.output_dir) + "')",
        "logits = model(torch.from_numpy(raw_isp.read_raw('frame.tiff'))[None]).logits",
        "```",
        "",
    ]
    return "\n".join(lines)
