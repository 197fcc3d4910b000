#!/usr/bin/env python
"""Drift synthesis: test a trained model on the same raw test data developed by every static ISP
variant at every light intensity, and set that against augmentation testing with common
corruptions (Oala et al., TMLR 2023, section "drift synthesis").

Input: a folder written by ``train_classification.py`` or ``train_segmentation.py``. The test data
is the model's own (dataset, source, fold, sizes from its ``training_args.json``), loaded at every
intensity; the 12 views are developed batched on the device by :class:`raw_isp.StaticISP`
modules in front of the trained model. Corruptions (:mod:`raw_isp.drift.corruptions`) are applied to
the model's own training view at intensity 1.0.

    python scripts/drift_synthesis.py --model outputs/classification
    python scripts/drift_synthesis.py --model outputs/classification --train_variants bi_s_ga,ma_u_me,me_s_me

Writes into ``--output_dir`` (default ``<model>/drift_synthesis``): ``drift_synthesis.csv`` (long
format), ``drift_synthesis.json``, ``summary.md``, ``variant_intensity.png``,
``corruptions.png`` and, with ``--train_variants``, ``train_test.png``.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import raw_isp  # noqa: E402
import raw_training  # noqa: E402
from raw_isp.drift.corruptions import CORRUPTIONS, corrupt  # noqa: E402
from raw_isp.models.modeling import load_raw_model, parse_isp  # noqa: E402

FIELDS = ("model", "train_variant", "test_variant", "intensity", "corruption", "severity", "metric", "value")


def _csv_list(value: str, allowed: tuple, what: str) -> list:
    items = [v.strip() for v in value.split(",") if v.strip()]
    bad = [v for v in items if v not in allowed]
    if bad or not items:
        raise argparse.ArgumentTypeError(f"unknown {what} {bad or value!r}; expected some of {list(allowed)}")
    return items


def _floats(value: str) -> list[float]:
    try:
        out = [float(v) for v in value.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {value!r}") from None
    bad = [v for v in out if not 0 < v <= 1]
    if bad or not out:
        raise argparse.ArgumentTypeError(f"intensities must be in (0, 1], got {value!r}")
    return out


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--model", default="outputs/classification", help="a training output folder")
    p.add_argument("--split", default="test", choices=("test", "validation", "train"))
    p.add_argument("--variants", type=lambda v: _csv_list(v, raw_isp.ISP_VARIANTS, "variant"),
                   default=list(raw_isp.ISP_VARIANTS), help="test variants (comma-separated)")
    p.add_argument("--intensities", type=_floats, default=None,
                   help="comma-separated ratios (default: every captured intensity of the dataset)")
    p.add_argument("--corruptions", default=",".join(CORRUPTIONS),
                   help="comma-separated corruptions for the augmentation baseline, or 'none'")
    p.add_argument("--severities", default="1,2,3,4,5")
    p.add_argument("--train_variants", default=None,
                   help="train one model per variant (comma-separated, or 'all') with the model's training "
                   "settings and evaluate each on every test variant: the train x test matrix")
    p.add_argument("--per_device_eval_batch_size", type=int, default=64)
    p.add_argument("--max_eval_samples", type=int, default=None, help="use only the first N test images per intensity")
    p.add_argument("--data_dir", default=None, help="override the model's data folder (a local copy of the real data)")
    p.add_argument("--cache_dir", default=None, help="override the model's datasets cache folder")
    p.add_argument("--output_dir", default=None, help="default: <model>/drift_synthesis")
    p.add_argument("--seed", type=int, default=0, help="seed of the random corruptions")
    p.add_argument("--mixed_precision", choices=("no", "bf16", "fp16"), default="no",
                   help="run the model under autocast (the ISP and the corruptions stay float32)")
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = build_parser()
    args = parser.parse_args(argv)
    model_dir = Path(args.model)
    if not (model_dir / "training_args.json").is_file() or not (model_dir / "isp_config.json").is_file():
        parser.error(f"--model {model_dir}: not a training output folder (no training_args.json / isp_config.json)")
    if args.data_dir is not None and not Path(args.data_dir).exists():
        parser.error(f"--data_dir {args.data_dir}: no such file or folder")
    if args.corruptions.strip().lower() == "none":
        args.corruptions = []
    else:
        try:
            args.corruptions = _csv_list(args.corruptions, CORRUPTIONS, "corruption")
        except argparse.ArgumentTypeError as err:
            parser.error(f"--corruptions: {err}")
    try:
        args.severities = [int(s) for s in args.severities.split(",")]
    except ValueError:
        parser.error(f"--severities: expected comma-separated integers 1-5, got {args.severities!r}")
    if any(not 1 <= s <= 5 for s in args.severities):
        parser.error(f"--severities must be in 1..5, got {args.severities}")
    if args.train_variants is not None:
        tv = args.train_variants
        try:
            args.train_variants = list(raw_isp.ISP_VARIANTS) if tv == "all" else _csv_list(tv, raw_isp.ISP_VARIANTS, "variant")
        except argparse.ArgumentTypeError as err:
            parser.error(f"--train_variants: {err}")
    args.output_dir = args.output_dir or str(model_dir / "drift_synthesis")
    return args


def training_args(model_dir: Path, overrides: argparse.Namespace) -> argparse.Namespace:
    """The model's training arguments (its data settings), with this run's overrides."""
    saved = json.loads((model_dir / "training_args.json").read_text())
    args = raw_training.build_parser(saved["task"]).parse_args([])
    for key, value in saved.items():
        setattr(args, key, value)
    if overrides.data_dir is not None:
        args.data_dir, args.source = overrides.data_dir, "local"
    if overrides.cache_dir is not None:
        args.cache_dir = overrides.cache_dir
    args.max_eval_samples = overrides.max_eval_samples
    args.max_train_samples = saved.get("max_train_samples")
    return args


def load_by_intensity(args: argparse.Namespace, split: str, intensities: list[float]) -> dict[float, Any]:
    """The split at each intensity (the same cells / tiles at every intensity), from the
    dataset's all-intensity config (one build instead of one per intensity)."""
    full = argparse.Namespace(**{**vars(args), "max_train_samples": None, "max_eval_samples": None})
    ds = raw_training.load_splits(full, intensity="all")[split]
    values = np.asarray(ds.with_format("numpy")["intensity"], dtype=np.float64)
    out = {}
    for r in intensities:
        rows = np.flatnonzero(np.isclose(values, r, rtol=1e-6))
        if not len(rows):
            raise SystemExit(f"error: the {split} split has no images at intensity {r}")
        sub = ds.select(rows)
        if args.max_eval_samples is not None:
            sub = sub.select(range(min(args.max_eval_samples, len(sub))))
        out[r] = sub
    return out


