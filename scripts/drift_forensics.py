#!/usr/bin/env python
"""Drift forensics: search the ISP's parameters for the settings a trained model is most sensitive to.

For a model folder written by ``train_classification.py`` / ``train_segmentation.py`` (static
or parametrized ISP), the model's ISP becomes a :class:`raw_isp.ParametrizedISP` (the reference)
and, per parameter group and penalty weight lambda, Adam moves that group to raise the task loss
while ``lambda * distance(adversarial view, reference view)`` keeps the view close
(:mod:`raw_isp.drift.forensics`; distance ``1 - SSIM`` or mean squared error on RGB views in [0, 1]).
The iterate with the smallest ``metric + lambda * distance`` is reported, so with lambda = 0 the
attained metric is at most the clean one, and for lambda > 0 the distance is at most
``clean metric / lambda``. Examples::

    python scripts/drift_forensics.py --model outputs/classification
    python scripts/drift_forensics.py --model outputs/segmentation --groups all,gamma,white_balance \\
        --lambdas 0,1,100 --distance l2 --steps 5

Writes into ``--output_dir``: ``forensics.csv`` (one row per group and lambda), ``forensics.json``
(settings, rows and every step), ``forensics.md`` (summary), ``forensics.png`` (attained metric
against lambda per group), ``worst_case.png`` (reference view, adversarial view, amplified
difference) and ``adversarial/<group>_lambda<lambda>/`` (a ``RawISPImageProcessor`` that replays
that adversarial ISP: ``AutoImageProcessor.from_pretrained(folder)``, plus ``adversarial.json``
with its parameters and numbers).
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import raw_training  # noqa: E402

import raw_isp  # noqa: E402
from raw_isp.isp.config import CameraPreset, ISPConfig  # noqa: E402
from raw_isp.drift.forensics import DISTANCES, AdversarialISPSearch, SearchResult, parse_groups  # noqa: E402
from raw_isp.models.modeling import ISP_CONFIG_NAME, decode_raw, load_raw_model, parse_isp  # noqa: E402

TRAINING_ARGS = "training_args.json"
DEFAULT_LAMBDAS = "0,0.1,1,10,100"
DISTANCE_LABELS = {"ssim": "1-SSIM", "l2": "MSE"}


# ---------------------------------------------------------------- arguments

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", required=True, help="a training output folder (static or parametrized ISP)")
    p.add_argument("--split", choices=("train", "validation", "test"), default="test", help="evaluation split")
    p.add_argument("--groups", default=None,
                   help="comma-separated parameter groups: all, black_level, white_balance, colour_matrix, "
                   "sharpen_kernel (or sharpening), blur_kernel (or blur; Gaussian denoising only), gamma "
                   "(None: all, then each group the ISP has)")
    p.add_argument("--lambdas", default=DEFAULT_LAMBDAS, help="comma-separated penalty weights (>= 0)")
    p.add_argument("--distance", choices=DISTANCES, default="ssim",
                   help="ssim: 1 - SSIM; l2: mean squared error; on RGB views in [0, 1]")
    p.add_argument("--steps", type=int, default=5, help="Adam steps per search (each one pass over the data)")
    p.add_argument("--lr", type=float, default=0.05,
                   help="Adam step size relative to each parameter's scale (RMS of its reference values, >= 0.05)")
    p.add_argument("--max_eval_samples", type=int, default=32,
                   help="evaluate on the first N images of the split (0: all of it)")
    p.add_argument("--batch_size", type=int, default=None,
                   help="images per batch (None: the training run's per_device_eval_batch_size)")
    p.add_argument("--data_dir", default=None, help="the real data, if it moved since training (None: as trained)")
    p.add_argument("--cache_dir", default=None, help="datasets cache folder (None: as trained)")
    p.add_argument("--output_dir", default="outputs/drift_forensics")
    return p


def parse_lambdas(text: str) -> list[float]:
    """``"0,0.1,1"`` -> ``[0.0, 0.1, 1.0]`` (repeats dropped); ValueError naming a bad value."""
    out: list[float] = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            value = float(part)
        except ValueError:
            raise ValueError(f"--lambdas: {part!r} is not a number") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"--lambdas: {part} must be a finite number >= 0")
        if value not in out:
            out.append(value)
    if not out:
        raise ValueError("--lambdas: give at least one value")
    return out


def reference_from_info(info: dict[str, Any]) -> raw_isp.ParametrizedISP:
    """The model's training ISP as a ParametrizedISP with its initial (untrained) parameters;
    the trained ones of a parametrized ISP are loaded later from the model."""
    spec = parse_isp(info["isp"])
    config = ISPConfig.from_variant(spec.variant, pattern=info.get("pattern") or "RGGB")
    return raw_isp.ParametrizedISP(config, camera=CameraPreset.parse(info["camera"]), learn=())


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse and check everything that can be checked before the model or data are loaded."""
    parser = build_parser()
    args = parser.parse_args(argv)
    folder = Path(args.model)
    if not folder.is_dir():
        parser.error(f"--model {folder}: no such folder")
    info_file, train_file = folder / ISP_CONFIG_NAME, folder / TRAINING_ARGS
    for f in (info_file, train_file):
        if not f.is_file():
            parser.error(f"--model {folder}: no {f.name}; not a folder written by the training scripts")
    try:
        args.info = json.loads(info_file.read_text())
        spec = parse_isp(args.info["isp"])
        args.training = json.loads(train_file.read_text())
    except (ValueError, KeyError, TypeError) as err:
        parser.error(f"--model {folder}: unreadable {info_file.name} or {train_file.name} ({err})")
    if spec.kind == "learned":
        parser.error(f"--model {folder}: its ISP is 'learned' (a network with no ISP parameters to search); "
                     "drift forensics needs a model trained with a static or parametrized ISP")
    if args.training.get("task") not in raw_training.TASKS:
        parser.error(f"--model {folder}: {TRAINING_ARGS} names no task ({raw_training.TASKS})")
    try:
        args.lambda_values = parse_lambdas(args.lambdas)
    except ValueError as err:
        parser.error(str(err))
    try:
        probe = reference_from_info(args.info)
    except (ValueError, KeyError, TypeError) as err:
        parser.error(f"--model {folder}: {ISP_CONFIG_NAME} does not describe a valid ISP ({err})")
    try:
        if args.groups is None:
            args.group_names = ["all", *parse_groups([g for g in raw_isp.PARAMETER_GROUPS
                                                      if getattr(probe, g) is not None], probe)]
        else:
            args.group_names = parse_groups(args.groups, probe)
    except ValueError as err:
        parser.error(f"--groups: {err}")
    for name in ("steps", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name} must be a positive integer, got {value}")
    if args.max_eval_samples < 0:
        parser.error(f"--max_eval_samples must be >= 0, got {args.max_eval_samples}")
    if not (math.isfinite(args.lr) and args.lr > 0):
        parser.error(f"--lr must be a positive number, got {args.lr}")
    if args.data_dir is not None and not Path(args.data_dir).exists():
        parser.error(f"--data_dir {args.data_dir}: no such file or folder")
    return args


