"""Drift synthesis: a trained model on the same raw test data developed by every static ISP
variant at every light intensity, against augmentation testing with common corruptions
(Oala et al., TMLR 2023, "drift synthesis").

    load_by_intensity   the model's own split at each captured intensity (one all-intensity build)
    evaluate_grid       every (variant, intensity) and every (corruption, severity) of the own view,
                        each batch read once; long-format rows
    summarise           best / worst / spread of the headline metric; ISP drift against corruptions
    synthesize          the whole control for a training output folder, report written atomically

The test data is the model's own (its ``training_args.json``, read with
:class:`~raw_isp.training.arguments.RawTrainingArguments`); the 12 views are developed batched on
the device by :class:`raw_isp.StaticISP` modules in front of the trained model.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..isp.config import ISP_VARIANTS, CameraPreset
from ..isp.static import StaticISP
from ..models.modeling import decode_raw, load_raw_model, parse_isp
from ..training.arguments import OptionError, RawTrainingArguments
from ..training.data import label_names, load_splits, make_loader
from ..training.evaluation import evaluate_views
from ..training.registry import get_dataset
from .corruptions import CORRUPTIONS, corrupt
from .plots import heatmap
from .reports import check_report_dir, write_csv

__all__ = [
    "FIELDS",
    "REPORT_FILES",
    "training_settings",
    "load_by_intensity",
    "evaluate_grid",
    "summarise",
    "summary_text",
    "pictures",
    "synthesize",
]

#: Columns of ``drift_synthesis.csv`` (long format, one metric value per row).
FIELDS = ("model", "train_variant", "test_variant", "intensity", "corruption", "severity", "metric", "value")
#: What a report folder holds (``models/``: the ``--train_variants`` models).
REPORT_FILES = ("drift_synthesis.csv", "drift_synthesis.json", "summary.md", "variant_intensity.png",
                "corruptions.png", "train_test.png", "models")


def training_settings(model_dir: str | Path, data_dir: str | None = None, cache_dir: str | None = None,
                      max_eval_samples: int | None = None) -> RawTrainingArguments:
    """The model's training settings (its data), with a moved data folder, another cache, and
    this run's truncation of the evaluated split."""
    overrides: dict[str, Any] = {"max_eval_samples": max_eval_samples}
    if data_dir is not None:
        overrides.update(data_dir=data_dir, source="local")
    if cache_dir is not None:
        overrides["cache_dir"] = cache_dir
    return RawTrainingArguments.from_output_dir(model_dir, **overrides)


def load_by_intensity(args: RawTrainingArguments, split: str, intensities: Sequence[float]) -> dict[float, Any]:
    """The ``split`` at each intensity (the same cells / tiles at every intensity, the first
    ``args.max_eval_samples`` of each), from the dataset's all-intensity config: one build
    instead of one per intensity."""
    ds = load_splits(args, intensity="all", truncate=False)[split]
    values = np.asarray(ds.with_format("numpy")["intensity"], dtype=np.float64)
    out = {}
    for r in intensities:
        rows = np.flatnonzero(np.isclose(values, r, rtol=1e-6))
        if not len(rows):
            raise OptionError(f"the {split} split has no images at intensity {r}")
        sub = ds.select(rows)
        if args.max_eval_samples is not None:
            sub = sub.select(range(min(args.max_eval_samples, len(sub))))
        out[r] = sub
    return out


class _BatchViews:
    """The input views of one batch for :func:`evaluate_grid`: the raw decoded once and the
    model's own view developed once for all views; corruptions seeded by the batch's index."""

    def __init__(self, model, isps: dict[str, Any], corruptions, severities, seed: int, own: bool) -> None:
        self.model, self.raw, self.n = model, None, -1
        to_pixels = model.processor.to_pixel_values
        self.views = {v: (lambda raw, isp=isp: to_pixels(isp(self.decoded(raw)))) for v, isp in isps.items()}
        if own:
            self.views["__own__"] = lambda raw: to_pixels(self.own_view(raw))
            for c in corruptions:
                for s in severities:
                    gen = seed * 1000 + CORRUPTIONS.index(c) * 10 + s
                    # A new noise draw per batch: the seed counts batches.
                    self.views[f"__corrupt__{c}__{s}"] = lambda raw, c=c, s=s, gen=gen: to_pixels(
                        corrupt(self.own_view(raw), c, s, generator=gen * 100_003 + self.n))

    def decoded(self, raw):
        if self.raw is not raw:
            self.raw, self.x, self.rgb, self.n = raw, decode_raw(raw), None, self.n + 1
        return self.x

    def own_view(self, raw):
        x = self.decoded(raw)
        if self.rgb is None:
            self.rgb = self.model.views(x)
        return self.rgb


