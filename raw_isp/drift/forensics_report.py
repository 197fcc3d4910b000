"""Drift forensics of a training output folder: the search of :mod:`raw_isp.drift.forensics` run
on the model's own evaluation data, and its report.

    reference_from_info   the folder's training ISP as a ParametrizedISP (initial parameters)
    reference_isp         ... with the trained parameters of a parametrized ISP, frozen
    load_batches          the evaluation split as (raw in [0, 1], labels) batches on the device
    run_forensics         sweep groups x lambdas; adversarial processors, CSV / JSON / Markdown, pictures

Each ``adversarial/<group>_lambda<lambda>/`` folder holds a ``RawISPImageProcessor`` that replays
that adversarial ISP (``AutoImageProcessor.from_pretrained(folder)``) and ``adversarial.json``.
"""

from __future__ import annotations

import copy
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import torch

from ..atomic import atomic_write
from ..isp.config import CameraPreset, ISPConfig
from ..isp.parametrized import ParametrizedISP
from ..models.modeling import decode_raw, load_raw_model, parse_isp
from ..models.processor import RawISPImageProcessor
from ..training.arguments import RawTrainingArguments
from ..training.data import label_names, load_splits, make_loader
from .forensics import AdversarialISPSearch, SearchResult
from .plots import plot_sweep, plot_worst_case
from .reports import check_report_dir, write_csv, write_json

__all__ = [
    "DISTANCE_LABELS",
    "REPORT_FILES",
    "reference_from_info",
    "reference_isp",
    "load_batches",
    "adversarial_dir",
    "row_of",
    "most_sensitive",
    "run_forensics",
]

DISTANCE_LABELS = {"ssim": "1-SSIM", "l2": "MSE"}
REPORT_FILES = ("forensics.csv", "forensics.json", "forensics.md", "forensics.png", "worst_case.png", "adversarial")


def reference_from_info(info: dict[str, Any]) -> ParametrizedISP:
    """The training ISP of an ``isp_config.json`` (static or parametrized) as a frozen
    ParametrizedISP with its initial parameters; ``ValueError`` for a learned ISP."""
    spec = parse_isp(info["isp"])
    if spec.kind == "learned":
        raise ValueError("its ISP is 'learned' (a network with no ISP parameters to search)")
    config = ISPConfig.from_variant(spec.variant, pattern=info.get("pattern") or "RGGB")
    return ParametrizedISP(config, camera=CameraPreset.parse(info["camera"]), learn=(), exposure=info.get("exposure"))


def reference_isp(model, info: dict[str, Any]) -> ParametrizedISP:
    """The model's training ISP as a frozen ParametrizedISP on the model's device (the trained
    parameters of a parametrized ISP; a static one's as a ParametrizedISP)."""
    device = next(model.model.parameters()).device
    isp = copy.deepcopy(model.isp) if isinstance(model.isp, ParametrizedISP) else reference_from_info(info)
    for p in isp.parameters():
        p.requires_grad_(False)
    return isp.to(device)


def load_batches(settings: RawTrainingArguments, split: str, max_samples: int | None, batch_size: int | None,
                 device: torch.device) -> tuple[list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]], list[str]]:
    """The first ``max_samples`` (None or 0: all) images of ``split`` of the model's data as
    ``[(raw float (B, H, W) in [0, 1], labels, intensity (B,))]`` on ``device``, and the label
    names. ``batch_size`` None: the run's ``per_device_eval_batch_size``."""
    ds = load_splits(settings, truncate=False)[split]
    if max_samples and len(ds) > max_samples:
        ds = ds.select(range(max_samples))
    loader = make_loader(ds, settings.label_column, batch_size or settings.per_device_eval_batch_size, False, 0,
                         intensity=settings.intensity)
    batches = [(decode_raw(b["raw"].to(device)), b["labels"].to(device), b["intensity"].to(device)) for b in loader]
    return batches, label_names(ds, settings.label_column)


def lambda_tag(lam: float) -> str:
    return format(lam, "g")


def adversarial_dir(result: SearchResult) -> str:
    """Folder of a result's adversarial processor, relative to the report folder."""
    return f"adversarial/{result.group}_lambda{lambda_tag(result.lam)}"