# ---------------------------------------------------------------- data and model

def training_namespace(args: argparse.Namespace) -> argparse.Namespace:
    """The training run's arguments (defaults for anything the JSON lacks), with overrides."""
    task = args.training["task"]
    ns = raw_training.build_parser(task).parse_args([])
    for key, value in args.training.items():
        setattr(ns, key, value)
    ns.task = task
    if args.data_dir is not None:
        ns.data_dir, ns.source = args.data_dir, "local"
    if args.cache_dir is not None:
        ns.cache_dir = args.cache_dir
    ns.max_train_samples = ns.max_eval_samples = None  # this script truncates the chosen split itself
    return ns


def load_batches(args: argparse.Namespace, device: torch.device):
    """Evaluation batches ``[(raw float (B, H, W) in [0, 1], labels)]`` on ``device``, and label names."""
    ns = training_namespace(args)
    splits = raw_training.load_splits(ns)
    ds = splits[args.split]
    if args.max_eval_samples and len(ds) > args.max_eval_samples:
        ds = ds.select(range(args.max_eval_samples))
    label_column, label_names = raw_training.label_info(splits, ns.task)
    batch_size = args.batch_size or int(getattr(ns, "per_device_eval_batch_size", 16))
    loader = raw_training.make_loader(ds, label_column, batch_size, False, 0)
    batches = [(decode_raw(b["raw"].to(device)), b["labels"].to(device)) for b in loader]
    return batches, label_names, ns