def evaluate_grid(model, data: dict[float, Any], accelerator, task: str, label_names: list[str],
                  variants: Sequence[str], camera, batch_size: int, corruptions: Sequence[str] = (),
                  severities: Sequence[int] = (), seed: int = 0, train_intensity: float = 1.0,
                  train_isp: str = "model", label_column: str = "label",
                  metrics: Sequence[str] = ("accuracy", "loss")) -> list[dict[str, Any]]:
    """Evaluate ``model`` (a ``RawISPModel``) on every (variant, intensity) of ``data``
    (intensity -> split) and every (corruption, severity) of its own view at ``train_intensity``.

    Returns long-format rows without the ``model`` column (``FIELDS[1:]``), one per metric in
    ``metrics``; ``train_variant`` is the variant of a static ``train_isp``, else ``train_isp``;
    ``test_variant`` "model" marks the model's own view.
    """
    isps = {v: StaticISP(v, camera=camera, device=accelerator.device) for v in variants}
    spec = parse_isp(train_isp) if ":" in train_isp or train_isp == "learned" else None
    train_variant = spec.variant if spec is not None and spec.kind == "static" else train_isp
    rows: list[dict[str, Any]] = []
    for r, ds in data.items():
        loader = accelerator.prepare(make_loader(ds, label_column, batch_size, False, 0))
        views = _BatchViews(model, isps, corruptions, severities, seed, own=r == train_intensity).views
        results = evaluate_views(model, loader, accelerator, task, label_names, views,
                                 progress=f"intensity {r:g}: {len(views)} views")
        for name, res in results.items():
            test_variant, corruption, severity = name, "", ""
            if name == "__own__":
                test_variant = "model"
            elif name.startswith("__corrupt__"):
                _, _, corruption, s = name.split("__")
                test_variant, severity = "model", int(s)
            rows += [{"train_variant": train_variant, "test_variant": test_variant, "intensity": r,
                      "corruption": corruption, "severity": severity, "metric": m, "value": float(res[m])}
                     for m in metrics]
    return rows


def summarise(rows: list[dict[str, Any]], headline: str, train_intensity: float = 1.0) -> dict[str, Any]:
    """Best, worst, spread and mean of the ``headline`` metric across variants x intensities;
    the mean drop under ISP drift (other ISPs, same data at the training intensity) against the
    mean drop under corruptions, both relative to the model's own view. Empty without a grid."""
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
    per_intensity: dict[float, list[float]] = {}
    for r in grid:
        per_intensity.setdefault(r["intensity"], []).append(r["value"])
    out["mean_by_intensity"] = {str(k): float(np.mean(v)) for k, v in sorted(per_intensity.items(), reverse=True)}
    # The study's comparison: other ISPs on the same data (at the training intensity) against
    # corruptions of the training view. Light intensity drift is reported on its own.
    at_train = [r["value"] for r in grid if r["intensity"] == train_intensity]
    if at_train:
        out["isp_only_mean_drop"] = float(clean - np.mean(at_train))
    if corr:
        out["corruption_mean_drop"] = float(clean - np.mean([r["value"] for r in corr]))
        worst_c = min(corr, key=lambda r: r["value"])
        out["worst_corruption"] = {"corruption": worst_c["corruption"], "severity": worst_c["severity"],
                                   "value": worst_c["value"]}
        if out.get("isp_only_mean_drop", 0) > 0:
            out["corruption_to_isp_drop_ratio"] = out["corruption_mean_drop"] / out["isp_only_mean_drop"]
    return out


