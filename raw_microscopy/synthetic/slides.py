"""Which class and which slide each example has, and each slide's draw of staining and lamp."""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import numpy as np

from .constants import _STAIN_DYES, _STAINS, CLASS_COUNTS, CLASS_NAMES, NUM_REAL_EXAMPLES, NUM_SLIDES


@functools.lru_cache(maxsize=64)
def _label_block(seed: int, block: int) -> np.ndarray:
    """Labels of examples ``940*block .. 940*block+939``: a seeded permutation of the real list."""
    labels = np.repeat(np.arange(len(CLASS_NAMES), dtype=np.int64), [CLASS_COUNTS[c] for c in CLASS_NAMES])
    perm = np.random.default_rng([seed, block, 0x1A8E1]).permutation(labels)
    perm.setflags(write=False)
    return perm


@functools.lru_cache(maxsize=64)
def _slide_block(seed: int, block: int) -> np.ndarray:
    """Slides of the examples of a block: each class dealt round the slides from a seeded start."""
    labels = _label_block(seed, block)
    start = np.random.default_rng([seed, block, 0x511DE]).integers(0, NUM_SLIDES, len(CLASS_NAMES))
    slides = np.empty(len(labels), dtype=np.int64)
    for c in range(len(CLASS_NAMES)):
        members = np.flatnonzero(labels == c)
        slides[members] = (start[c] + np.arange(len(members))) % NUM_SLIDES
    slides.setflags(write=False)
    return slides


def _check_seed(seed: Any) -> int:
    if isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def _check_index(i: Any) -> int:
    if isinstance(i, (bool, np.bool_)) or not isinstance(i, (int, np.integer)) or i < 0:
        raise ValueError(f"example index must be a non-negative integer, got {i!r}")
    return int(i)


def label_of(i: int, seed: int = 0) -> int:
    """Class index (into :data:`CLASS_NAMES`) of example ``i`` for ``seed``; renders nothing.

    Examples come in blocks of 940, each a seeded permutation of the real label list, so any
    940 consecutive examples starting at a multiple of 940 have exactly :data:`CLASS_COUNTS`.
    """
    i, seed = _check_index(i), _check_seed(seed)
    return int(_label_block(seed, i // NUM_REAL_EXAMPLES)[i % NUM_REAL_EXAMPLES])


def label_assignment(num_examples: int = NUM_REAL_EXAMPLES, seed: int = 0) -> np.ndarray:
    """Labels of examples ``0 .. num_examples-1`` as an int64 array."""
    if num_examples < 0:
        raise ValueError(f"num_examples must be >= 0, got {num_examples}")
    seed = _check_seed(seed)
    blocks = -(-num_examples // NUM_REAL_EXAMPLES)
    if blocks == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([_label_block(seed, b) for b in range(blocks)])[:num_examples].copy()


def slide_of(i: int, seed: int = 0) -> int:
    """Slide (smear) of example ``i``, in ``0 .. NUM_SLIDES-1``; renders nothing.

    Within each block of 940, the examples of each class are dealt round the slides in turn
    (from a seeded first slide), so every class is spread as evenly as its count allows.
    """
    i, seed = _check_index(i), _check_seed(seed)
    return int(_slide_block(seed, i // NUM_REAL_EXAMPLES)[i % NUM_REAL_EXAMPLES])



class _Slide(NamedTuple):
    """What one smear and its imaging session fix for all of its cells."""

    strength: np.ndarray  # (n_stains,) multiplier of each stain's absorbance
    hue: np.ndarray  # (n_stains, 3) multiplier per stain and channel (dye spectra shift slightly)
    lamp: float  # lamp level of the session relative to nominal
    crowding: float  # multiplier of the number of red cells around a white cell


@functools.lru_cache(maxsize=256)
def _slide(seed: int, slide: int) -> _Slide:
    """The seeded draw of one slide: dyes +-10 % (log-normal), azure/eosin balance +-8 %, lamp +-1.5 %.

    One supplier and one protocol (datasheet), so the spread is modest; the lamp's is small because
    the datasheet states identical illumination for all samples.
    """
    rng = np.random.default_rng([seed, slide, 0x5713E])
    dye = dict(zip(("azure", "eosin", "blue"), np.exp(rng.normal(0.0, 0.10, 3))))
    balance = math.exp(rng.normal(0.0, 0.08))  # buffer pH: > 1 favours eosin (redder), < 1 azure (bluer)
    dye["azure"] /= balance
    dye["eosin"] *= balance
    strength = np.array([math.prod(dye[d] for d in _STAIN_DYES[k]) ** (1 / len(_STAIN_DYES[k])) for k in _STAINS],
                        dtype=np.float32)
    hue = (1.0 + rng.normal(0.0, 0.04, size=(len(_STAINS), 3))).astype(np.float32)
    return _Slide(strength, hue, float(1.0 + rng.normal(0.0, 0.015)), float(rng.uniform(0.6, 1.4)))