def reference_isp(model, info: dict[str, Any]) -> raw_isp.ParametrizedISP:
    """The model's training ISP as a frozen ParametrizedISP on the model's device."""
    device = next(model.model.parameters()).device
    if isinstance(model.isp, raw_isp.ParametrizedISP):
        import copy

        isp = copy.deepcopy(model.isp)
    else:
        isp = reference_from_info(info)
    for p in isp.parameters():
        p.requires_grad_(False)
    return isp.to(device)


# ---------------------------------------------------------------- outputs

def lambda_tag(lam: float) -> str:
    return format(lam, "g")


def adversarial_dir(result: SearchResult) -> str:
    """Folder of a result's adversarial processor, relative to the output folder."""
    return f"adversarial/{result.group}_lambda{lambda_tag(result.lam)}"


def processor_settings(model) -> dict[str, Any]:
    return {k: v for k, v in model.processor.to_dict().items() if k not in ("image_processor_type", "auto_map")}


def save_adversarial(folder: Path, result: SearchResult, searcher: AdversarialISPSearch, model,
                     info: dict[str, Any]) -> None:
    """A RawISPImageProcessor replaying the adversarial ISP, and its parameters and numbers."""
    isp = searcher.isp_for(result.state)
    settings = {**processor_settings(model), **isp.processor_settings()}
    raw_isp.RawISPImageProcessor(**settings).save_pretrained(folder)
    record = {**row_of(result, ""), "reference_isp": info["isp"],
              "parameters": {n: t.tolist() for n, t in result.state.items()}}
    record.pop("processor")
    (folder / "adversarial.json").write_text(json.dumps(record, indent=1) + "\n")


def row_of(result: SearchResult, processor_dir: str) -> dict[str, Any]:
    return {"group": result.group, "lambda": result.lam, "distance_kind": result.distance_kind,
            "metric": result.metric_name, "clean": result.clean, "attained": result.attained,
            "distance": result.distance, "bound": result.bound, "step": result.step,
            "loss_clean": result.loss_clean, "loss": result.loss, "processor": processor_dir}


def most_sensitive(results: list[SearchResult]) -> tuple[str, float]:
    """The single group (not "all", unless alone) with the lowest attained metric averaged over lambda."""
    groups = [r.group for r in results if r.group != "all"] or [r.group for r in results]
    means = {g: sum(r.attained for r in results if r.group == g) / sum(1 for r in results if r.group == g)
             for g in dict.fromkeys(groups)}
    name = min(means, key=lambda g: (means[g], groups.index(g)))
    return name, means[name]


