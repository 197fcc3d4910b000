"""Drift synthesis: trained models on the same raw test data developed by every static ISP
variant at every light intensity, against augmentation testing with common corruptions
(Oala et al., TMLR 2023, "drift synthesis"), with seeds and bootstrap intervals.

    load_by_intensity   the model's own split at each captured intensity (one all-intensity build),
                        the same test images in the same order at every intensity
    evaluate_grid       every (variant, intensity), the model's own view at every intensity and every
                        (corruption, severity) of its own view, each batch read once; long-format
                        rows and, on request, each test image's confusion matrix per cell
    synthesize          the whole control for one training output folder or several trained
                        differently (``compare``), one model per seed, report written atomically

What a report holds and how its statistics are computed: :mod:`raw_isp.drift.synthesis_report`
and :mod:`raw_isp.drift.statistics`. The test data is the first model's own (its
``training_args.json``, read with :class:`~raw_isp.training.arguments.RawTrainingArguments`); the
12 views are developed batched on the device by :class:`raw_isp.StaticISP` modules in front of
each trained model, with the model's own exposure setting and each batch's intensity ratios.
"""

from __future__ import annotations

import dataclasses
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..isp.config import ISP_VARIANTS, CameraPreset
from ..isp.static import StaticISP
from ..metrics.bootstrap import N_BOOT
from ..models.modeling import decode_raw, isp_exposure, load_raw_model, parse_isp
from ..training.arguments import OptionError, RawTrainingArguments
from ..training.data import label_names, load_splits, make_loader
from ..training.evaluation import evaluate_views, evaluate_views_per_sample
from ..registry import get_dataset
from ..isp.corruptions import CORRUPTIONS, corrupt
from .reports import check_report_dir
from .synthesis_report import (CELL_FIELDS, FIELDS, REPORT_FILES, STUDY_RATIO, build_report, pictures, summarise,
                               summary_text, write_report)

__all__ = [
    "FIELDS",
    "CELL_FIELDS",
    "REPORT_FILES",
    "STUDY_RATIO",
    "DATA_SETTINGS",
    "training_settings",
    "load_by_intensity",
    "evaluate_grid",
    "summarise",
    "summary_text",
    "pictures",
    "synthesize",
]

#: Training settings that decide which test images a model is scored on: compared models must agree.
DATA_SETTINGS = ("task", "dataset", "dataset_config", "source", "data_dir", "num_examples", "n_folds", "fold",
                 "num_scenes", "frame_size")
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


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
    """The ``split`` at each intensity (the first ``args.max_eval_samples`` of each), from the
    dataset's all-intensity config: one build instead of one per intensity.

    Every intensity holds the same cells / tiles in the same order (sample ``i`` is one scene at
    every light level), so cells at different intensities are paired image by image; an
    :class:`OptionError` says so when the data does not allow it."""
    ds = load_splits(args, intensity="all", truncate=False)[split]
    values = np.asarray(ds.with_format("numpy")["intensity"], dtype=np.float64)
    id_column = get_dataset(args.dataset).id_column
    out, first_ids = {}, None
    for r in intensities:
        rows = np.flatnonzero(np.isclose(values, r, rtol=1e-6))
        if not len(rows):
            raise OptionError(f"the {split} split has no images at intensity {r}")
        sub = ds.select(rows)
        if args.max_eval_samples is not None:
            sub = sub.select(range(min(args.max_eval_samples, len(sub))))
        if id_column in sub.column_names:
            ids = list(sub[id_column])
            if first_ids is None:
                first_ids = ids
            elif ids != first_ids:
                order = {name: i for i, name in enumerate(ids)}
                if set(order) != set(first_ids):
                    raise OptionError(f"the {split} split holds other {id_column}s at intensity {r} than at "
                                      f"{next(iter(out))}: the intensities cannot be compared image by image")
                sub = sub.select([order[name] for name in first_ids])
        out[r] = sub
    return out