def summary_text(summary: dict[str, Any], n_images: int, seconds: float, n_evals: int) -> str:
    """The summary as the lines the script prints (and ``summary.md`` holds)."""
    m, best, worst = summary["metric"], summary["best"], summary["worst"]
    lines = [
        f"drift synthesis: {m} of the model on {n_images} test images per intensity, {n_evals:,} evaluated views "
        f"in {seconds:.1f} s ({n_evals / max(seconds, 1e-9):.0f} images/s)",
        f"  own view (training ISP, intensity 1.0): {summary['clean']:.4f}",
        f"  best : {best['value']:.4f} ({best['variant']} at intensity {best['intensity']})",
        f"  worst: {worst['value']:.4f} ({worst['variant']} at intensity {worst['intensity']})",
        f"  spread over variants x intensities: {summary['spread']:.4f}; mean {summary['mean']:.4f}",
        "  mean by intensity: " + ", ".join(f"{k}: {v:.3f}" for k, v in summary["mean_by_intensity"].items()),
        f"  mean drop from the own view: all variants x intensities {summary['isp_mean_drop']:.4f}"
        + (f"; other ISPs at the training intensity {summary['isp_only_mean_drop']:.4f}"
           if "isp_only_mean_drop" in summary else ""),
    ]
    if "corruption_mean_drop" in summary:
        ratio = summary.get("corruption_to_isp_drop_ratio")
        lines.append(f"  augmentation testing (corruptions of the own view): mean drop {summary['corruption_mean_drop']:.4f}"
                     + (f", {ratio:.1f}x the ISP drop at the training intensity" if ratio else ""))
        w = summary["worst_corruption"]
        lines.append(f"  worst corruption: {w['corruption']} severity {w['severity']}: {w['value']:.4f}")
    return "\n".join(lines)


def pictures(rows: list[dict[str, Any]], headline: str, out: Path, variants: Sequence[str],
             intensities: Sequence[float]) -> list[str]:
    """The report's heatmaps (variant x intensity, corruption x severity, train x test variant,
    each when its rows exist) in ``out``; returns the file names written."""
    files = []
    own = [r for r in rows if r["metric"] == headline and r["model"] == "model"]
    by = {(r["test_variant"], r["intensity"]): r["value"] for r in own if not r["corruption"]}
    if by:
        m = np.array([[by.get((v, i), np.nan) for i in intensities] for v in variants])
        heatmap(m, list(variants), [f"{i:g}" for i in intensities], f"{headline}: test ISP x intensity", "intensity",
                "test ISP variant", out / "variant_intensity.png")
        files.append("variant_intensity.png")
    corr = [r for r in own if r["corruption"]]
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
        trains = sorted({r["train_variant"] for r in tt}, key=ISP_VARIANTS.index)
        i0 = max(r["intensity"] for r in tt)
        tb = {(r["train_variant"], r["test_variant"]): r["value"] for r in tt if r["intensity"] == i0}
        m = np.array([[tb.get((a, b), np.nan) for b in variants] for a in trains])
        heatmap(m, trains, list(variants), f"{headline}: train ISP x test ISP (intensity {i0:g})", "test ISP variant",
                "train ISP variant", out / "train_test.png")
        files.append("train_test.png")
    return files


def _train_variant_rows(targs: RawTrainingArguments, variants_to_train: Sequence[str], output_dir: Path,
                        data: dict[float, Any], accelerator, label_names: list[str], test_variants: Sequence[str],
                        camera, batch_size: int) -> list[dict[str, Any]]:
    """Train one model per variant with the model's settings (into ``output_dir/models/<v>``)
    and evaluate each on every test variant at the training intensity."""
    from ..training.loop import train
    from ..training.outputs import write_outputs

    rows = []
    for v in variants_to_train:
        vargs = dataclasses.replace(targs, isp=f"static:{v}", output_dir=str(output_dir / "models" / v),
                                    overwrite_output_dir=True, resume_from_checkpoint=None, with_tracking=False,
                                    checkpointing_steps=None, push_to_hub=False)
        write_outputs(vargs, train(vargs, evaluate_each_epoch=False))
        trained, _ = load_raw_model(vargs.output_dir, device=accelerator.device)
        sub = {targs.intensity: data[targs.intensity]}
        for r in evaluate_grid(trained, sub, accelerator, targs.task, label_names, test_variants, camera, batch_size,
                               train_intensity=-1.0, train_isp=f"static:{v}", label_column=targs.label_column,
                               metrics=(*targs.headline_metrics, "loss")):
            rows.append({"model": f"train:{v}", **{**r, "train_variant": v}})
    return rows


