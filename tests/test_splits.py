"""raw_isp.data.splits: grouped, stratified, deterministic train/validation/test and k-fold assignments."""

from __future__ import annotations

import math
import time
from collections import Counter, defaultdict

import numpy as np
import pytest

from raw_isp.data.splits import (
    SPLIT_NAMES,
    kfold_assignment,
    kfold_split,
    random_split_assignment,
    split_assignment,
)
from raw_microscopy.synthetic import CLASS_COUNTS

FRACTIONS = (0.7, 0.15, 0.15)


def microscopy_like(intensities: int = 7) -> tuple[list[str], list[str]]:
    """940 cells with the real class counts, each at several intensities (one example per pair)."""
    groups, strata = [], []
    k = 0
    for cls, count in CLASS_COUNTS.items():
        for _ in range(count):
            for _r in range(intensities):
                groups.append(f"cell{k:04d}")
                strata.append(cls)
            k += 1
    return groups, strata


def test_groups_never_straddle_splits_and_strata_are_split_70_15_15() -> None:
    groups, strata = microscopy_like()
    names = split_assignment(groups, strata, seed=0)
    assert set(names) == set(SPLIT_NAMES)
    split_of_group: dict[str, set[str]] = defaultdict(set)
    for g, s in zip(groups, names):
        split_of_group[g].add(s)
    assert all(len(v) == 1 for v in split_of_group.values())
    # Each class: every split gets floor or ceil of its share of the class's cells.
    per_class: dict[str, Counter] = defaultdict(Counter)
    for g, cls in {g: c for g, c in zip(groups, strata)}.items():
        per_class[cls][next(iter(split_of_group[g]))] += 1
    for cls, counts in per_class.items():
        n = CLASS_COUNTS[cls]
        for split, f in zip(SPLIT_NAMES, FRACTIONS):
            assert math.floor(f * n) <= counts[split] <= math.ceil(f * n), (cls, split, counts)
    total = Counter(next(iter(split_of_group[g])) for g in split_of_group)
    assert abs(total["train"] - 658) <= 5 and abs(total["validation"] - 141) <= 5 and abs(total["test"] - 141) <= 5


def test_deterministic_and_independent_of_example_order() -> None:
    groups, strata = microscopy_like(intensities=2)
    a = split_assignment(groups, strata, seed=3)
    assert a == split_assignment(groups, strata, seed=3)
    perm = np.random.default_rng(1).permutation(len(groups))
    b = split_assignment([groups[i] for i in perm], [strata[i] for i in perm], seed=3)
    assert [a[i] for i in perm] == b
    assert split_assignment(groups, strata, seed=4) != a


def test_same_groups_give_the_same_split_whatever_the_number_of_examples_per_group() -> None:
    # One row per cell (a single-intensity config) and seven rows per cell agree per cell.
    g7, s7 = microscopy_like(7)
    g1, s1 = microscopy_like(1)
    a7 = dict(zip(g7, split_assignment(g7, s7)))
    a1 = dict(zip(g1, split_assignment(g1, s1)))
    assert a7 == a1


def test_balance_by_examples_weighs_groups_by_size() -> None:
    # 12 frames with very different tile counts: balance="examples" splits the tiles ~70/15/15.
    rng = np.random.default_rng(0)
    sizes = rng.integers(5, 200, 60)
    groups = [f"f{k}" for k, n in enumerate(sizes) for _ in range(n)]
    names = split_assignment(groups, balance="examples")
    counts = Counter(names)
    for split, f in zip(SPLIT_NAMES, FRACTIONS):
        assert abs(counts[split] / len(groups) - f) < 0.06, counts
    assert len({(g, s) for g, s in zip(groups, names)}) == 60  # still grouped


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="spans several strata"):
        split_assignment(["a", "a", "b"], ["x", "y", "x"])
    with pytest.raises(ValueError, match="sum to 1"):
        split_assignment(["a"], fractions=(0.5, 0.2, 0.2))
    with pytest.raises(ValueError, match="3 numbers"):
        split_assignment(["a"], fractions=(0.5, 0.5))
    with pytest.raises(ValueError, match="one entry per example"):
        split_assignment(["a", "b"], ["x"])
    with pytest.raises(ValueError, match="seed"):
        split_assignment(["a"], seed=-1)
    with pytest.raises(ValueError, match="balance"):
        split_assignment(["a"], balance="rows")
    with pytest.raises(ValueError, match="n_folds"):
        kfold_split(["a"], n_folds=2)
    with pytest.raises(ValueError, match="fold"):
        kfold_split(["a"], fold=5, n_folds=5)
    assert split_assignment([]) == []


def test_kfold_partitions_grouped_and_stratified() -> None:
    groups, strata = microscopy_like(intensities=3)
    folds = kfold_assignment(groups, strata, n_folds=5, seed=0)
    assert set(folds) == set(range(5))
    fold_of_group: dict[str, set[int]] = defaultdict(set)
    for g, f in zip(groups, folds):
        fold_of_group[g].add(f)
    assert all(len(v) == 1 for v in fold_of_group.values())
    per_class: dict[str, Counter] = defaultdict(Counter)
    for g, cls in dict(zip(groups, strata)).items():
        per_class[cls][next(iter(fold_of_group[g]))] += 1
    for cls, counts in per_class.items():
        n = CLASS_COUNTS[cls]
        assert all(n // 5 <= counts[k] <= -(-n // 5) for k in range(5)), (cls, counts)
    # The rounds of kfold_split: test = fold k, validation = fold k+1; each example tested once.
    tested = Counter()
    for k in range(5):
        names = kfold_split(groups, strata, fold=k, n_folds=5, seed=0)
        for f, s in zip(folds, names):
            assert s == ("test" if f == k else "validation" if f == (k + 1) % 5 else "train")
        tested.update(i for i, s in enumerate(names) if s == "test")
    assert set(tested.values()) == {1} and len(tested) == len(groups)


def test_random_split_is_ungrouped_and_sized_by_rounding() -> None:
    names = random_split_assignment(930, seed=0)
    counts = Counter(names)
    for split, f in zip(SPLIT_NAMES, FRACTIONS):
        assert math.floor(f * 930) <= counts[split] <= math.ceil(f * 930)
    assert names == random_split_assignment(930, seed=0)
    assert names != random_split_assignment(930, seed=1)
    # Consecutive examples are not in blocks: the split is a shuffle.
    runs = sum(a != b for a, b in zip(names, names[1:]))
    assert runs > 200


def test_fast_for_large_inputs() -> None:
    groups = [f"g{i // 7}" for i in range(70_000)]
    strata = [str((i // 7) % 9) for i in range(70_000)]
    t = time.perf_counter()
    names = split_assignment(groups, strata)
    assert time.perf_counter() - t < 3.0
    assert len(names) == 70_000