def plot_sweep(path: Path, results: list[SearchResult], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lams = sorted({r.lam for r in results})
    positive = [x for x in lams if x > 0]
    fig, ax = plt.subplots(figsize=(6.4, 4.0), dpi=100)
    for group in dict.fromkeys(r.group for r in results):
        pts = sorted((r.lam, r.attained) for r in results if r.group == group)
        ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=group,
                linewidth=2.4 if group == "all" else 1.4)
    clean = results[0].clean
    ax.axhline(clean, color="black", linestyle="--", linewidth=1, label=f"clean ({clean:.3f})")
    if positive:
        ax.set_xscale("symlog", linthresh=min(positive))  # log-x that also shows lambda = 0
        ax.set_xlim(0, max(positive) * 2)
    ax.set_xlabel("lambda (penalty weight on the view distance)")
    ax.set_ylabel(f"attained {results[0].metric_name}")
    ax.set_title(title, fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def plot_worst_case(path: Path, reference: torch.Tensor, adversarial: torch.Tensor, title: str) -> float:
    """Three panels; returns the gain applied to the absolute difference."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ref = reference.detach().float().cpu().clamp(0, 1)
    adv = adversarial.detach().float().cpu().clamp(0, 1)
    diff = (adv - ref).abs()
    peak = float(diff.max())
    gain = 1.0 / peak if peak > 0 else 1.0
    fig, axes = plt.subplots(1, 3, figsize=(9.6, 3.6), dpi=100)
    for ax, img, name in zip(axes, (ref, adv, (diff * gain).clamp(0, 1)),
                             ("reference view", "adversarial view", f"|difference| x {gain:.3g}")):
        ax.imshow(img.permute(1, 2, 0).numpy())
        ax.set_title(name, fontsize=10)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return gain


def fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"


def write_markdown(path: Path, summary: dict[str, Any], results: list[SearchResult]) -> None:
    metric, dist = summary["metric"], DISTANCE_LABELS[summary["distance_kind"]]
    lams = sorted({r.lam for r in results})
    head = "| group | " + " | ".join(f"lambda={lambda_tag(x)}" for x in lams) + " |"
    lines = [
        f"# Drift forensics of `{summary['model']}`",
        "",
        f"ISP `{summary['isp']}` ({summary['task']}, {summary['dataset']}), {summary['num_samples']} "
        f"{summary['split']} images. Adam, {summary['steps']} steps, relative step {summary['lr']}, "
        f"distance {dist}. Clean {metric}: {summary['clean']:.4f}.",
        "",
        f"Attained {metric} (distance {dist} in brackets); the selection rule guarantees attained <= clean at "
        "lambda = 0 and distance <= clean / lambda otherwise.",
        "",
        head,
        "|---" * (len(lams) + 1) + "|",
    ]
    for group in dict.fromkeys(r.group for r in results):
        cells = []
        for lam in lams:
            r = next((r for r in results if r.group == group and r.lam == lam), None)
            cells.append("" if r is None else f"{r.attained:.4f} ({r.distance:.4f})")
        lines.append(f"| {group} | " + " | ".join(cells) + " |")
    w = summary["worst_case"]
    lines += [
        "",
        f"Most sensitive group: **{summary['most_sensitive_group']}** (mean attained {metric} over the lambda sweep "
        f"{summary['most_sensitive_mean']:.4f}).",
        "",
        f"Worst case: group **{w['group']}** at lambda = {lambda_tag(w['lambda'])}: {metric} {w['clean']:.4f} -> "
        f"{w['attained']:.4f} at {dist} {w['distance']:.4f} (step {w['step']}); replay with "
        f"`AutoImageProcessor.from_pretrained(\"{w['processor']}\")` (a folder beside this file).",
        "",
        "![attained metric against lambda](forensics.png)",
        "",
        "![worst case](worst_case.png)",
        "",
    ]
    path.write_text("\n".join(lines))


# ---------------------------------------------------------------- main

def run(args: argparse.Namespace) -> dict[str, Any]:
    start = time.perf_counter()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model, info = load_raw_model(args.model, device)
    model.model.requires_grad_(False)  # only the ISP parameters get gradients
    batches, label_names, ns = load_batches(args, device)
    reference = reference_isp(model, info)

    def logits_fn(views: torch.Tensor) -> torch.Tensor:
        return model.model(pixel_values=model.processor.to_pixel_values(views)).logits

    searcher = AdversarialISPSearch(reference, logits_fn, batches, ns.task, len(label_names), distance=args.distance)
    metric = searcher.metric_name
    print(f"drift forensics of {args.model} (ISP {info['isp']}, {ns.task}, {searcher.num_samples} {args.split} "
          f"images, distance {DISTANCE_LABELS[args.distance]}): clean {metric} {searcher.clean.metric:.4f}")

    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    adv_root = out / "adversarial"
    if adv_root.exists():
        shutil.rmtree(adv_root)  # folders of an earlier sweep would look like results of this one

    def saved(r: SearchResult) -> None:
        save_adversarial(out / adversarial_dir(r), r, searcher, model, info)
        print(f"  {r.group:<15} lambda {lambda_tag(r.lam):>6}: {metric} {r.attained:.4f} "
              f"({DISTANCE_LABELS[args.distance]} {r.distance:.4f}, step {r.step})")

    results = searcher.sweep(args.group_names, args.lambda_values, steps=args.steps, lr=args.lr, callback=saved)
    rows = [row_of(r, adversarial_dir(r)) for r in results]

    worst = min(results, key=lambda r: (r.attained, r.distance))
    worst_rel = adversarial_dir(worst)
    # The picture shows the image whose loss rose most under the worst-case ISP.
    gain_per_image = searcher.sample_losses(worst.state) - searcher.clean.sample_loss
    index = int(gain_per_image.argmax())
    adv_isp = searcher.isp_for(worst.state)
    with torch.no_grad():
        adv_view = adv_isp(searcher.raw(index)[None])[0]
    dist_name = DISTANCE_LABELS[args.distance]
    gain = plot_worst_case(out / "worst_case.png", searcher.reference_view(index), adv_view,
                           f"worst case: {worst.group}, lambda {lambda_tag(worst.lam)}: {metric} {worst.clean:.3f} -> "
                           f"{worst.attained:.3f}, {dist_name} {worst.distance:.4f} ({args.split} image {index})")
    sensitive, sensitive_mean = most_sensitive(results)
    plot_sweep(out / "forensics.png", results,
               f"{Path(args.model).name}: {info['isp']}, {searcher.num_samples} {args.split} images, {dist_name}")

    summary = {
        "model": str(args.model), "isp": info["isp"], "task": ns.task, "dataset": ns.dataset, "split": args.split,
        "num_samples": searcher.num_samples, "distance_kind": args.distance, "metric": metric,
        "steps": args.steps, "lr": args.lr, "lambdas": args.lambda_values, "groups": args.group_names,
        "clean": searcher.clean.metric, "loss_clean": searcher.clean.loss,
        "most_sensitive_group": sensitive, "most_sensitive_mean": sensitive_mean,
        "worst_case": {**row_of(worst, worst_rel), "image_index": index, "difference_gain": gain},
        "rows": rows,
        "history": [{"group": r.group, "lambda": r.lam, "steps": r.history} for r in results],
        "seconds": time.perf_counter() - start,
    }
    with open(out / "forensics.csv", "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in row.items()} for row in rows)
    (out / "forensics.json").write_text(json.dumps(summary, indent=1) + "\n")
    write_markdown(out / "forensics.md", summary, results)

    print(f"most sensitive group: {sensitive} (mean {metric} over the lambda sweep {sensitive_mean:.4f})")
    print(f"worst case: {worst.group} at lambda {lambda_tag(worst.lam)}: {metric} {worst.clean:.4f} -> "
          f"{worst.attained:.4f} ({dist_name} {worst.distance:.4f}); replay: {out / worst_rel}")
    print(f"wrote {out}/ (forensics.csv, forensics.json, forensics.md, forensics.png, worst_case.png, adversarial/) "
          f"in {summary['seconds']:.1f} s")
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