class _BatchViews:
    """The input views of one batch for :func:`evaluate_grid`: the raw decoded once and the
    model's own view developed once for all views; corruptions seeded by the batch's index.
    Every view is ``view(raw, intensity=None)`` (the batch's intensity ratios, for exposure)."""

    def __init__(self, model, isps: dict[str, Any], corruptions, severities, seed: int, own: bool) -> None:
        self.model, self.raw, self.n = model, None, -1
        to_pixels = model.processor.to_pixel_values
        self.views = {v: (lambda raw, intensity=None, isp=isp: to_pixels(isp(self.decoded(raw), intensity=intensity)))
                      for v, isp in isps.items()}
        if own:
            self.views["__own__"] = lambda raw, intensity=None: to_pixels(self.own_view(raw, intensity))
            for c in corruptions:
                for s in severities:
                    gen = seed * 1000 + CORRUPTIONS.index(c) * 10 + s
                    # A new noise draw per batch: the seed counts batches.
                    self.views[f"__corrupt__{c}__{s}"] = lambda raw, intensity=None, c=c, s=s, gen=gen: to_pixels(
                        corrupt(self.own_view(raw, intensity), c, s, generator=gen * 100_003 + self.n))

    def decoded(self, raw):
        if self.raw is not raw:
            self.raw, self.x, self.rgb, self.n = raw, decode_raw(raw), None, self.n + 1
        return self.x

    def own_view(self, raw, intensity=None):
        x = self.decoded(raw)
        if self.rgb is None:
            self.rgb = self.model.views(x) if intensity is None else self.model.views(x, intensity)
        return self.rgb


def evaluate_grid(model, data: dict[float, Any], accelerator, task: str, label_names: list[str],
                  variants: Sequence[str], camera, batch_size: int, corruptions: Sequence[str] = (),
                  severities: Sequence[int] = (), seed: int = 0, train_intensity: float = 1.0,
                  train_isp: str = "model", label_column: str = "label",
                  metrics: Sequence[str] = ("accuracy", "loss"), *, own: bool = True,
                  samples: dict | None = None) -> list[dict[str, Any]]:
    """Evaluate ``model`` (a ``RawISPModel``) on every (variant, intensity) of ``data``
    (intensity -> split), on its own view at every intensity (``own``), and on every (corruption,
    severity) of its own view at ``train_intensity``.

    The variants' ISPs get the model's exposure setting (:func:`~raw_isp.models.modeling.isp_exposure`),
    and every view the batch's intensity ratios, so a model trained with ``exposure="metadata"``
    is tested as it was trained. ``samples``: a dict to fill with each cell's per-image
    confusion matrices ``(n, K, K)``, keyed ``(test_variant, intensity, corruption, severity)``.

    Returns long-format rows (``FIELDS`` without ``model``, ``seed``, ``ci_low``, ``ci_high``),
    one per metric in ``metrics``; ``train_variant`` is the variant of a static ``train_isp``,
    else ``train_isp``; ``test_variant`` "model" marks the model's own view.
    """
    exposure = isp_exposure(model.isp)
    isps = {v: StaticISP(v, camera=camera, device=accelerator.device, exposure=exposure) for v in variants}
    spec = parse_isp(train_isp) if ":" in train_isp or train_isp == "learned" else None
    train_variant = spec.variant if spec is not None and spec.kind == "static" else train_isp
    rows: list[dict[str, Any]] = []
    for r, ds in data.items():
        loader = accelerator.prepare(make_loader(ds, label_column, batch_size, False, 0))
        at_train = r == train_intensity
        views = _BatchViews(model, isps, corruptions if at_train else (), severities, seed, own=own).views
        progress = f"intensity {r:g}: {len(views)} views"
        if samples is None:
            results = evaluate_views(model, loader, accelerator, task, label_names, views, progress=progress)
        else:
            results, confusions = evaluate_views_per_sample(model, loader, accelerator, task, label_names, views,
                                                            progress=progress)
        for name, res in results.items():
            test_variant, corruption, severity = name, "", ""
            if name == "__own__":
                test_variant = "model"
            elif name.startswith("__corrupt__"):
                _, _, corruption, s = name.split("__")
                test_variant, severity = "model", int(s)
            if samples is not None:
                samples[(test_variant, r, corruption, severity)] = confusions[name]
            rows += [{"train_variant": train_variant, "test_variant": test_variant, "intensity": r,
                      "corruption": corruption, "severity": severity, "metric": m, "value": float(res[m])}
                     for m in metrics]
    return rows


@dataclass
class _Entry:
    """One training condition of the report: its label, folder, settings and models (one per
    seed; the folder itself for its own training seed, the others trained by this run)."""

    label: str
    folder: Path
    args: RawTrainingArguments
    seeds: list[int]
    trained: dict[int, str] = field(default_factory=dict)  # seed -> name under <report>/models
    isp: str = ""  # the ISP spec its folder records
    exposure: Any = None  # its ISP's exposure setting

    def model_dir(self, seed: int, out: Path) -> Path:
        return self.folder if seed == self.args.seed else out / "models" / self.trained[seed]


def _seed_list(own: int, seeds: Sequence[int] | None) -> list[int]:
    """The training seeds of a condition: its own first, then the others asked for."""
    return list(dict.fromkeys([own, *(seeds or [])]))