def _metric_names(task: str) -> tuple[str, ...]:
    return ("accuracy", "macro_f1", "loss") if task == "classification" else ("mean_iou", "iou_car", "pixel_accuracy", "loss")


def evaluate_grid(model, data: dict[float, Any], accelerator, task: str, label_names: list[str], variants: list[str],
                  camera, batch_size: int, corruptions: list[str] = (), severities: list[int] = (),
                  seed: int = 0, train_intensity: float = 1.0, train_isp: str = "model") -> list[dict[str, Any]]:
    """Evaluate ``model`` on every (variant, intensity) and every (corruption, severity) of its own
    view at ``train_intensity``. Returns long-format rows (without the ``model`` column);
    ``train_variant`` is the variant of a static training ISP, else ``train_isp``."""
    label_column = "mask" if task == "segmentation" else "label"
    isps = {v: raw_isp.StaticISP(v, camera=camera, device=accelerator.device) for v in variants}
    spec = parse_isp(train_isp) if ":" in train_isp or train_isp == "learned" else None
    train_variant = spec.variant if spec is not None and spec.kind == "static" else train_isp
    rows: list[dict[str, Any]] = []
    names = _metric_names(task)

    def add(results, test_variant, intensity, corruption="", severity=""):
        for metric in names:
            rows.append({"train_variant": train_variant, "test_variant": test_variant,
                         "intensity": intensity, "corruption": corruption, "severity": severity,
                         "metric": metric, "value": float(results[metric])})

    for r, ds in data.items():
        loader = accelerator.prepare(raw_training.make_loader(ds, label_column, batch_size, False, 0))
        # Per batch, the raw is decoded once and the own view developed once, for all the views.
        cache: dict[str, Any] = {"n": -1}  # n: the batch's index, which seeds its corruptions

        def decoded(raw):
            if cache.get("raw") is not raw:
                cache.pop("rgb", None)
                cache.update(raw=raw, x=raw_isp.models.modeling.decode_raw(raw), n=cache["n"] + 1)
            return cache["x"]

        def own_view(raw):
            x = decoded(raw)
            if "rgb" not in cache:
                cache["rgb"] = model.views(x)
            return cache["rgb"]

        views = {v: (lambda raw, isp=isp: model.processor.to_pixel_values(isp(decoded(raw)))) for v, isp in isps.items()}
        if r == train_intensity:
            views["__own__"] = lambda raw: model.processor.to_pixel_values(own_view(raw))
            for c in corruptions:
                for s in severities:
                    gen = seed * 1000 + CORRUPTIONS.index(c) * 10 + s

                    def view(raw, c=c, s=s, gen=gen):
                        rgb = own_view(raw)  # a new noise draw per batch: the seed counts batches
                        return model.processor.to_pixel_values(corrupt(rgb, c, s, generator=gen * 100_003 + cache["n"]))

                    views[f"__corrupt__{c}__{s}"] = view
        results = raw_training.evaluate_views(model, loader, accelerator, task, label_names, views,
                                              progress=f"intensity {r:g}: {len(views)} views")
        for name, res in results.items():
            if name == "__own__":
                add(res, "model", r)
            elif name.startswith("__corrupt__"):
                _, _, c, s = name.split("__")
                add(res, "model", r, c, int(s))
            else:
                add(res, name, r)
    return rows