def row_of(result: SearchResult, processor_dir: str) -> dict[str, Any]:
    """One CSV / JSON row of a search result."""
    return {"group": result.group, "lambda": result.lam, "distance_kind": result.distance_kind,
            "metric": result.metric_name, "clean": result.clean, "attained": result.attained,
            "distance": result.distance, "bound": result.bound, "step": result.step,
            "loss_clean": result.loss_clean, "loss": result.loss, "processor": processor_dir}


def save_adversarial(folder: Path, result: SearchResult, searcher: AdversarialISPSearch, model,
                     info: dict[str, Any]) -> None:
    """A RawISPImageProcessor replaying the adversarial ISP, and its parameters and numbers."""
    isp = searcher.isp_for(result.state)
    base = {k: v for k, v in model.processor.to_dict().items() if k not in ("image_processor_type", "auto_map")}
    RawISPImageProcessor(**{**base, **isp.processor_settings()}).save_pretrained(folder)
    record = {**row_of(result, ""), "reference_isp": info["isp"],
              "parameters": {n: t.tolist() for n, t in result.state.items()}}
    record.pop("processor")
    write_json(folder / "adversarial.json", record)


def most_sensitive(results: Sequence[SearchResult]) -> tuple[str, float]:
    """The single group (not "all", unless alone) with the lowest attained metric averaged over lambda."""
    groups = [r.group for r in results if r.group != "all"] or [r.group for r in results]
    means = {g: sum(r.attained for r in results if r.group == g) / sum(1 for r in results if r.group == g)
             for g in dict.fromkeys(groups)}
    name = min(means, key=lambda g: (means[g], groups.index(g)))
    return name, means[name]


def write_markdown(path: Path, summary: dict[str, Any], results: Sequence[SearchResult]) -> None:
    """``forensics.md``: settings, the attained metric per group and lambda, the worst case."""
    metric, dist = summary["metric"], DISTANCE_LABELS[summary["distance_kind"]]
    lams = sorted({r.lam for r in results})
    lines = [
        f"# Drift forensics of `{summary['model']}`", "",
        f"ISP `{summary['isp']}` ({summary['task']}, {summary['dataset']}), {summary['num_samples']} "
        f"{summary['split']} images. Adam, {summary['steps']} steps, relative step {summary['lr']}, "
        f"distance {dist}. Clean {metric}: {summary['clean']:.4f}.", "",
        f"Attained {metric} (distance {dist} in brackets); the selection rule guarantees attained <= clean at "
        "lambda = 0 and distance <= clean / lambda otherwise.", "",
        "| group | " + " | ".join(f"lambda={lambda_tag(x)}" for x in lams) + " |",
        "|---" * (len(lams) + 1) + "|",
    ]
    for group in dict.fromkeys(r.group for r in results):
        cells = [next((f"{r.attained:.4f} ({r.distance:.4f})" for r in results if r.group == group and r.lam == lam), "")
                 for lam in lams]
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    w = summary["worst_case"]
    lines += [
        "", f"Most sensitive group: **{summary['most_sensitive_group']}** (mean attained {metric} over the lambda "
        f"sweep {summary['most_sensitive_mean']:.4f}).", "",
        f"Worst case: group **{w['group']}** at lambda = {lambda_tag(w['lambda'])}: {metric} {w['clean']:.4f} -> "
        f"{w['attained']:.4f} at {dist} {w['distance']:.4f} (step {w['step']}); replay with "
        f"`AutoImageProcessor.from_pretrained(\"{w['processor']}\")` (a folder beside this file).", "",
        "![attained metric against lambda](forensics.png)", "", "![worst case](worst_case.png)", "",
    ]
    atomic_write(path, "\n".join(lines))