def _entries(model_dir: Path, compare: Sequence[str | Path], labels: Sequence[str] | None,
             seeds: Sequence[int] | None, overrides: dict[str, Any]) -> list[_Entry]:
    folders = [model_dir, *(Path(c) for c in compare)]
    if labels is None:
        labels = ["model"] if not compare else _unique([f.name or "model" for f in folders])
    labels = list(labels)
    if len(labels) != len(folders):
        raise OptionError(f"--labels: {len(labels)} labels for {len(folders)} models")
    for label in labels:
        if not _LABEL.fullmatch(label) or label in ISP_VARIANTS:
            raise OptionError(f"--labels: {label!r} must be letters, digits, '.', '_' or '-' (not an ISP variant name)")
    if len(set(labels)) != len(labels):
        raise OptionError(f"--labels: the labels must differ, got {labels}")
    entries = []
    for label, folder in zip(labels, folders):
        args = training_settings(folder, **overrides)
        entries.append(_Entry(label, folder, args, _seed_list(args.seed, seeds)))
    first = entries[0]
    for e in entries[1:]:
        differ = [f for f in DATA_SETTINGS if getattr(e.args, f) != getattr(first.args, f)]
        if differ:
            shown = ", ".join(f"{f}={getattr(e.args, f)!r} vs {getattr(first.args, f)!r}" for f in differ)
            raise OptionError(f"--compare {e.folder}: trained on other data than {first.folder} ({shown}); compared "
                              "models must share the test data")
    return entries


def _unique(names: list[str]) -> list[str]:
    out: list[str] = []
    for name in names:
        name = re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip("._-") or "model"
        base, k = name, 2
        while name in out or name in ISP_VARIANTS:
            name, k = f"{base}-{k}", k + 1
        out.append(name)
    return out


def _train_copy(args: RawTrainingArguments, output_dir: Path, **changes: Any) -> None:
    """Train ``args`` with ``changes`` into ``output_dir`` (the training scripts' outputs)."""
    from ..training.loop import train
    from ..training.outputs import write_outputs

    vargs = dataclasses.replace(args, output_dir=str(output_dir), overwrite_output_dir=True,
                                resume_from_checkpoint=None, with_tracking=False, checkpointing_steps=None,
                                push_to_hub=False, **changes)
    write_outputs(vargs, train(vargs, evaluate_each_epoch=False))


def _evaluate_entry(entry: _Entry, seed: int, model_dir: Path, data, accelerator, names, variants, grid: dict,
                    samples: dict, rows: list, own: bool = True) -> None:
    model, info = load_raw_model(model_dir, device=accelerator.device)
    args = entry.args
    entry.isp, entry.exposure = entry.isp or info["isp"], isp_exposure(model.isp)
    cells: dict = {}
    for r in evaluate_grid(model, data, accelerator, args.task, names, variants, CameraPreset.parse(info["camera"]),
                           grid["batch_size"], grid["corruptions"] if own else (), grid["severities"], grid["seed"],
                           args.intensity, info["isp"], args.label_column, (*args.headline_metrics, "loss"),
                           own=own, samples=cells):
        rows.append({"model": entry.label, "seed": seed, **r, "ci_low": None, "ci_high": None})
    for key, cms in cells.items():
        samples[(entry.label, seed, *key)] = cms