def summarise(rows: list[dict[str, Any]], task: str, headline: str, train_intensity: float = 1.0) -> dict[str, Any]:
    """Best, worst, spread of the headline metric across variants x intensities; the mean drop
    under ISP drift (other ISPs, same data at the training intensity) against the mean drop under
    corruptions (both relative to the model's own view)."""
    grid = [r for r in rows if r["metric"] == headline and not r["corruption"] and r["test_variant"] != "model"]
    own = [r for r in rows if r["metric"] == headline and not r["corruption"] and r["test_variant"] == "model"]
    corr = [r for r in rows if r["metric"] == headline and r["corruption"]]
    if not grid:
        return {}
    best = max(grid, key=lambda r: r["value"])
    worst = min(grid, key=lambda r: r["value"])
    values = np.array([r["value"] for r in grid])
    clean = own[0]["value"] if own else float(values.max())
    out = {
        "metric": headline,
        "clean": clean,
        "best": {"variant": best["test_variant"], "intensity": best["intensity"], "value": best["value"]},
        "worst": {"variant": worst["test_variant"], "intensity": worst["intensity"], "value": worst["value"]},
        "spread": float(values.max() - values.min()),
        "mean": float(values.mean()),
        "isp_mean_drop": float(clean - values.mean()),
    }
    per_intensity = {}
    for r in grid:
        per_intensity.setdefault(r["intensity"], []).append(r["value"])
    out["mean_by_intensity"] = {str(k): float(np.mean(v)) for k, v in sorted(per_intensity.items(), reverse=True)}
    # The study's comparison: other ISPs on the same data (at the training intensity) against
    # corruptions of the training view. Light intensity drift is reported on its own.
    at_train = [r["value"] for r in grid if r["intensity"] == train_intensity]
    if at_train:
        out["isp_only_mean_drop"] = float(clean - np.mean(at_train))
    if corr:
        cvals = np.array([r["value"] for r in corr])
        out["corruption_mean_drop"] = float(clean - cvals.mean())
        worst_c = min(corr, key=lambda r: r["value"])
        out["worst_corruption"] = {"corruption": worst_c["corruption"], "severity": worst_c["severity"],
                                   "value": worst_c["value"]}
        if out.get("isp_only_mean_drop", 0) > 0:
            out["corruption_to_isp_drop_ratio"] = out["corruption_mean_drop"] / out["isp_only_mean_drop"]
    return out