def run_forensics(model_dir: str | Path, output_dir: str | Path, settings: RawTrainingArguments, *,
                  groups: Sequence[str], lambdas: Sequence[float], distance: str = "ssim", steps: int = 5,
                  lr: float = 0.05, split: str = "test", max_samples: int | None = 32,
                  batch_size: int | None = None, log=print) -> dict[str, Any]:
    """Drift forensics of the model in ``model_dir`` on its data (``settings``: the run's
    training arguments, with any overrides); writes the report into ``output_dir`` (an earlier
    report there is replaced; a folder holding anything else is refused). ``log``: progress lines.
    Returns the summary written to ``forensics.json``."""
    start = time.perf_counter()
    out = Path(output_dir)
    check_report_dir(out, REPORT_FILES)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, info = load_raw_model(model_dir, device)
    model.model.requires_grad_(False)  # only the ISP parameters get gradients
    batches, names = load_batches(settings, split, max_samples, batch_size, device)

    def logits_fn(views: torch.Tensor) -> torch.Tensor:
        return model.model(pixel_values=model.processor.to_pixel_values(views)).logits

    searcher = AdversarialISPSearch(reference_isp(model, info), logits_fn, batches, settings.task, len(names),
                                    distance=distance)
    metric, dist_name = searcher.metric_name, DISTANCE_LABELS[distance]
    log(f"drift forensics of {model_dir} (ISP {info['isp']}, {settings.task}, {searcher.num_samples} {split} "
        f"images, distance {dist_name}): clean {metric} {searcher.clean.metric:.4f}")
    out.mkdir(parents=True, exist_ok=True)
    if (out / "adversarial").exists():
        shutil.rmtree(out / "adversarial")  # folders of an earlier sweep would look like results of this one

    def saved(r: SearchResult) -> None:
        save_adversarial(out / adversarial_dir(r), r, searcher, model, info)
        log(f"  {r.group:<15} lambda {lambda_tag(r.lam):>6}: {metric} {r.attained:.4f} "
            f"({dist_name} {r.distance:.4f}, step {r.step})")

    results = searcher.sweep(list(groups), list(lambdas), steps=steps, lr=lr, callback=saved)
    rows = [row_of(r, adversarial_dir(r)) for r in results]
    worst = min(results, key=lambda r: (r.attained, r.distance))
    # The picture shows the image whose loss rose most under the worst-case ISP.
    index = int((searcher.sample_losses(worst.state) - searcher.clean.sample_loss).argmax())
    with torch.no_grad():
        intensity = searcher.intensity(index)
        adv_isp, adv_raw = searcher.isp_for(worst.state), searcher.raw(index)[None]
        adv_view = (adv_isp(adv_raw) if intensity is None else adv_isp(adv_raw, intensity=intensity))[0]
    gain = plot_worst_case(out / "worst_case.png", searcher.reference_view(index), adv_view,
                           f"worst case: {worst.group}, lambda {lambda_tag(worst.lam)}: {metric} {worst.clean:.3f} -> "
                           f"{worst.attained:.3f}, {dist_name} {worst.distance:.4f} ({split} image {index})")
    sensitive, sensitive_mean = most_sensitive(results)
    plot_sweep(out / "forensics.png", results,
               f"{Path(model_dir).name}: {info['isp']}, {searcher.num_samples} {split} images, {dist_name}")
    summary = {
        "model": str(model_dir), "isp": info["isp"], "task": settings.task, "dataset": settings.dataset,
        "split": split, "num_samples": searcher.num_samples, "distance_kind": distance, "metric": metric,
        "steps": steps, "lr": lr, "lambdas": list(lambdas), "groups": list(groups),
        "clean": searcher.clean.metric, "loss_clean": searcher.clean.loss,
        "most_sensitive_group": sensitive, "most_sensitive_mean": sensitive_mean,
        "worst_case": {**row_of(worst, adversarial_dir(worst)), "image_index": index, "difference_gain": gain},
        "rows": rows, "history": [{"group": r.group, "lambda": r.lam, "steps": r.history} for r in results],
        "seconds": time.perf_counter() - start,
    }
    write_csv(out / "forensics.csv", rows, list(rows[0]))
    write_json(out / "forensics.json", summary)
    write_markdown(out / "forensics.md", summary, results)
    log(f"most sensitive group: {sensitive} (mean {metric} over the lambda sweep {sensitive_mean:.4f})")
    log(f"worst case: {worst.group} at lambda {lambda_tag(worst.lam)}: {metric} {worst.clean:.4f} -> "
        f"{worst.attained:.4f} ({dist_name} {worst.distance:.4f}); replay: {out / adversarial_dir(worst)}")
    log(f"wrote {out}/ (forensics.csv, forensics.json, forensics.md, forensics.png, worst_case.png, adversarial/) "
        f"in {summary['seconds']:.1f} s")
    return summary
