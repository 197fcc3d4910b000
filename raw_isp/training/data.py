"""The data of a training run: splits from the dataset package, loaders of whole raw batches,
and the flip augmentation of developed views.

Shapes: loaders yield ``raw`` ``(B, H, W)``, the int16 bit view of the uint16 frames (accelerators
have few uint16 kernels; :func:`raw_isp.io.raw_to_unit` reads it back), and ``labels``: ``(B,)``
int64 class indices or ``(B, H, W)`` int64 masks.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from ..data.arrow import RawBatches
from .arguments import OptionError, RawTrainingArguments
from .registry import get_dataset

__all__ = [
    "SPLITS",
    "builder_kwargs",
    "load_splits",
    "label_names",
    "EpochBatchSampler",
    "RawCollate",
    "make_loader",
    "flips",
]

SPLITS = ("train", "validation", "test")


def builder_kwargs(args: RawTrainingArguments, intensity: float | None) -> dict[str, Any]:
    """Keyword arguments of the dataset package's ``load_dataset`` for a run's settings."""
    info = get_dataset(args.dataset)
    kwargs: dict[str, Any] = dict(source=args.source, data_dir=args.data_dir, cache_dir=args.cache_dir,
                                  intensity=intensity, seed=0, n_folds=args.n_folds, fold=args.fold)
    if args.num_examples:
        kwargs[info.size_kwarg] = args.num_examples
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

    The epoch is set with :meth:`use_epoch`, not ``set_epoch``: accelerate's loaders call
    ``set_epoch`` with their own count of iterations, which restarts at 0 after a resume."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int, drop_last: bool = False) -> None:
        super().__init__(range(n), batch_size, drop_last)
        self.n, self.shuffle, self.seed, self.epoch = n, shuffle, seed, 0

    def use_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        if self.shuffle:
            order = torch.randperm(self.n, generator=torch.Generator().manual_seed(self.seed + self.epoch)).tolist()
        else:
            order = list(range(self.n))
        for i in range(0, self.n, self.batch_size):
            batch = order[i:i + self.batch_size]
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch


class RawCollate:
    """Batches as the model takes them: ``raw`` int16 bit view of the uint16 frames, ``labels`` int64."""

    def __init__(self, label_column: str) -> None:
        self.label_column = label_column

    def __call__(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        labels = torch.as_tensor(batch[self.label_column]).long()
        return {"raw": batch["image"].view(torch.int16), "labels": labels}


def make_loader(ds, label_column: str, batch_size: int, shuffle: bool, seed: int, num_workers: int = 0):
    """A ``DataLoader`` of whole raw batches (one Arrow gather per batch,
    :class:`raw_isp.data.arrow.RawBatches`), in the order of an :class:`EpochBatchSampler`."""
    sampler = EpochBatchSampler(len(ds), batch_size, shuffle, seed)
    return torch.utils.data.DataLoader(
        RawBatches(ds.select_columns(["image", label_column]), output="torch"), batch_sampler=sampler,
        collate_fn=RawCollate(label_column), num_workers=num_workers, persistent_workers=num_workers > 0,
    )


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
