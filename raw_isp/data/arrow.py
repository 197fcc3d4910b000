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
standard numpy or torch formatter; with numpy output a row's numbers and strings are Python
``int`` / ``float`` / ``str``, as in a plain ``datasets`` row (``json.dumps``, ``ClassLabel.int2str``
take them), and a row's uint16 frame is a :class:`raw_isp.io.RawFrame` whose ``intensity`` is the
row's ``intensity`` (so ``processor(row["image"])`` and ``write_raw(path, row["image"])`` keep
the exposure). The format is used by name like the built-in ones:
``ds.with_format("raw_isp")`` (numpy output, the packages' default), ``ds.with_format("raw_isp",
output="torch")``, ``columns=``, ``copy=`` (the fields of :class:`RawFormatSpec`). Rows (``ds[i]``), slices and index lists (``ds[i:j]``,
``ds[[3, 1]]``), columns and a torch ``DataLoader`` with worker processes all get the same
dtype and bit-exact values.

Loading. :func:`raw_dataloader` builds a torch ``DataLoader`` that gets each batch with one
gather (:class:`RawBatches`: frames copied with numpy straight out of the memory-mapped record
batches into a shared-memory tensor; numbers and strings taken with Arrow's own gather),
instead of ``datasets``' per-row gather, split into rows and re-stacking by the default collate.
Measured on the shared 2-core machine this was written on (other jobs running, so figures vary
about 2x from run to run), 658 synthetic 256x256 frames, shuffled, batch 64, 2 workers:
``DataLoader(ds.with_format("torch"))`` 780-1,430 frames/s (int64);
``DataLoader(raw_format(ds, output="torch"))`` 1,950-3,950 frames/s (uint16);
``raw_dataloader(ds)`` 4,000-8,300 frames/s (uint16). ``benchmarks/bench_datasets.py``
reports the current figures.

The format survives pickling (a ``DataLoader`` worker started with ``spawn`` or ``forkserver``
unpickles the dataset, and with it :class:`RawFormatSpec`, whose import registers the format).
It is registered with ``datasets.formatting._register_formatter``, a private function of
``datasets`` (checked with 5.2); the tests fail loudly if a release changes it.

The builders that write these columns live in :mod:`raw_isp.data.builder`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

import datasets
from datasets.formatting import _register_formatter

from ..io import _as_frame
from datasets.formatting.formatting import Formatter
from datasets.formatting.np_formatter import NumpyFormatter
from datasets.formatting.torch_formatter import TorchFormatter

__all__ = [
    "RAW_FORMAT_TYPE",
    "RawFormatSpec",
    "RawFormatter",
    "raw_format",
    "raw_dataloader",
    "RawBatches",
    "raw_image_feature",
    "mask_feature",
    "array_column_to_numpy",
]

#: The format type registered with ``datasets`` (``ds.with_format("raw_isp", spec=...)``).
RAW_FORMAT_TYPE = "raw_isp"
_OUTPUTS = ("torch", "numpy")
_ARRAY_FEATURES = (datasets.Array2D, datasets.Array3D, datasets.Array4D, datasets.Array5D)
#: The column holding a row's intensity ratio; with numpy output a row's uint16 frames are
#: :class:`raw_isp.io.RawFrame` arrays carrying it (``row["image"].intensity``).
INTENSITY_COLUMN = "intensity"


def _torch_dtypes() -> dict[np.dtype, Any]:
    import torch

    names = ("uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "float16", "float32", "float64", "bool")
    return {np.dtype(n): getattr(torch, n) for n in names if hasattr(torch, n)}


_TORCH_DTYPES = _torch_dtypes()


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
    column: pa.ChunkedArray | pa.Array, shape: Sequence[int], dtype: Any, name: str = "column", copy: bool = True,
    out: Any = None,
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
        out: optional callable ``out(full_shape, dtype) -> np.ndarray`` that provides the memory
            to copy into (e.g. shared memory); used when a copy is made.
    Returns:
        numpy array of ``dtype`` and shape ``(n, *shape)``.
    Raises:
        ValueError: nulls, a different value type, or rows whose shape is not ``shape``.
    """
    shape = tuple(int(s) for s in shape)
    dtype = np.dtype(dtype)
    if isinstance(column, pa.Array):
        column = pa.chunked_array([column])
    if isinstance(column.type, pa.ExtensionType):
        # A cast to the storage type is a C++ unwrap: no Python object per chunk (a gather of
        # scattered rows has one chunk per row, and wrapping each costs a type deserialisation).
        column = column.cast(column.type.storage_type)
    n = len(column)
    values = column
    for level, size in enumerate(shape):
        kind = values.type
        if not (pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind)):
            raise ValueError(
                f"{name}: expected nested lists of shape {shape}, found type {kind} at nesting level {level}"
            )
        if values.null_count:
            raise ValueError(f"{name}: holds missing values (nulls) at nesting level {level}")
        if len(values):
            bounds = pc.min_max(pc.list_value_length(values))
            lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
            if lo != size or hi != size:
                raise ValueError(
                    f"{name}: expected every row to have shape {shape}, found lengths {lo}..{hi} at "
                    f"nesting level {level} (expected {size})"
                )
        values = pc.list_flatten(values)
    if values.null_count:
        raise ValueError(f"{name}: holds missing pixel values (nulls)")
    if values.type != pa.from_numpy_dtype(dtype):
        raise ValueError(f"{name}: stored values are {values.type}, expected {dtype}")
    if len(values) != n * math.prod(shape):
        raise ValueError(f"{name}: {len(values)} values for {n} rows of shape {shape}")
    parts = [chunk.to_numpy(zero_copy_only=True) for chunk in values.chunks if len(chunk)]
    if not parts:
        return np.empty((0, *shape), dtype=dtype)
    if len(parts) == 1 and not copy:
        return parts[0].reshape((n, *shape))
    result = out((n, *shape), dtype) if out is not None else np.empty((n, *shape), dtype=dtype)
    flat = result.reshape(-1)
    start = 0
    for part in parts:  # one copy, into memory the result owns
        flat[start:start + part.size] = part
        start += part.size
    return result


class RawFormatter(Formatter):
    """``datasets`` formatter: fixed-shape array columns at their stored dtype, the rest as usual.

    Registered as format type :data:`RAW_FORMAT_TYPE`; use :func:`raw_format` to set it.
    """

    def __init__(self, features: datasets.Features | None = None, token_per_repo_id: Any = None,
                 spec: RawFormatSpec | None = None, **kwargs: Any) -> None:
        super().__init__(features=features, token_per_repo_id=token_per_repo_id)
        # with_format("raw_isp", output=..., columns=..., copy=...) by name; with_format("raw_isp")
        # alone is numpy output (the packages' default format).
        fields = {"columns", "output", "copy"}
        unknown = sorted(set(kwargs) - fields)
        if unknown:
            raise TypeError(f"with_format({RAW_FORMAT_TYPE!r}): unexpected format kwargs {unknown}; it takes "
                            f"{sorted(fields)} (or spec=RawFormatSpec(...))")
        if spec is None:
            if kwargs.get("columns") is not None and not isinstance(kwargs["columns"], str):
                kwargs["columns"] = tuple(kwargs["columns"])
            spec = RawFormatSpec(**{"output": "numpy", **{k: v for k, v in kwargs.items() if v is not None}})
        elif kwargs:
            raise TypeError(f"with_format({RAW_FORMAT_TYPE!r}): pass spec= or {sorted(kwargs)}, not both")
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
        if self.spec.output != "torch":
            return array_column_to_numpy(column, shape, dtype, name=name, copy=self.spec.copy)
        import torch
        from torch.utils.data import get_worker_info

        holder: list[Any] = []

        def shared(full_shape: tuple[int, ...], np_dtype: np.dtype) -> np.ndarray:
            # In a DataLoader worker the batch goes to the main process through shared memory;
            # writing it there at once saves the copy torch would make when sending it.
            t = torch.empty(full_shape, dtype=_TORCH_DTYPES[np.dtype(np_dtype)]).share_memory_()
            holder.append(t)
            return t.numpy()

        in_worker = get_worker_info() is not None and np.dtype(dtype) in _TORCH_DTYPES
        arr = array_column_to_numpy(column, shape, dtype, name=name, copy=True, out=shared if in_worker else None)
        return holder[0] if holder else torch.from_numpy(arr)

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
        if self.spec.output == "numpy":
            # Numbers and strings as Python values, as a plain datasets row has them.
            formatted = {k: _python_scalar(v) for k, v in formatted.items()}
            # The frame carries its exposure, as a file written with write_raw(..., intensity=) does.
            ratio = formatted.get(INTENSITY_COLUMN)
            if isinstance(ratio, float) and math.isfinite(ratio) and ratio > 0:
                for name in names:
                    if raw[name].ndim == 2 and raw[name].dtype == np.uint16:
                        raw[name] = _as_frame(raw[name], ratio)
        return self._merge(pa_table, formatted, raw)

    def format_column(self, pa_table: pa.Table) -> Any:
        name = pa_table.column_names[0]
        if name in self._arrays:
            return self._convert(name, pa_table.column(0))
        return self._rest.format_column(pa_table)


def _python_scalar(value: Any) -> Any:
    """A numpy scalar (or 0-d array) as the Python value; anything else as it is."""
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()
    return value


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
    if spec == RawFormatSpec(output="numpy"):
        # The default format, set without kwargs so that ds.to_iterable_dataset() keeps it.
        return ds.with_format(RAW_FORMAT_TYPE)
    return ds.with_format(RAW_FORMAT_TYPE, spec=spec)


class RawBatches:
    """Batches of a ``datasets.Dataset`` by lists of indices, for a ``DataLoader`` with a batch sampler.

    Fixed-shape array columns (raw frames, masks) are gathered with numpy straight from the
    memory-mapped Arrow record batches into the result (one copy per frame, into shared memory
    when called in a ``DataLoader`` worker); the other columns go through the standard torch or
    numpy formatter. ``batches[[7, 2, 40]]`` equals ``raw_format(ds, output=...)[[7, 2, 40]]``.

    This skips ``datasets``' per-row gather, whose cost is dominated by re-creating the
    extension type of each gathered row. It reads the dataset's table and its indices mapping
    (``ds.data``, ``ds._indices`` after ``select``/``shuffle``/``filter``) directly.

    Args:
        ds: the dataset (its own format is ignored).
        output: "torch" or "numpy".
    """

    def __init__(self, ds: datasets.Dataset, output: str = "torch") -> None:
        if not isinstance(ds, datasets.Dataset):
            raise TypeError(f"ds must be a datasets.Dataset, got {type(ds).__name__}")
        if output not in _OUTPUTS:
            raise ValueError(f"output must be one of {_OUTPUTS}, got {output!r}")
        self.ds = ds.with_format(None)
        self.output = output
        self.arrays = {n: f for n, f in ((n, _array_feature_shape(f)) for n, f in ds.features.items()) if f}
        # Numbers and strings are taken with Arrow's own gather; anything else (images, nested
        # features) goes through the standard formatter.
        self.plain = [n for n, f in ds.features.items() if n not in self.arrays and _is_plain(f)]
        others = [n for n in ds.column_names if n not in self.arrays and n not in self.plain]
        self.rest = ds.select_columns(others).with_format(output) if others else None
        self._views: dict[str, tuple[np.ndarray, list[np.ndarray]]] | None = None

    def __len__(self) -> int:
        return len(self.ds)

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_views"] = None  # views into this process's memory map; rebuilt after unpickling
        return state

    def _chunk_views(self) -> dict[str, tuple[np.ndarray, list[np.ndarray]]]:
        if self._views is None:
            table = self.ds.data.table
            views = {}
            for name, (shape, dtype) in self.arrays.items():
                chunks = [c for c in table.column(name).chunks if len(c)]
                starts = np.cumsum([0] + [len(c) for c in chunks])
                views[name] = (starts, [array_column_to_numpy(c, shape, dtype, name=name, copy=False) for c in chunks])
            self._views = views
        return self._views

    def _rows(self, indices: np.ndarray) -> np.ndarray:
        mapping = getattr(self.ds, "_indices", None)
        if mapping is not None:
            indices = mapping.column(0).to_numpy()[indices]
        return indices.astype(np.int64, copy=False)  # the mapping is uint64

    def __getitem__(self, indices: Sequence[int]) -> dict[str, Any]:
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        n = len(self.ds)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise IndexError(f"indices out of range for a dataset of {n} rows")
        idx = idx % n if n else idx
        rows = self._rows(idx)
        out: dict[str, Any] = dict(self.rest[idx.tolist()]) if self.rest is not None else {}
        if self.plain:
            taken = self.ds.data.table.select(self.plain).take(pa.array(rows))
            for name in self.plain:
                out[name] = self._plain_column(taken.column(name))
        for name, (shape, dtype) in self.arrays.items():
            out[name] = self._gather(name, rows, shape, dtype)
        return {c: out[c] for c in self.ds.column_names}

    def __getitems__(self, indices: Sequence[int]) -> dict[str, Any]:
        """Whole-batch fetch for ``DataLoader(batches, batch_sampler=...)``: torch's fetcher
        calls this once per batch (then ``collate_fn`` on the dict), instead of once per row."""
        return self[indices]

    def _plain_column(self, column: pa.ChunkedArray) -> Any:
        """A number or string column as the torch / numpy formatters of ``datasets`` give it."""
        kind = column.type
        if pa.types.is_string(kind) or pa.types.is_large_string(kind):
            values = column.to_pylist()
            return values if self.output == "torch" else np.asarray(values)
        arr = column.to_numpy()
        if self.output == "numpy":
            return arr
        import torch

        if pa.types.is_boolean(kind):
            return torch.from_numpy(arr.astype(bool))
        if pa.types.is_floating(kind):
            return torch.from_numpy(arr.astype(np.float32))
        return torch.from_numpy(arr.astype(np.int64))

    def _gather(self, name: str, rows: np.ndarray, shape: tuple[int, ...], dtype: np.dtype) -> Any:
        starts, views = self._chunk_views()[name]
        full = (len(rows), *shape)
        tensor = None
        if self.output == "torch":
            import torch
            from torch.utils.data import get_worker_info

            tensor = torch.empty(full, dtype=_TORCH_DTYPES[np.dtype(dtype)])
            if get_worker_info() is not None:
                tensor.share_memory_()  # written once, sent to the main process without a copy
            result = tensor.numpy()
        else:
            result = np.empty(full, dtype=dtype)
        chunk = np.searchsorted(starts, rows, side="right") - 1
        local = rows - starts[chunk]
        for pos, (k, j) in enumerate(zip(chunk.tolist(), local.tolist())):
            result[pos] = views[k][j]  # one copy per frame, out of the memory map
        return tensor if tensor is not None else result


def _is_plain(feature: Any) -> bool:
    """A scalar number or string feature (``Value`` or ``ClassLabel``)."""
    if isinstance(feature, datasets.ClassLabel):
        return True
    if isinstance(feature, datasets.Value):
        t = feature.pa_type
        return (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t)
                or pa.types.is_string(t) or pa.types.is_large_string(t))
    return False


def raw_dataloader(ds: datasets.Dataset, batch_size: int = 64, shuffle: bool = True, seed: int | None = None,
                   drop_last: bool = False, output: str = "torch", **dataloader_kwargs: Any):
    """A torch ``DataLoader`` of raw batches, each fetched with one gather (:class:`RawBatches`).

    ``DataLoader(raw_format(ds), batch_size=...)`` makes ``datasets`` gather and format a batch,
    cut it into rows, and the default collate stack them again; here a ``BatchSampler`` hands
    each worker a list of indices and :class:`RawBatches` copies those frames straight from the
    memory-mapped Arrow buffers into the (shared-memory) batch: one copy per frame.

    Args:
        ds: the dataset (any format; array columns come back at their stored dtype).
        batch_size, shuffle, drop_last: as for ``DataLoader``.
        seed: seeds the shuffling (None: torch's global generator).
        output: "torch" (default) or "numpy".
        **dataloader_kwargs: passed on (``num_workers``, ``pin_memory``, ``persistent_workers``, ...).
    Returns:
        a ``DataLoader`` yielding dicts: ``image`` ``(B, H, W)`` uint16, ``mask`` ``(B, H, W)``
        uint8, labels and intensities as tensors, strings as lists.
    """
    import torch
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler

    if shuffle:
        generator = None if seed is None else torch.Generator().manual_seed(int(seed))
        base = RandomSampler(range(len(ds)), generator=generator)
    else:
        base = SequentialSampler(range(len(ds)))
    sampler = BatchSampler(base, batch_size=batch_size, drop_last=drop_last)
    return DataLoader(RawBatches(ds, output=output), batch_size=None, sampler=sampler, **dataloader_kwargs)