def summary_text(summary: dict[str, Any], n_images: int, seconds: float, n_evals: int) -> str:
    m = summary["metric"]
    lines = [
        f"drift synthesis: {m} of the model on {n_images} test images per intensity, {n_evals:,} evaluated views "
        f"in {seconds:.1f} s ({n_evals / max(seconds, 1e-9):.0f} images/s)",
        f"  own view (training ISP, intensity 1.0): {summary['clean']:.4f}",
        f"  best : {summary['best']['value']:.4f} ({summary['best']['variant']} at intensity {summary['best']['intensity']})",
        f"  worst: {summary['worst']['value']:.4f} ({summary['worst']['variant']} at intensity {summary['worst']['intensity']})",
        f"  spread over variants x intensities: {summary['spread']:.4f}; mean {summary['mean']:.4f}",
        "  mean by intensity: " + ", ".join(f"{k}: {v:.3f}" for k, v in summary["mean_by_intensity"].items()),
    ]
    lines.append(f"  mean drop from the own view: all variants x intensities {summary['isp_mean_drop']:.4f}"
                 + (f"; other ISPs at the training intensity {summary['isp_only_mean_drop']:.4f}"
                    if "isp_only_mean_drop" in summary else ""))
    if "corruption_mean_drop" in summary:
        ratio = summary.get("corruption_to_isp_drop_ratio")
        lines.append(f"  augmentation testing (corruptions of the own view): mean drop {summary['corruption_mean_drop']:.4f}"
                     + (f", {ratio:.1f}x the ISP drop at the training intensity" if ratio else ""))
        w = summary["worst_corruption"]
        lines.append(f"  worst corruption: {w['corruption']} severity {w['severity']}: {w['value']:.4f}")
    return "\n".join(lines)


# ---------------------------------------------------------------- pictures

