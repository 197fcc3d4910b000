"""Raw frames in Hugging Face ``datasets``: how they are stored, and how they come back as uint16.

Storage. A raw mosaic is an ``Array2D(shape=(H, W), dtype="uint16")`` column and a segmentation
mask an ``Array2D(shape=(H, W), dtype="uint8")`` column (:func:`raw_image_feature`,
:func:`mask_feature`). In Arrow that is a list of lists of uint16: the pixels of consecutive rows
lie back to back in one buffer, so a slice of rows is one contiguous ``(n, H, W)`` block of the
memory-mapped cache file. ``ds.features`` states the shape and the sensor's dtype, and the
column survives a Parquet round trip (the Hub export) with plain ``datasets``.

Formatting. ``datasets`` 5.2's own ``numpy`` and ``torch`` formats turn every integer column
into int64 (four times the memory, and no longer the sensor's type), and they build the arrays
value by value. :func:`raw_format` instead sets the format type ``"raw_isp"`` registered here:
array columns are read straight from the Arrow buffers (``to_numpy(zero_copy_only=True)``,
reshaped), checked to hold the declared shape, copied once (so the result is writable and owns
its memory) and handed out as numpy arrays or torch tensors of the stored dtype (uint16 raw,
uint8 mask, ...). The other columns (labels, ids, intensities, PIL images) go through the
standard numpy or torch formatter. Rows (``ds[i]``), slices and index lists (``ds[i:j]``,
``ds[[3, 1]]``), columns and a torch ``DataLoader`` with worker processes all get the same
dtype and bit-exact values.

Measured on a shared 2-core machine (``benchmarks/bench_datasets.py`` reports the current
figures): a shuffled ``DataLoader`` over 256x256 uint16 frames, batch size 64, 2 workers, delivers
several times the frames per second of ``with_format("torch")`` (which also returns int64).

The format survives pickling (a ``DataLoader`` worker started with ``spawn`` or ``forkserver``
unpickles the dataset, and with it :class:`RawFormatSpec`, whose import registers the format).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pyarrow as pa

import datasets
from datasets.formatting import _register_formatter
from datasets.formatting.formatting import Formatter
from datasets.formatting.np_formatter import NumpyFormatter
from datasets.formatting.torch_formatter import TorchFormatter

__all__ = [
    "RAW_FORMAT_TYPE",
    "RawFormatSpec",
    "RawFormatter",
    "raw_format",
    "raw_image_feature",
    "mask_feature",
    "array_column_to_numpy",
]

#: The format type registered with ``datasets`` (``ds.with_format("raw_isp", spec=...)``).
RAW_FORMAT_TYPE = "raw_isp"
_OUTPUTS = ("torch", "numpy")
_ARRAY_FEATURES = (datasets.Array2D, datasets.Array3D, datasets.Array4D, datasets.Array5D)


def raw_image_feature(shape: tuple[int, int] = (256, 256)) -> datasets.Array2D:
    """The feature of a raw Bayer mosaic: ``Array2D(shape, "uint16")`` (DN as stored in the file)."""
    return datasets.Array2D(shape=tuple(shape), dtype="uint16")


def mask_feature(shape: tuple[int, int] = (256, 256)) -> datasets.Array2D:
    """The feature of a binary segmentation mask: ``Array2D(shape, "uint8")``, 0 or 1 per pixel."""
    return datasets.Array2D(shape=tuple(shape), dtype="uint8")


@dataclass(frozen=True)
class RawFormatSpec:
    """What :class:`RawFormatter` does; passed as the format kwarg ``spec``.

    Attributes:
        columns: the fixed-shape array columns to read straight from Arrow; None means every
            ``Array2D``..``Array5D`` column of the dataset.
        output: "torch" (tensors) or "numpy" (arrays).
        copy: True (default) hands out arrays that own their memory. False (numpy only) hands
            out read-only views into the Arrow buffers where the rows are contiguous in one
            chunk (zero copy; a gather of scattered rows still copies).
    """

    columns: tuple[str, ...] | None = None
    output: str = "torch"
    copy: bool = True

    def __post_init__(self) -> None:
        if self.output not in _OUTPUTS:
            raise ValueError(f"output must be one of {_OUTPUTS}, got {self.output!r}")
        if self.columns is not None:
            if isinstance(self.columns, str) or not all(isinstance(c, str) for c in self.columns):
                raise ValueError(f"columns must be a tuple of column names, got {self.columns!r}")
        if not self.copy and self.output == "torch":
            raise ValueError("copy=False is only possible with output='numpy' (torch needs writable memory)")


def _array_feature_shape(feature: Any) -> tuple[tuple[int, ...], np.dtype] | None:
    if isinstance(feature, _ARRAY_FEATURES) and all(isinstance(s, int) for s in feature.shape):
        return tuple(int(s) for s in feature.shape), np.dtype(feature.dtype)
    return None


def array_column_to_numpy(
    column: pa.ChunkedArray | pa.Array, shape: Sequence[int], dtype: Any, name: str = "column", copy: bool = True
) -> np.ndarray:
    """Read a fixed-shape array column (``Array2D`` etc.) as one numpy array ``(n, *shape)``.

    Works on the extension column of ``datasets`` or its storage (nested lists, variable or
    fixed size), sliced or not. Each chunk's values buffer is viewed without conversion; every
    nesting level is checked to hold exactly the declared lengths.

    Args:
        column: the Arrow column (``pa.ChunkedArray`` or ``pa.Array``).
        shape: the per-row shape, e.g. ``(256, 256)``.
        dtype: the stored dtype, e.g. ``np.uint16``.
        name: the column's name, for error messages.
        copy: False returns a read-only view when the rows are one contiguous chunk.
    Returns:
        numpy array of ``dtype`` and shape ``(n, *shape)``.
    Raises:
        ValueError: nulls, a different value type, or rows whose shape is not ``shape``.
    """
    shape = tuple(int(s) for s in shape)
    dtype = np.dtype(dtype)
    chunks = column.chunks if isinstance(column, pa.ChunkedArray) else [column]
    parts: list[np.ndarray] = []
    for chunk in chunks:
        if isinstance(chunk, pa.ExtensionArray):
            chunk = chunk.storage
        n = len(chunk)
        if n == 0:
            continue
        values: pa.Array = chunk
        for level, size in enumerate(shape):
            if values.null_count:
                raise ValueError(f"{name}: holds missing values (nulls) at nesting level {level}")
            if pa.types.is_fixed_size_list(values.type):
                if values.type.list_size != size:
                    raise ValueError(f"{name}: rows have length {values.type.list_size} at level {level}, expected {size}")
            elif pa.types.is_list(values.type) or pa.types.is_large_list(values.type):
                offsets = values.offsets.to_numpy(zero_copy_only=False)
                lengths = np.diff(offsets)
                if lengths.size and (lengths.min() != size or lengths.max() != size):
                    raise ValueError(
                        f"{name}: expected every row to have shape {shape}, found lengths "
                        f"{lengths.min()}..{lengths.max()} at nesting level {level} (expected {size})"
                    )
            else:
                raise ValueError(f"{name}: expected nested lists of shape {shape}, found type {values.type}")
            values = values.flatten()
        if values.null_count:
            raise ValueError(f"{name}: holds missing pixel values (nulls)")
        if values.type != pa.from_numpy_dtype(dtype):
            raise ValueError(f"{name}: stored values are {values.type}, expected {dtype}")
        flat = values.to_numpy(zero_copy_only=True)
        if flat.size != n * math.prod(shape):
            raise ValueError(f"{name}: {flat.size} values for {n} rows of shape {shape}")
        parts.append(flat.reshape((n, *shape)))
    if not parts:
        return np.empty((0, *shape), dtype=dtype)
    if len(parts) == 1:
        return parts[0].copy() if copy else parts[0]
    return np.concatenate(parts)


class RawFormatter(Formatter):
    """``datasets`` formatter: fixed-shape array columns at their stored dtype, the rest as usual.

    Registered as format type :data:`RAW_FORMAT_TYPE`; use :func:`raw_format` to set it.
    """

    def __init__(self, features: datasets.Features | None = None, token_per_repo_id: Any = None,
                 spec: RawFormatSpec | None = None, **kwargs: Any) -> None:
        super().__init__(features=features, token_per_repo_id=token_per_repo_id)
        if kwargs:
            raise TypeError(f"unexpected format kwargs {sorted(kwargs)}; pass spec=RawFormatSpec(...)")
        spec = spec if spec is not None else RawFormatSpec()
        if not isinstance(spec, RawFormatSpec):
            raise TypeError(f"spec must be a RawFormatSpec, got {type(spec).__name__}")
        self.spec = spec
        rest_cls = TorchFormatter if spec.output == "torch" else NumpyFormatter
        self._rest = rest_cls(features=features, token_per_repo_id=token_per_repo_id)
        self._arrays: dict[str, tuple[tuple[int, ...], np.dtype]] = {}
        for name, feature in (features or {}).items():
            found = _array_feature_shape(feature)
            if found is not None and (spec.columns is None or name in spec.columns):
                self._arrays[name] = found
        if features is not None and spec.columns is not None:
            missing = [c for c in spec.columns if c not in self._arrays]
            if missing:
                kinds = {c: type(features[c]).__name__ if c in features else "absent" for c in missing}
                raise ValueError(
                    f"columns {missing} are not fixed-shape array columns (Array2D..Array5D) of the dataset: {kinds}"
                )

    # -- helpers
    def _convert(self, name: str, column: pa.ChunkedArray) -> Any:
        shape, dtype = self._arrays[name]
        arr = array_column_to_numpy(column, shape, dtype, name=name, copy=self.spec.copy)
        if self.spec.output == "torch":
            import torch

            return torch.from_numpy(arr)
        return arr

    def _split(self, pa_table: pa.Table) -> tuple[list[str], pa.Table]:
        raw = [c for c in pa_table.column_names if c in self._arrays]
        return raw, pa_table.drop_columns(raw) if raw else pa_table

    def _merge(self, pa_table: pa.Table, formatted_rest: dict, raw: dict) -> dict:
        return {c: raw[c] if c in raw else formatted_rest[c] for c in pa_table.column_names}

    # -- Formatter API
    def format_batch(self, pa_table: pa.Table) -> dict:
        names, rest = self._split(pa_table)
        raw = {c: self._convert(c, pa_table.column(c)) for c in names}
        formatted = dict(self._rest.format_batch(rest)) if rest.num_columns else {}
        return self._merge(pa_table, formatted, raw)

    def format_row(self, pa_table: pa.Table) -> dict:
        names, rest = self._split(pa_table)
        raw = {c: self._convert(c, pa_table.column(c))[0] for c in names}
        formatted = dict(self._rest.format_row(rest)) if rest.num_columns else {}
        return self._merge(pa_table, formatted, raw)

    def format_column(self, pa_table: pa.Table) -> Any:
        name = pa_table.column_names[0]
        if name in self._arrays:
            return self._convert(name, pa_table.column(0))
        return self._rest.format_column(pa_table)


_register_formatter(RawFormatter, RAW_FORMAT_TYPE)


def raw_format(
    ds: datasets.Dataset | datasets.DatasetDict,
    columns: Sequence[str] | None = None,
    output: str = "torch",
    copy: bool = True,
) -> datasets.Dataset | datasets.DatasetDict:
    """Return ``ds`` formatted so that raw frames and masks come back at their stored dtype.

    Args:
        ds: a ``datasets.Dataset`` or ``DatasetDict`` (each split is formatted).
        columns: array columns to read straight from Arrow (default: every fixed-shape
            ``Array2D``..``Array5D`` column, e.g. ``image`` uint16 and ``mask`` uint8). All other
            columns are returned too, through the standard numpy or torch formatter
            (ClassLabel and integer columns as int64, floats as float32 tensors in torch;
            strings as Python strings; images stored with ``datasets.Image`` as uint8 tensors
            ``(3, H, W)`` in torch or arrays ``(H, W, 3)`` in numpy).
        output: "torch" (``torch.uint16`` tensors, ``(H, W)`` per row, ``(n, H, W)`` per batch)
            or "numpy" (``np.uint16`` arrays of the same shapes).
        copy: see :class:`RawFormatSpec` (False: read-only zero-copy numpy views).
    Returns:
        a formatted copy (``ds.with_format``); ``ds`` itself is unchanged.

    For a torch ``DataLoader``, the default collate stacks the uint16 rows into ``(B, H, W)``;
    convert to float on the device (``raw_isp.normalize_raw``) rather than in the workers, which
    keeps the bytes moved between processes at two per pixel.
    """
    spec = RawFormatSpec(columns=None if columns is None else tuple(columns), output=output, copy=copy)
    if isinstance(ds, datasets.DatasetDict):
        return datasets.DatasetDict({k: raw_format(v, columns, output, copy) for k, v in ds.items()})
    if not isinstance(ds, datasets.Dataset):
        raise TypeError(f"ds must be a datasets.Dataset or DatasetDict, got {type(ds).__name__}")
    return ds.with_format(RAW_FORMAT_TYPE, spec=spec)
