"""The data of a training run: splits from the dataset package, loaders of whole raw batches,
class frequencies (class balance) and the flip augmentation of developed views.

Shapes: loaders yield ``raw`` ``(B, H, W)``, the int16 bit view of the uint16 frames (accelerators
have few uint16 kernels; :func:`raw_isp.io.raw_to_unit` reads it back), ``labels``: ``(B,)``
int64 class indices or ``(B, H, W)`` int64 masks, and ``intensity``: ``(B,)`` float32, each
frame's light intensity ratio (the dataset's ``intensity`` column; what ``exposure="metadata"``
develops with).

On a CUDA device the loaders pin their batches (page-locked memory, so the copy to the device
can run asynchronously: accelerate is set to ``non_blocking`` copies in that case) and, unless
``--dataloader_num_workers`` says otherwise, gather in 2 worker processes that keep 2 batches
each ready, so the next batch's gather overlaps the current step. Neither changes which frames a
batch holds, so resuming stays exact.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ..data.arrow import RawBatches
from .arguments import OptionError, RawTrainingArguments
from ..registry import get_dataset

__all__ = [
    "SPLITS",
    "builder_kwargs",
    "load_splits",
    "label_names",
    "EpochBatchSampler",
    "RawCollate",
    "make_loader",
    "class_counts",
    "balanced_weights",
    "CUDA_DEFAULT_WORKERS",
    "flips",
]

SPLITS = ("train", "validation", "test")


def builder_kwargs(args: RawTrainingArguments, intensity: float | None) -> dict[str, Any]:
    """Keyword arguments of the dataset package's ``load_dataset`` for a run's settings."""
    info = get_dataset(args.dataset)
    kwargs: dict[str, Any] = dict(source=args.source, data_dir=args.data_dir, cache_dir=args.cache_dir,
                                  intensity=intensity, seed=args.split_seed, n_folds=args.n_folds, fold=args.fold)
    if args.num_examples:
        kwargs[info.size_kwarg] = args.num_examples
    if args.zenodo_record is not None:
        kwargs["record"] = args.zenodo_record
    if info.synthetic_scene_kwargs and args.source == "synthetic":
        if args.num_scenes:
            kwargs["num_scenes"] = args.num_scenes
        if args.frame_size:
            kwargs["frame_height"], kwargs["frame_width"] = args.frame_size
    return kwargs


def load_splits(args: RawTrainingArguments, intensity: float | str | None = None, truncate: bool = True):
    """The train / validation / test splits as a ``DatasetDict`` (uint16 frames) at
    ``intensity`` (default ``args.intensity``; "all": every captured intensity, one config).

    ``truncate``: apply ``--max_train_samples`` / ``--max_eval_samples``. Raises
    :class:`~raw_isp.training.arguments.OptionError` when a split is empty (too few source examples).
    """
    ratio = args.intensity if intensity is None else (None if intensity == "all" else float(intensity))
    splits = get_dataset(args.dataset).module().load_dataset(args.config_name, **builder_kwargs(args, ratio))
    missing = [name for name in SPLITS if name not in splits or len(splits[name]) == 0]
    if missing:
        raise OptionError(f"the {'/'.join(missing)} split(s) of {args.dataset} ({args.config_name}) are empty: too "
                         "few source examples; use more (--num_examples, --num_scenes)")
    if truncate:
        for name, limit in (("train", args.max_train_samples), ("validation", args.max_eval_samples),
                            ("test", args.max_eval_samples)):
            if limit is not None and len(splits[name]) > limit:
                splits[name] = splits[name].select(range(limit))
    return splits


def label_names(dataset, label_column: str) -> list[str]:
    """Class names of a split's label column: a ``ClassLabel``'s names, or, for masks, the mask
    feature's names if it has them, else ``["background", "car"]`` (Raw-Drone's 0/1 masks)."""
    feature = dataset.features[label_column]
    names = getattr(feature, "names", None)
    return list(names) if names else ["background", "car"]


class EpochBatchSampler(torch.utils.data.BatchSampler):
    """Batches of a fixed permutation per epoch: ``randperm(n)`` from ``seed + epoch``, so the
    order of any epoch is known without replaying earlier ones (resuming mid-run is exact).

    ``weights``: ``(n,)`` non-negative sampling weights (:func:`balanced_weights`); then each
    epoch draws ``n`` indices with replacement, index ``i`` with probability proportional to
    ``weights[i]`` (``torch.multinomial`` from the same ``seed + epoch`` generator): a
    class-balanced sampler with the same number of batches per epoch, as exactly resumable.

    The epoch is set with :meth:`use_epoch`, not ``set_epoch``: accelerate's loaders call
    ``set_epoch`` with their own count of iterations, which restarts at 0 after a resume."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int, drop_last: bool = False,
                 weights: torch.Tensor | None = None) -> None:
        super().__init__(range(n), batch_size, drop_last)
        self.n, self.shuffle, self.seed, self.epoch = n, shuffle, seed, 0
        if weights is not None:
            weights = torch.as_tensor(weights, dtype=torch.float64)
            if weights.shape != (n,) or not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()) \
                    or not float(weights.sum()) > 0:
                raise ValueError(f"weights must be {n} finite non-negative numbers, not all 0")
        self.weights = weights

    def use_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        if self.weights is not None:
            order = torch.multinomial(self.weights, self.n, replacement=True, generator=g).tolist()
        elif self.shuffle:
            order = torch.randperm(self.n, generator=g).tolist()
        else:
            order = list(range(self.n))
        for i in range(0, self.n, self.batch_size):
            batch = order[i:i + self.batch_size]
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch


class RawCollate:
    """Batches as the model takes them: ``raw`` int16 bit view of the uint16 frames, ``labels``
    int64, ``intensity`` float32 ``(B,)``.

    ``intensity``: the ratio of every frame when the dataset has no ``intensity`` column (a
    dataset loaded at one light level); None requires the column."""

    def __init__(self, label_column: str, intensity: float | None = None) -> None:
        self.label_column = label_column
        self.intensity = intensity

    def __call__(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        labels = torch.as_tensor(batch[self.label_column]).long()
        raw = batch["image"].view(torch.int16)
        if "intensity" in batch:
            intensity = torch.as_tensor(batch["intensity"], dtype=torch.float32).reshape(-1)
        elif self.intensity is not None:
            intensity = torch.full((raw.shape[0],), self.intensity, dtype=torch.float32)
        else:
            raise KeyError("the dataset has no 'intensity' column; give RawCollate(intensity=ratio) for data "
                           "captured at one light level")
        return {"raw": raw, "labels": labels, "intensity": intensity}


#: Worker processes per loader on a CUDA device when ``--dataloader_num_workers`` is not given.
CUDA_DEFAULT_WORKERS = 2


def make_loader(ds, label_column: str, batch_size: int, shuffle: bool, seed: int, num_workers: int | None = 0,
                intensity: float | None = None, weights: torch.Tensor | None = None, device: Any = None):
    """A ``DataLoader`` of whole raw batches (one Arrow gather per batch,
    :class:`raw_isp.data.arrow.RawBatches`), in the order of an :class:`EpochBatchSampler`.

    ``intensity``: the light ratio of frames of a dataset without an ``intensity`` column
    (:class:`RawCollate`). ``weights``: per-example sampling weights (class-balanced sampler).
    ``device``: where the batches go. On a CUDA device the batches are pinned and
    ``num_workers=None`` means :data:`CUDA_DEFAULT_WORKERS` workers, each keeping 2 batches
    ready (elsewhere None means 0: the gather runs in the training process)."""
    cuda = device is not None and torch.device(device).type == "cuda"
    if num_workers is None:
        num_workers = CUDA_DEFAULT_WORKERS if cuda else 0
    sampler = EpochBatchSampler(len(ds), batch_size, shuffle, seed, weights=weights)
    columns = ["image", label_column] + (["intensity"] if "intensity" in ds.column_names else [])
    return torch.utils.data.DataLoader(
        RawBatches(ds.select_columns(columns), output="torch"), batch_sampler=sampler,
        collate_fn=RawCollate(label_column, intensity), num_workers=num_workers, persistent_workers=num_workers > 0,
        pin_memory=cuda, prefetch_factor=2 if num_workers > 0 else None,
    )


def class_counts(ds, label_column: str, num_labels: int, batch_size: int = 64) -> torch.Tensor:
    """How often each class occurs in a split, ``(num_labels,)`` int64: images per class for a
    ``ClassLabel`` column, pixels per class for masks (read in batches of ``batch_size`` frames).
    Labels outside ``0..num_labels-1`` (e.g. an ignore index 255) are not counted."""
    import datasets

    if isinstance(ds.features[label_column], (datasets.ClassLabel, datasets.Value)):  # one label per example
        labels = torch.as_tensor(ds[label_column], dtype=torch.int64)
        counts = torch.bincount(labels[(labels >= 0) & (labels < num_labels)], minlength=num_labels)
        return counts[:num_labels]
    batches = RawBatches(ds.select_columns([label_column]), output="torch")
    counts = torch.zeros(num_labels, dtype=torch.int64)
    for start in range(0, len(ds), batch_size):
        labels = batches[list(range(start, min(start + batch_size, len(ds))))][label_column].long().reshape(-1)
        counts += torch.bincount(labels[(labels >= 0) & (labels < num_labels)], minlength=num_labels)[:num_labels]
    return counts


def balanced_weights(counts: torch.Tensor) -> torch.Tensor:
    """Inverse-frequency class weights ``(C,)`` float32: ``w_c = N / (K * n_c)`` for the ``K``
    classes that occur (``N`` their total), so a balanced split has every weight 1 and the
    weights average to 1 over the examples; 0 for a class that does not occur (it has no
    examples to weigh). The cross-entropy's weights for ``--class_balance weighted_loss``, and,
    looked up per example, the sampler's (every present class is then drawn equally often)."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    present = counts > 0
    if not bool(present.any()):
        raise ValueError("class counts: no class occurs in the training split")
    weights = torch.zeros_like(counts)
    weights[present] = counts[present].sum() / (int(present.sum()) * counts[present])
    return weights.float()


def flips(seed: int) -> Callable[[torch.Tensor, int], torch.Tensor]:
    """Random flips and 90-degree turns of RGB views ``(B, 3, H, W)`` (turns only when square),
    drawn per step from ``seed`` (deterministic, so a resumed run sees the same augmentation).
    Returns ``augment(rgb, step)``."""

    def augment(rgb: torch.Tensor, step: int) -> torch.Tensor:
        g = torch.Generator().manual_seed(seed * 1_000_003 + step)
        hflip, vflip, turn = (torch.rand(3, rgb.shape[0], generator=g) < 0.5).to(rgb.device)
        rgb = torch.where(hflip.view(-1, 1, 1, 1), rgb.flip(-1), rgb)
        rgb = torch.where(vflip.view(-1, 1, 1, 1), rgb.flip(-2), rgb)
        if rgb.shape[-1] == rgb.shape[-2]:
            rgb = torch.where(turn.view(-1, 1, 1, 1), rgb.transpose(-1, -2), rgb)
        return rgb

    return augment