def _write_report(out: Path, rows, summary, text: str, meta: dict[str, Any], variants, intensities) -> list[str]:
    """Write the report into ``out.partial`` and rename it to ``out`` when complete; the models
    this run trained (``out/models/<variant>``) move along, an earlier report's others do not."""
    tmp = out.with_name(out.name + ".partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    (tmp / "models").mkdir(parents=True)
    for v in meta["train_variants"]:
        shutil.move(str(out / "models" / v), str(tmp / "models" / v))
    if not meta["train_variants"]:
        (tmp / "models").rmdir()
    write_csv(tmp / "drift_synthesis.csv", rows, FIELDS)
    (tmp / "drift_synthesis.json").write_text(json.dumps({**meta, "summary": summary, "rows": rows}, indent=1) + "\n")
    files = pictures(rows, summary["metric"], tmp, variants, intensities)
    md = ["# Drift synthesis", "", f"Model: `{meta['model']}` ({meta['isp']}), {meta['task']}, split `{meta['split']}`.",
          "", "```", text, "```", ""] + [f"![{f}]({f})" for f in files]
    (tmp / "summary.md").write_text("\n".join(md) + "\n")
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return files


def synthesize(model_dir: str | Path, output_dir: str | Path | None = None, *, split: str = "test",
               variants: Sequence[str] = ISP_VARIANTS, intensities: Sequence[float] | None = None,
               corruptions: Sequence[str] = CORRUPTIONS, severities: Sequence[int] = (1, 2, 3, 4, 5),
               train_variants: Sequence[str] | None = None, batch_size: int = 64, max_eval_samples: int | None = None,
               data_dir: str | None = None, cache_dir: str | None = None, seed: int = 0,
               mixed_precision: str = "no") -> dict[str, Any]:
    """Drift synthesis of the model in ``model_dir`` (a training output folder); the report goes
    to ``output_dir`` (default ``<model_dir>/drift_synthesis``; an earlier report there is
    replaced, a folder holding anything else is refused first).

    ``intensities``: default every captured intensity of the model's dataset (the training
    intensity is always added). ``seed``: of the random corruptions. ``mixed_precision``: the
    model under autocast (ISPs and corruptions stay float32). Returns ``rows``, ``summary``,
    ``text`` (the printed summary), ``files``, ``seconds``, ``evaluated_views`` and
    ``is_main_process``; only the main process writes.
    """
    import torch
    from accelerate import Accelerator

    start = time.perf_counter()
    model_dir = Path(model_dir)
    out = Path(output_dir) if output_dir is not None else model_dir / "drift_synthesis"
    check_report_dir(out, REPORT_FILES)
    targs = training_settings(model_dir, data_dir, cache_dir, max_eval_samples)
    captured = get_dataset(targs.dataset).intensities
    intensities = list(intensities or captured)
    missing = [i for i in intensities if i not in captured]
    if missing:
        raise OptionError(f"--intensities {missing}: {targs.dataset} is captured at {captured}")
    if targs.intensity not in intensities:
        intensities = [targs.intensity, *intensities]
    has_device = torch.accelerator.is_available() if hasattr(torch, "accelerator") else torch.cuda.is_available()
    accelerator = Accelerator(cpu=not has_device, mixed_precision=mixed_precision)
    model, info = load_raw_model(model_dir, device=accelerator.device)
    camera = CameraPreset.parse(info["camera"])
    with accelerator.main_process_first():
        data = load_by_intensity(targs, split, intensities)
    names = label_names(next(iter(data.values())), targs.label_column)
    metrics = (*targs.headline_metrics, "loss")
    rows = [{"model": "model", **r} for r in evaluate_grid(
        model, data, accelerator, targs.task, names, variants, camera, batch_size, corruptions, severities, seed,
        targs.intensity, info["isp"], targs.label_column, metrics)]
    seconds = time.perf_counter() - start
    n_images = len(next(iter(data.values())))
    n_evals = n_images * (len(variants) * len(intensities) + 1 + len(corruptions) * len(severities))
    if train_variants:
        rows += _train_variant_rows(targs, train_variants, out, data, accelerator, names, variants, camera, batch_size)
    summary = summarise(rows, targs.headline_metrics[0], targs.intensity)
    text = summary_text(summary, n_images, seconds, n_evals)
    files: list[str] = []
    if accelerator.is_main_process:
        meta = {"model": str(model_dir), "isp": info["isp"], "task": targs.task, "split": split,
                "variants": list(variants), "intensities": intensities, "corruptions": list(corruptions),
                "severities": list(severities), "train_variants": list(train_variants or []),
                "test_images_per_intensity": n_images, "seconds": seconds, "evaluated_views": n_evals}
        files = _write_report(out, rows, summary, text, meta, variants, intensities)
    return {"rows": rows, "summary": summary, "text": text, "files": files, "output_dir": str(out),
            "seconds": seconds, "evaluated_views": n_evals, "is_main_process": accelerator.is_main_process}
