"""Deterministic, grouped and stratified train / validation / test splits and k-fold assignments.

Dataset-agnostic: every function takes one entry per example (a group key, optionally a stratum)
and returns one entry per example. All examples of a group land in the same split (or fold), so
correlated examples (one cell at seven intensities, the tiles of one full frame) never straddle a
split. Within each stratum (a class), the split sizes are the stratum's share rounded, so each
class is split about 70/15/15.

How groups are allocated ("systematic allocation with a random start"): within a stratum the
groups are sorted by key, shuffled with a generator seeded by ``(seed, stratum)``, and laid end
to end on a circle of circumference 1, each taking an arc proportional to its weight (1 per group,
or its number of examples). The circle is turned by a random offset, and a group goes to the
split (or fold) whose share of ``[0, 1)`` (``[0, 0.7)``, ``[0.7, 0.85)``, ``[0.85, 1)``) holds its
arc's midpoint. With equal weights, every split of a stratum of ``n`` groups then gets
``floor(f * n)`` or ``ceil(f * n)`` groups (``f`` its fraction), and the random offset keeps the
roundings of many small strata from all favouring the same split. The result depends only on the
set of (group, stratum) pairs, the weights and the seed, not on the order of the examples.

Random (ungrouped) mode: pass every example as its own group (:func:`random_split_assignment`),
which reproduces a plain tile-level random split such as the Raw2Logit study used (that split
leaks between neighbouring tiles of one frame; use it only to reproduce the study).
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Sequence

import numpy as np

__all__ = [
    "SPLIT_NAMES",
    "split_assignment",
    "kfold_assignment",
    "kfold_split",
    "random_split_assignment",
]

#: Names of the three splits, in the order of ``fractions``.
SPLIT_NAMES: tuple[str, str, str] = ("train", "validation", "test")
_BALANCES = ("groups", "examples")


def _stable_hash(text: str) -> int:
    return zlib.crc32(text.encode("utf-8"))


def _check_seed(seed: int) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_fractions(fractions: Sequence[float], count: int) -> np.ndarray:
    f = np.asarray(fractions, dtype=np.float64)
    if f.shape != (count,):
        raise ValueError(f"fractions must be {count} numbers (train, validation, test), got {fractions!r}")
    if not np.all(np.isfinite(f)) or np.any(f < 0) or abs(f.sum() - 1.0) > 1e-6:
        raise ValueError(f"fractions must be >= 0 and sum to 1, got {fractions!r}")
    return f / f.sum()


def _allocate(
    groups: Sequence[Hashable],
    strata: Sequence[Hashable] | None,
    fractions: np.ndarray,
    seed: int,
    balance: str,
    salt: str,
) -> np.ndarray:
    """Bucket index (into ``fractions``) of every example; see the module docstring."""
    seed = _check_seed(seed)
    if balance not in _BALANCES:
        raise ValueError(f"balance must be one of {_BALANCES}, got {balance!r}")
    keys = np.asarray([str(g) for g in groups], dtype=object)
    n = len(keys)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    group_keys, group_of = np.unique(keys.astype(str), return_inverse=True)
    group_of = group_of.reshape(-1)
    num_groups = len(group_keys)
    if strata is None:
        stratum_keys = np.asarray([""])
        stratum_of_group = np.zeros(num_groups, dtype=np.int64)
    else:
        skeys = np.asarray([str(s) for s in strata], dtype=str)
        if len(skeys) != n:
            raise ValueError(f"strata must have one entry per example: got {len(skeys)} for {n} groups")
        stratum_keys, stratum_of = np.unique(skeys, return_inverse=True)
        stratum_of = stratum_of.reshape(-1)
        stratum_of_group = np.full(num_groups, -1, dtype=np.int64)
        stratum_of_group[group_of] = stratum_of
        # Every example of a group must share the group's stratum.
        clash = stratum_of_group[group_of] != stratum_of
        if np.any(clash):
            i = int(np.flatnonzero(clash)[0])
            raise ValueError(
                f"group {keys[i]!r} spans several strata ({stratum_keys[stratum_of[i]]!r} and "
                f"{stratum_keys[stratum_of_group[group_of[i]]]!r}); a group must lie in one stratum"
            )
    if balance == "examples":
        weights = np.bincount(group_of, minlength=num_groups).astype(np.float64)
    else:
        weights = np.ones(num_groups, dtype=np.float64)
    edges = np.cumsum(fractions)[:-1]
    bucket_of_group = np.empty(num_groups, dtype=np.int64)
    for s, skey in enumerate(stratum_keys):
        members = np.flatnonzero(stratum_of_group == s)  # sorted by group key (np.unique order)
        rng = np.random.default_rng([seed, _stable_hash(salt), _stable_hash(str(skey))])
        offset = rng.random()
        order = members[rng.permutation(len(members))]
        w = weights[order]
        total = w.sum()
        mid = (np.cumsum(w) - w / 2) / total
        pos = (mid + offset) % 1.0
        bucket_of_group[order] = np.searchsorted(edges, pos, side="right")
    return bucket_of_group[group_of]


def split_assignment(
    groups: Sequence[Hashable],
    strata: Sequence[Hashable] | None = None,
    fractions: Sequence[float] = (0.7, 0.15, 0.15),
    seed: int = 0,
    balance: str = "groups",
) -> list[str]:
    """Assign each example to "train", "validation" or "test".

    Args:
        groups: one key per example (e.g. ``image_id`` or ``source_image``); all examples with
            the same key (compared as ``str``) land in the same split.
        strata: one key per example (e.g. the class), constant within a group; each stratum is
            split in the proportions ``fractions`` on its own. None: one stratum.
        fractions: shares of train, validation, test; >= 0, summing to 1.
        seed: non-negative integer; the same inputs and seed give the same assignment.
        balance: "groups" (each group counts once: split sizes are counted in groups) or
            "examples" (a group weighs its number of examples: split sizes in examples).
    Returns:
        a list with one of :data:`SPLIT_NAMES` per example.
    Raises:
        ValueError: bad fractions, seed or balance; strata of the wrong length; a group whose
            examples have different strata.
    """
    f = _check_fractions(fractions, len(SPLIT_NAMES))
    buckets = _allocate(groups, strata, f, seed, balance, "split")
    return [SPLIT_NAMES[b] for b in buckets]


def kfold_assignment(
    groups: Sequence[Hashable],
    strata: Sequence[Hashable] | None = None,
    n_folds: int = 5,
    seed: int = 0,
    balance: str = "groups",
) -> list[int]:
    """Assign each example to a fold ``0 .. n_folds-1``, grouped and stratified.

    Each stratum's groups are dealt into the folds in equal shares (floor or ceil of
    ``n / n_folds`` groups each, with ``balance="groups"``). Arguments as in
    :func:`split_assignment`.
    """
    if isinstance(n_folds, (bool, np.bool_)) or not isinstance(n_folds, (int, np.integer)) or n_folds < 2:
        raise ValueError(f"n_folds must be an integer >= 2, got {n_folds!r}")
    f = np.full(int(n_folds), 1.0 / int(n_folds))
    return [int(b) for b in _allocate(groups, strata, f, seed, balance, "kfold")]


def kfold_split(
    groups: Sequence[Hashable],
    strata: Sequence[Hashable] | None = None,
    fold: int = 0,
    n_folds: int = 5,
    seed: int = 0,
    balance: str = "groups",
) -> list[str]:
    """Train / validation / test names for cross-validation round ``fold`` of ``n_folds``.

    Convention: test = fold ``fold``, validation = fold ``(fold + 1) % n_folds``, train = the
    other ``n_folds - 2`` folds (:func:`kfold_assignment`). Over the rounds ``fold = 0 ..
    n_folds-1`` every example is tested exactly once. Needs ``n_folds >= 3``.
    """
    if isinstance(n_folds, (bool, np.bool_)) or not isinstance(n_folds, (int, np.integer)) or n_folds < 3:
        raise ValueError(f"n_folds must be an integer >= 3 (test, validation and train folds), got {n_folds!r}")
    if isinstance(fold, (bool, np.bool_)) or not isinstance(fold, (int, np.integer)) or not 0 <= fold < n_folds:
        raise ValueError(f"fold must be an integer in 0..{n_folds - 1}, got {fold!r}")
    folds = kfold_assignment(groups, strata, n_folds, seed, balance)
    val = (int(fold) + 1) % int(n_folds)
    return ["test" if k == fold else "validation" if k == val else "train" for k in folds]


def random_split_assignment(
    num_examples: int, fractions: Sequence[float] = (0.7, 0.15, 0.15), seed: int = 0
) -> list[str]:
    """Ungrouped random split of ``num_examples`` examples (each its own group, no strata).

    Split sizes are ``fractions * num_examples`` rounded (floor or ceil). This is the plain
    example-level split of the Raw2Logit study; it ignores every correlation between examples.
    """
    if isinstance(num_examples, bool) or not isinstance(num_examples, (int, np.integer)) or num_examples < 0:
        raise ValueError(f"num_examples must be a non-negative integer, got {num_examples!r}")
    return split_assignment([str(i) for i in range(int(num_examples))], None, fractions, seed)