def heatmap(matrix: np.ndarray, rows: list[str], cols: list[str], title: str, xlabel: str, ylabel: str,
            path: Path, fmt: str = "{:.2f}", mark_min: bool = True) -> None:
    """A small annotated heatmap PNG (matplotlib, Agg); the worst cell is outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(0.55 * len(cols) + 2.2, 0.32 * len(rows) + 1.4), dpi=90)
    im = ax.imshow(matrix, cmap="viridis", aspect="auto", vmin=np.nanmin(matrix), vmax=np.nanmax(matrix))
    ax.set_xticks(range(len(cols)), cols, rotation=45 if max(len(c) for c in cols) > 4 else 0, ha="right", fontsize=7)
    ax.set_yticks(range(len(rows)), rows, fontsize=7)
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.set_title(title, fontsize=9)
    mid = (np.nanmax(matrix) + np.nanmin(matrix)) / 2
    for i in range(matrix.shape[0]):
        for j in range(matrix.shape[1]):
            if np.isfinite(matrix[i, j]):
                ax.text(j, i, fmt.format(matrix[i, j]), ha="center", va="center", fontsize=6,
                        color="black" if matrix[i, j] > mid else "white")
    if mark_min and np.isfinite(matrix).any():
        i, j = np.unravel_index(np.nanargmin(matrix), matrix.shape)
        ax.add_patch(plt.Rectangle((j - 0.5, i - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=1.5))
    fig.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def pictures(rows: list[dict[str, Any]], headline: str, out: Path, variants: list[str], intensities: list[float]) -> list[str]:
    files = []
    by = {(r["test_variant"], r["intensity"]): r["value"] for r in rows
          if r["metric"] == headline and not r["corruption"] and r["model"] == "model"}
    if by:
        m = np.array([[by.get((v, i), np.nan) for i in intensities] for v in variants])
        heatmap(m, variants, [f"{i:g}" for i in intensities], f"{headline}: test ISP x intensity", "intensity",
                "test ISP variant", out / "variant_intensity.png")
        files.append("variant_intensity.png")
    corr = [r for r in rows if r["metric"] == headline and r["corruption"] and r["model"] == "model"]
    if corr:
        names = sorted({r["corruption"] for r in corr}, key=CORRUPTIONS.index)
        sev = sorted({r["severity"] for r in corr})
        cb = {(r["corruption"], r["severity"]): r["value"] for r in corr}
        m = np.array([[cb.get((c, s), np.nan) for s in sev] for c in names])
        heatmap(m, names, [str(s) for s in sev], f"{headline}: corruption x severity", "severity", "corruption",
                out / "corruptions.png")
        files.append("corruptions.png")
    tt = [r for r in rows if r["metric"] == headline and not r["corruption"] and r["model"].startswith("train:")]
    if tt:
        trains = sorted({r["train_variant"] for r in tt}, key=raw_isp.ISP_VARIANTS.index)
        i0 = max(r["intensity"] for r in tt)
        tb = {(r["train_variant"], r["test_variant"]): r["value"] for r in tt if r["intensity"] == i0}
        m = np.array([[tb.get((a, b), np.nan) for b in variants] for a in trains])
        heatmap(m, trains, variants, f"{headline}: train ISP x test ISP (intensity {i0:g})", "test ISP variant",
                "train ISP variant", out / "train_test.png")
        files.append("train_test.png")
    return files


# ---------------------------------------------------------------- main

def run(args: argparse.Namespace) -> dict[str, Any]:
    from accelerate import Accelerator

    start = time.perf_counter()
    model_dir = Path(args.model)
    targs = training_args(model_dir, args)
    task = targs.task
    has_device = torch.accelerator.is_available() if hasattr(torch, "accelerator") else torch.cuda.is_available()
    accelerator = Accelerator(cpu=not has_device, mixed_precision=args.mixed_precision)
    model, info = load_raw_model(model_dir, device=accelerator.device)
    camera = raw_isp.CameraPreset.parse(info["camera"])
    module = raw_training._dataset_module(targs.dataset)
    intensities = args.intensities or list(module.INTENSITIES)
    missing = [i for i in intensities if i not in module.INTENSITIES]
    if missing:
        raise SystemExit(f"error: --intensities {missing}: {targs.dataset} is captured at {module.INTENSITIES}")
    if targs.intensity not in intensities:
        intensities = [targs.intensity, *intensities]
    with accelerator.main_process_first():
        data = load_by_intensity(targs, args.split, intensities)
    label_names = raw_training.label_info({"train": next(iter(data.values()))}, task)[1]
    headline = "accuracy" if task == "classification" else "mean_iou"

    rows = [{"model": "model", **r} for r in evaluate_grid(
        model, data, accelerator, task, label_names, args.variants, camera, args.per_device_eval_batch_size,
        args.corruptions, args.severities, args.seed, targs.intensity, info["isp"])]
    seconds = time.perf_counter() - start
    n_images = len(next(iter(data.values())))
    n_evals = n_images * (len(args.variants) * len(intensities) + 1 + len(args.corruptions) * len(args.severities))

    if args.train_variants:
        for v in args.train_variants:
            vargs = training_args(model_dir, args)
            vargs.isp = f"static:{v}"
            vargs.output_dir = str(Path(args.output_dir) / "models" / v)
            vargs.resume_from_checkpoint, vargs.with_tracking = None, False
            vargs.checkpointing_steps, vargs.push_to_hub = None, False
            result = raw_training.train(vargs, evaluate_each_epoch=False)
            raw_training.write_outputs(vargs, result)
            trained, _ = load_raw_model(vargs.output_dir, device=accelerator.device)
            sub = {targs.intensity: data[targs.intensity]}
            for r in evaluate_grid(trained, sub, accelerator, task, label_names, args.variants, camera,
                                   args.per_device_eval_batch_size, train_intensity=-1.0, train_isp=f"static:{v}"):
                rows.append({"model": f"train:{v}", **{**r, "train_variant": v}})

    summary = summarise(rows, task, headline, targs.intensity)
    if accelerator.is_main_process:
        out = Path(args.output_dir)
        tmp = out.with_name(out.name + ".partial")
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        if (out / "models").exists():
            shutil.move(str(out / "models"), str(tmp / "models"))
        with open(tmp / "drift_synthesis.csv", "w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=FIELDS)
            writer.writeheader()
            writer.writerows(rows)
        text = summary_text(summary, n_images, seconds, n_evals)
        (tmp / "drift_synthesis.json").write_text(json.dumps(
            {"model": str(model_dir), "task": task, "split": args.split, "variants": args.variants,
             "intensities": intensities, "corruptions": args.corruptions, "severities": args.severities,
             "test_images_per_intensity": n_images, "seconds": seconds, "evaluated_views": n_evals,
             "summary": summary, "rows": rows}, indent=1) + "\n")
        files = pictures(rows, headline, tmp, args.variants, intensities)
        md = ["# Drift synthesis", "", f"Model: `{model_dir}` ({info['isp']}), {task}, split `{args.split}`.", "",
              "```", text, "```", ""] + [f"![{f}]({f})" for f in files]
        (tmp / "summary.md").write_text("\n".join(md) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
        print(text)
        print(f"wrote {out}/ (drift_synthesis.csv, drift_synthesis.json, summary.md, {', '.join(files)})")
    return {"rows": rows, "summary": summary, "seconds": seconds, "evaluated_views": n_evals}


def main(argv: list[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