def synthesize(model_dir: str | Path, output_dir: str | Path | None = None, *, split: str = "test",
               variants: Sequence[str] = ISP_VARIANTS, intensities: Sequence[float] | None = None,
               corruptions: Sequence[str] = CORRUPTIONS, severities: Sequence[int] = (1, 2, 3, 4, 5),
               train_variants: Sequence[str] | None = None, compare: Sequence[str | Path] = (),
               labels: Sequence[str] | None = None, seeds: Sequence[int] | None = None, n_boot: int = N_BOOT,
               bootstrap_seed: int = 0, batch_size: int = 64, max_eval_samples: int | None = None,
               data_dir: str | None = None, cache_dir: str | None = None, seed: int = 0,
               mixed_precision: str = "no") -> dict[str, Any]:
    """Drift synthesis of the model in ``model_dir`` (a training output folder), alone or beside
    the models in ``compare`` (trained differently on the same data); the report goes to
    ``output_dir`` (default ``<model_dir>/drift_synthesis``; an earlier report there is
    replaced, a folder holding anything else is refused first).

    ``intensities``: default every captured intensity of the model's dataset (each model's
    training intensity is always added). ``train_variants``: also train one model per variant
    (and seed) with the first model's settings, tested on every variant at the training
    intensity (the train x test matrix). ``labels``: one per model (default "model" alone, else
    the folder names). ``seeds``: training seeds; each folder stands for its own training seed
    and is evaluated as it is, every other seed listed trains one more model with the folder's
    settings (into ``<report>/models/<label>-seed<s>``). ``n_boot``: bootstrap resamples of the
    test images (0: no intervals), drawn from ``bootstrap_seed``. ``seed``: of the random
    corruptions. ``mixed_precision``: the models under autocast (ISPs and corruptions stay
    float32). Returns ``rows`` (per model and seed), ``cells`` (over seeds, with intervals),
    ``summary`` (of the first model; ``summary["models"]`` has every model), ``text`` (the
    printed summary), ``files``, ``seconds``, ``evaluated_views`` and ``is_main_process``; only
    the main process writes.
    """
    import torch
    from accelerate import Accelerator

    start = time.perf_counter()
    model_dir = Path(model_dir)
    out = Path(output_dir) if output_dir is not None else model_dir / "drift_synthesis"
    check_report_dir(out, REPORT_FILES)
    if n_boot < 0:
        raise OptionError(f"--n_boot must be 0 (no intervals) or positive, got {n_boot}")
    entries = _entries(model_dir, compare, labels, seeds, {"data_dir": data_dir, "cache_dir": cache_dir,
                                                            "max_eval_samples": max_eval_samples})
    targs = entries[0].args
    captured = get_dataset(targs.dataset).intensities
    intensities = list(intensities or captured)
    missing = [i for i in intensities if i not in captured]
    if missing:
        raise OptionError(f"--intensities {missing}: {targs.dataset} is captured at {captured}")
    for e in reversed(entries):
        if e.args.intensity not in intensities:
            intensities = [e.args.intensity, *intensities]
    has_device = torch.accelerator.is_available() if hasattr(torch, "accelerator") else torch.cuda.is_available()
    accelerator = Accelerator(cpu=not has_device, mixed_precision=mixed_precision)
    with accelerator.main_process_first():
        data = load_by_intensity(targs, split, intensities)
    names = label_names(next(iter(data.values())), targs.label_column)
    grid = {"batch_size": batch_size, "corruptions": list(corruptions), "severities": list(severities), "seed": seed}
    rows: list[dict[str, Any]] = []
    samples: dict[tuple, np.ndarray] = {}
    for e in entries:
        for s in e.seeds:
            if s != e.args.seed:
                e.trained[s] = f"{e.label}-seed{s}"
                _train_copy(e.args, out / "models" / e.trained[s], seed=s)
            _evaluate_entry(e, s, e.model_dir(s, out), data, accelerator, names, variants, grid, samples, rows)
    seconds = time.perf_counter() - start
    n_images = len(next(iter(data.values())))
    n_evals = n_images * (len(variants) * len(intensities) + len(intensities) + len(corruptions) * len(severities))
    n_evals *= sum(len(e.seeds) for e in entries)
    trained_variants: list[_Entry] = []
    for v in train_variants or []:
        e = _Entry(f"train:{v}", model_dir, dataclasses.replace(targs, isp=f"static:{v}"), entries[0].seeds)
        for s in e.seeds:
            e.trained[s] = v if s == e.seeds[0] else f"{v}-seed{s}"
            _train_copy(e.args, out / "models" / e.trained[s], seed=s)
            _evaluate_entry(e, s, out / "models" / e.trained[s], {targs.intensity: data[targs.intensity]},
                            accelerator, names, variants, grid, samples, rows, own=False)
        trained_variants.append(e)
    meta = {"model": str(model_dir), "isp": entries[0].isp,
            "models": {e.label: {"folder": str(e.folder), "seeds": e.seeds, "isp": e.isp, "exposure": e.exposure,
                                 "intensity": e.args.intensity} for e in entries},
            "task": targs.task, "split": split, "variants": list(variants), "intensities": intensities,
            "corruptions": list(corruptions), "severities": list(severities),
            "train_variants": list(train_variants or []), "seeds": entries[0].seeds, "n_boot": n_boot,
            "bootstrap_seed": bootstrap_seed, "test_images_per_intensity": n_images, "seconds": seconds,
            "evaluated_views": n_evals}
    report = build_report(rows, samples, meta, task=targs.task, label_names=names,
                          headline=targs.headline_metrics, train_intensities={e.label: e.args.intensity for e in entries},
                          n_boot=n_boot, bootstrap_seed=bootstrap_seed)
    files: list[str] = []
    if accelerator.is_main_process:
        moved = [name for e in [*entries, *trained_variants] for name in e.trained.values()]
        files = write_report(out, report, meta, moved)
    return {"rows": report["rows"], "cells": report["cells"], "summary": report["summary"], "text": report["text"],
            "files": files, "output_dir": str(out), "seconds": seconds, "evaluated_views": n_evals,
            "is_main_process": accelerator.is_main_process}
