"""Raw file I/O: read and write uint16 Bayer mosaics as 16-bit TIFF or DNG.

A raw frame is a numpy uint16 array of shape ``(H, W)`` with even ``H`` and ``W`` (one sample
per pixel, the colour given by the CFA pattern). Reading refuses anything else with a
:class:`RawFileError` whose message starts with the file path; writing is atomic (a temporary
file in the same folder, then ``os.replace``), so no half-written file is ever left behind.

Size limits. A compressed TIFF of a few hundred bytes can declare 200000 x 200000 pixels;
decoding it would allocate tens of GiB. :func:`read_raw` checks the declared height, width and
pixel count against :data:`DEFAULT_MAX_SIDE` and :data:`DEFAULT_MAX_PIXELS` (or the
``max_side`` / ``max_pixels`` arguments, or ``$RAW_ISP_MAX_PIXELS``) before decoding anything
(:func:`check_frame_size`, also usable on frames from other sources, such as uploads).

Exposure metadata. A frame's intensity ratio (its exposure relative to the full one: 1.0, 0.5,
..., 0.01, the datasets' ``intensity`` column) travels in the file: ``write_raw(path, raw,
intensity=0.05)`` (and :func:`write_dng`) store it in the TIFF ImageDescription tag (270) as
JSON, ``{"raw_isp": {"intensity": 0.05}}`` (a DNG also gets BaselineExposure, tag 50730,
``-log2(intensity)`` EV, so other raw tools show the frame brightened to the reference).
:func:`read_raw` returns a :class:`RawFrame`, a numpy uint16 array whose ``intensity`` attribute
holds that ratio (None when the file does not say; a foreign file's BaselineExposure is a camera
calibration, never read as an intensity). The image processor and the pipelines read it.
"""

from __future__ import annotations

import json
import math
import numbers
import os
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy as np
import tifffile
import torch

from .atomic import atomic_write

__all__ = [
    "RawFileError",
    "RawFrame",
    "INTENSITY_KEY",
    "DEFAULT_MAX_PIXELS",
    "DEFAULT_MAX_SIDE",
    "MAX_PIXELS_ENV",
    "check_frame_size",
    "check_intensity",
    "read_raw",
    "read_raw_with_pattern",
    "write_raw",
    "write_dng",
    "normalize_raw",
    "raw_to_unit",
]

# TIFF / DNG tag codes and values used here.
_PHOTOMETRIC_CFA = 32803
_PHOTOMETRIC_LINEAR_RAW = 34892
_TAG_CFA_REPEAT_PATTERN_DIM = 33421
_TAG_CFA_PATTERN = 33422
_TAG_DNG_VERSION = 50706
_TAG_DNG_BACKWARD_VERSION = 50707
_TAG_UNIQUE_CAMERA_MODEL = 50708
_TAG_CFA_PLANE_COLOR = 50710
_TAG_CFA_LAYOUT = 50711
_TAG_IMAGE_DESCRIPTION = 270
_TAG_BASELINE_EXPOSURE = 50730

#: Top-level key of the JSON that :func:`write_raw` / :func:`write_dng` store in the
#: ImageDescription tag: ``{"raw_isp": {"intensity": <ratio>}}``.
INTENSITY_KEY = "raw_isp"

# CFA colour codes (0 = red, 1 = green, 2 = blue) of each 2x2 pattern, row-major. The pattern
# names are the same as raw_isp.isp.cfa.PATTERNS.
_CFA_CODES: dict[str, tuple[int, int, int, int]] = {
    "RGGB": (0, 1, 1, 2),
    "BGGR": (2, 1, 1, 0),
    "GRBG": (1, 0, 2, 1),
    "GBRG": (1, 2, 0, 1),
}
_PATTERN_OF_CODES = {codes: name for name, codes in _CFA_CODES.items()}

#: Largest frame :func:`read_raw` decodes by default: 100 megapixels (200 MB as uint16), five
#: times a real Raw-Drone frame (3648 x 5472 = 19,961,856 pixels).
DEFAULT_MAX_PIXELS = 100_000_000
#: Longest side :func:`read_raw` accepts by default, in pixels.
DEFAULT_MAX_SIDE = 65_536
#: Environment variable that overrides :data:`DEFAULT_MAX_PIXELS` (an integer pixel count).
MAX_PIXELS_ENV = "RAW_ISP_MAX_PIXELS"

_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_OTHER_FORMATS = (
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"BM", "a BMP image"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"PK\x03\x04", "a ZIP archive (or .npz)"),
    (b"FUJIFILMCCD-RAW", "a Fujifilm RAF raw file (try rawpy)"),
    (b"IIU\x00", "a Panasonic RW2 raw file (try rawpy)"),
    (b"IIRO", "an Olympus ORF raw file (try rawpy)"),
)


class RawFileError(ValueError):
    """A raw file that cannot be read as a uint16 Bayer mosaic. The message starts with the path."""

    def __init__(self, path: str | os.PathLike[str], problem: str) -> None:
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class RawFrame(np.ndarray):
    """A raw frame read from a file: a numpy uint16 ``(H, W)`` array with its exposure metadata.

    ``intensity``: the frame's intensity ratio as stored by ``write_raw(..., intensity=)``
    (a positive float), or None when the file does not say. Views and slices keep it (a crop has
    the exposure of its frame); arithmetic results and reductions are plain numpy arrays and
    scalars, and ``np.asarray(frame)`` drops it. Everything that takes a numpy array takes it.
    """

    intensity: float | None

    def __array_finalize__(self, obj: Any) -> None:
        self.intensity = getattr(obj, "intensity", None)

    def __array_wrap__(self, array: Any, context: Any = None, return_scalar: bool = False) -> Any:
        out = np.asarray(array).view(np.ndarray)
        return out[()] if return_scalar else out

    def __reduce__(self) -> Any:
        constructor, args, state = super().__reduce__()
        return constructor, args, (state, self.intensity)

    def __setstate__(self, state: Any) -> None:
        base, self.intensity = state
        super().__setstate__(base)


def _as_frame(arr: np.ndarray, intensity: float | None) -> RawFrame:
    """``arr`` (not copied) as a :class:`RawFrame` with ``intensity``."""
    frame = arr.view(RawFrame)
    frame.intensity = intensity
    return frame


def check_intensity(value: Any, name: str = "intensity") -> float:
    """A positive finite intensity ratio as a Python float; ValueError/TypeError naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a positive number (an intensity ratio such as 1.0 or 0.05), got {value!r}")
    ratio = float(value)
    if not (math.isfinite(ratio) and ratio > 0):
        raise ValueError(f"{name} must be a positive finite intensity ratio (e.g. 1.0 or 0.05), got {value!r}")
    return ratio


def _limit(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def _default_max_pixels() -> int:
    text = os.environ.get(MAX_PIXELS_ENV)
    if text is None or not text.strip():
        return DEFAULT_MAX_PIXELS
    try:
        return _limit(f"${MAX_PIXELS_ENV}", int(text.replace("_", "")))
    except ValueError:
        raise ValueError(f"${MAX_PIXELS_ENV} must be a positive integer pixel count, got {text!r}") from None


def check_frame_size(height: int, width: int, path: str | os.PathLike[str] = "<frame>",
                     max_pixels: int | None = None, max_side: int | None = None) -> None:
    """Refuse a frame whose declared size is implausibly large, before it is decoded.

    Args:
        height, width: the declared size in pixels.
        path: the file (or a description of the source) named in the error.
        max_pixels: largest ``height * width`` (default: ``$RAW_ISP_MAX_PIXELS`` or
            :data:`DEFAULT_MAX_PIXELS`).
        max_side: largest height or width (default :data:`DEFAULT_MAX_SIDE`).
    Raises:
        RawFileError: a side or the pixel count is over its limit; the message gives the size,
            the limit and the memory the frame would take as uint16.
        ValueError: a limit that is not a positive integer.
    """
    max_pixels = _default_max_pixels() if max_pixels is None else _limit("max_pixels", max_pixels)
    max_side = DEFAULT_MAX_SIDE if max_side is None else _limit("max_side", max_side)
    h, w = int(height), int(width)
    gib = h * w * 2 / 2**30
    if h * w > max_pixels:
        raise RawFileError(path, f"declares a size of {h}x{w} (HxW) = {h * w:,} pixels, more than the limit of "
                                 f"{max_pixels:,} (max_pixels= or ${MAX_PIXELS_ENV}); refusing to decode it "
                                 f"({gib:.1f} GiB as uint16)")
    if max(h, w) > max_side:
        raise RawFileError(path, f"declares a size of {h}x{w} (HxW), a side longer than the limit of {max_side} "
                                 f"pixels (max_side=); refusing to decode it ({gib:.1f} GiB as uint16)")


def _check_path(path: Any) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    return Path(path)


# ---------------------------------------------------------------------------------- reading


def _describe_non_tiff(head: bytes) -> str:
    for magic, what in _OTHER_FORMATS:
        if head.startswith(magic):
            return what
    if head[4:12] in (b"ftypcrx ", b"ftypheic") or head[4:8] == b"ftyp":
        return "an ISO media file (for example a Canon CR3 raw or a HEIC image; try rawpy for raws)"
    if head and all(32 <= b < 127 or b in (9, 10, 13) for b in head):
        return "a text file"
    return f"unrecognised header {head[:8]!r}"


def _check_header(path: Path) -> None:
    try:
        if not path.exists():
            raise RawFileError(path, "no such file")
        if path.is_dir():
            raise RawFileError(path, "is a directory, not a raw file")
        size = path.stat().st_size
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as e:
        raise RawFileError(path, f"cannot open ({e.strerror or e})") from e
    if size == 0:
        raise RawFileError(path, "file is empty (0 bytes)")
    if not any(head.startswith(m) for m in _TIFF_MAGICS):
        if any(m.startswith(head) for m in _TIFF_MAGICS):
            raise RawFileError(path, f"truncated file: only {size} bytes, too short for a TIFF header")
        raise RawFileError(
            path, f"not a TIFF or DNG file ({_describe_non_tiff(head)}); expected a 16-bit TIFF or a DNG"
        )
    if size < 8:
        raise RawFileError(path, f"truncated file: only {size} bytes, too short for a TIFF header")


def _walk_pages(pages: Any, depth: int = 0) -> list[Any]:
    """All pages of an IFD chain and, recursively, of their SubIFDs (in file order)."""
    out = []
    for page in pages:
        out.append(page)
        if depth < 2 and getattr(page, "subifds", None):
            out.extend(_walk_pages(page.pages, depth + 1))
    return out


def _is_reduced(page: Any) -> bool:
    # NewSubFileType bit 0: a reduced-resolution copy (thumbnail / preview).
    return bool(int(page.subfiletype or 0) & 1)


def _pattern_of(page: Any) -> str | None:
    dims = page.tags.get(_TAG_CFA_REPEAT_PATTERN_DIM)
    codes = page.tags.get(_TAG_CFA_PATTERN)
    if codes is None:
        return None
    if dims is not None and tuple(dims.value) != (2, 2):
        return None
    value = codes.value
    codes_tuple = tuple(value) if isinstance(value, (bytes, tuple, list)) else (value,)
    plane = page.tags.get(_TAG_CFA_PLANE_COLOR)
    if plane is not None:
        # CFAPlaneColor maps plane indices to colours (0 = R, 1 = G, 2 = B).
        colours = tuple(plane.value) if isinstance(plane.value, (bytes, tuple, list)) else ()
        if len(colours) < 3 or any(c >= len(colours) for c in codes_tuple):
            return None
        codes_tuple = tuple(colours[c] for c in codes_tuple)
    return _PATTERN_OF_CODES.get(tuple(int(c) for c in codes_tuple))


def _intensity_of(path: Path, pages: list[Any]) -> float | None:
    """The intensity ratio that :func:`write_raw` stored in the first page's ImageDescription."""
    tag = pages[0].tags.get(_TAG_IMAGE_DESCRIPTION) if pages else None
    text = tag.value if tag is not None else None
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str) or INTENSITY_KEY not in text:
        return None
    try:
        meta = json.loads(text)
    except ValueError:
        return None  # someone else's description that happens to contain the word
    if not isinstance(meta, dict) or not isinstance(meta.get(INTENSITY_KEY), dict):
        return None
    value = meta[INTENSITY_KEY].get("intensity")
    if value is None:
        return None
    try:
        return check_intensity(value)
    except (TypeError, ValueError):
        raise RawFileError(
            path, f"its ImageDescription declares intensity {value!r}, but an intensity ratio must be a positive "
                  "finite number; rewrite it with raw_isp.write_raw(path, raw, intensity=<ratio>)"
        ) from None


def _select_page(path: Path, tif: tifffile.TiffFile) -> tuple[Any, bool]:
    """The page holding the raw mosaic, and whether the file is a DNG."""
    main = list(tif.pages)
    if not main:
        raise RawFileError(path, "truncated or corrupt TIFF: it contains no readable image directory")
    is_dng = main[0].tags.get(_TAG_DNG_VERSION) is not None
    if is_dng:
        # A DNG keeps previews beside the raw; the raw is the full-resolution CFA page.
        every = _walk_pages(main)
        cfa = [p for p in every if p.photometric == _PHOTOMETRIC_CFA]
        if cfa:
            full = [p for p in cfa if not _is_reduced(p)]
            return (full or cfa)[0], is_dng
        if any(p.photometric == _PHOTOMETRIC_LINEAR_RAW for p in every):
            raise RawFileError(
                path,
                "DNG holds no CFA (Bayer mosaic) image: its raw data is LinearRaw (already "
                "demosaiced); expected a single-channel Bayer mosaic",
            )
        raise RawFileError(path, "DNG holds no CFA (Bayer mosaic) image (no page with photometric 32803)")
    # A plain TIFF: one full-resolution page (thumbnails aside), or it is a stack.
    full = [p for p in main if not _is_reduced(p)] or main
    if len(full) > 1:
        p = full[0]
        raise RawFileError(
            path,
            f"holds a stack of {len(full)} images (shape ({len(full)}, {p.imagelength}, "
            f"{p.imagewidth})): more than 2 dims; expected a single 2-D Bayer mosaic",
        )
    return full[0], is_dng


def _check_page(path: Path, page: Any, size: int, max_pixels: int | None = None,
                max_side: int | None = None) -> None:
    h, w = int(page.imagelength), int(page.imagewidth)
    depth = int(getattr(page, "imagedepth", 1) or 1)
    spp = int(page.samplesperpixel)
    if depth > 1:
        raise RawFileError(
            path,
            f"holds a volume of shape ({depth}, {h}, {w}): more than 2 dims; "
            "expected a 2-D Bayer mosaic",
        )
    if spp != 1:
        raise RawFileError(
            path,
            f"has {spp} samples per pixel (shape {tuple(page.shape)}): an RGB or multi-channel "
            "image, but a raw Bayer mosaic has one sample per pixel (shape (H, W))",
        )
    dtype = np.dtype(page.dtype) if page.dtype is not None else None
    if dtype is None or dtype.kind != "u" or dtype.itemsize != 2:
        found = f"{dtype.name} ({page.bitspersample}-bit)" if dtype is not None else (
            f"{page.bitspersample}-bit sample format {page.sampleformat}"
        )
        raise RawFileError(path, f"pixel type {found} found, expected uint16")
    if h == 0 or w == 0:
        raise RawFileError(path, f"image is empty (size {h}x{w})")
    check_frame_size(h, w, path, max_pixels=max_pixels, max_side=max_side)
    if h % 2 or w % 2:
        raise RawFileError(path, f"size {h}x{w} (HxW) is odd: a Bayer mosaic needs even height and width")
    for offset, count in zip(page.dataoffsets, page.databytecounts):
        if offset + count > size:
            raise RawFileError(
                path,
                f"truncated file: image data runs to byte {offset + count} but the file has {size} bytes",
            )
    if int(page.compression) == 1 and sum(page.databytecounts) < h * w * page.bitspersample // 8:
        raise RawFileError(
            path, f"truncated or corrupt image data: {sum(page.databytecounts)} bytes for a {h}x{w} image"
        )


def _read_with_rawpy(path: Path) -> tuple[np.ndarray, str | None] | None:
    """Decode a DNG with rawpy if it happens to be installed (optional; never a dependency)."""
    try:
        import rawpy  # type: ignore[import-not-found]
    except ImportError:
        return None
    with rawpy.imread(os.fspath(path)) as r:
        arr = np.array(r.raw_image, copy=True)
        pattern = None
        raw_pattern = getattr(r, "raw_pattern", None)
        desc = getattr(r, "color_desc", b"")
        if raw_pattern is not None and np.shape(raw_pattern) == (2, 2) and desc:
            letters = "".join(chr(desc[int(i)]) for i in np.asarray(raw_pattern).ravel())
            pattern = letters if letters in _CFA_CODES else None
    return arr, pattern


def _check_array_read(path: Path, arr: np.ndarray) -> np.ndarray:
    if arr.ndim != 2:
        raise RawFileError(path, f"decoded image has shape {arr.shape}; expected a 2-D Bayer mosaic (H, W)")
    if arr.dtype.kind != "u" or arr.dtype.itemsize != 2:
        raise RawFileError(path, f"pixel type {arr.dtype} found, expected uint16")
    if arr.size == 0:
        raise RawFileError(path, f"image is empty (shape {arr.shape})")
    if arr.shape[0] % 2 or arr.shape[1] % 2:
        h, w = arr.shape
        raise RawFileError(path, f"size {h}x{w} (HxW) is odd: a Bayer mosaic needs even height and width")
    return np.ascontiguousarray(arr, dtype=np.uint16)


def read_raw_with_pattern(path: str | os.PathLike[str], *, max_pixels: int | None = None,
                          max_side: int | None = None) -> tuple[np.ndarray, str | None]:
    """Read a raw Bayer mosaic and, for a DNG (or CFA TIFF), its CFA pattern.

    Args:
        path: a 16-bit TIFF or a DNG. In a DNG the raw image is the CFA page
            (PhotometricInterpretation 32803, NewSubFileType 0), in the main IFD or a SubIFD.
        max_pixels, max_side: size limits checked before decoding (see :func:`check_frame_size`).
    Returns:
        ``(raw, pattern)``: raw is a :class:`RawFrame` (numpy uint16 ``(H, W)`` with even H and W,
        the stored DN as they are: no black-level subtraction, no crop to the DNG active area;
        ``raw.intensity`` the stored intensity ratio or None); pattern is one
        of "RGGB", "BGGR", "GRBG", "GBRG", or None when the file does not say (plain TIFF) or
        the CFA is not a 2x2 Bayer pattern.
    Raises:
        RawFileError: the file is missing, not a TIFF/DNG, truncated, not uint16, not a single
            2-D even-sized mosaic, empty, larger than the limits, or compressed with a codec that
            is not installed.
    """
    p = _check_path(path)
    _check_header(p)
    size = p.stat().st_size
    try:
        with tifffile.TiffFile(p) as tif:
            page, is_dng = _select_page(p, tif)
            _check_page(p, page, size, max_pixels=max_pixels, max_side=max_side)
            pattern = _pattern_of(page)
            intensity = _intensity_of(p, list(tif.pages))
            compression = page.compression
            try:
                arr = page.asarray()
            except (ValueError, KeyError, RuntimeError) as e:
                if "imagecodecs" not in str(e):
                    raise
                if is_dng:
                    fallback = _read_with_rawpy(p)
                    if fallback is not None:
                        arr, pattern = fallback[0], fallback[1] or pattern
                        return _as_frame(_check_array_read(p, arr), intensity), pattern
                name = getattr(compression, "name", str(compression))
                raise RawFileError(
                    p,
                    f"the raw image is compressed with {name} (TIFF compression "
                    f"{int(compression)}), which needs the optional 'imagecodecs' package to "
                    "decode: pip install imagecodecs (or install rawpy)",
                ) from e
    except RawFileError:
        raise
    except Exception as e:  # tifffile signals corrupt structure with many exception types
        raise RawFileError(
            p, f"cannot read as TIFF/DNG, the file is truncated or corrupt ({type(e).__name__}: {e})"
        ) from e
    return _as_frame(_check_array_read(p, arr), intensity), pattern


def read_raw(path: str | os.PathLike[str], *, max_pixels: int | None = None,
             max_side: int | None = None) -> np.ndarray:
    """Read a raw Bayer mosaic from a 16-bit TIFF or a DNG.

    Args:
        path: the file.
        max_pixels: largest height x width decoded (default ``$RAW_ISP_MAX_PIXELS`` or
            :data:`DEFAULT_MAX_PIXELS`, 100 megapixels); checked before decoding.
        max_side: largest height or width (default :data:`DEFAULT_MAX_SIDE`).
    Returns:
        numpy uint16 array ``(H, W)``, H and W even, stored DN as they are: a :class:`RawFrame`,
        whose ``intensity`` is the ratio written by ``write_raw(..., intensity=)`` (None when the
        file does not say).
    Raises:
        RawFileError: see :func:`read_raw_with_pattern` (also: a stored intensity that is not a
            positive number).
    """
    return read_raw_with_pattern(path, max_pixels=max_pixels, max_side=max_side)[0]


# ---------------------------------------------------------------------------------- writing


def _check_array_write(array: Any) -> np.ndarray:
    if isinstance(array, torch.Tensor):
        array = array.detach().cpu().numpy()
    if not isinstance(array, np.ndarray):
        raise ValueError(f"array must be a numpy array or torch tensor, got {type(array).__name__}")
    if array.dtype != np.uint16:
        raise ValueError(f"array must have dtype uint16 (raw DN), got {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"array must be a 2-D Bayer mosaic (H, W), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"array is empty (shape {array.shape})")
    h, w = array.shape
    if h % 2 or w % 2:
        raise ValueError(f"array size {h}x{w} (HxW) is odd: a Bayer mosaic needs even height and width")
    return np.ascontiguousarray(array)


def _atomic_write(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """:func:`raw_isp.atomic.atomic_write` with this module's errors for a bad destination."""
    if not path.parent.is_dir():
        raise RawFileError(path, f"folder {os.fspath(path.parent)!s} does not exist")
    if path.is_dir():
        raise RawFileError(path, "is a directory")
    atomic_write(path, write)


def _intensity_to_write(array: Any, intensity: Any) -> float | None:
    """The explicit ``intensity``, else the one a :class:`RawFrame` carries, else None."""
    if intensity is None:
        intensity = getattr(array, "intensity", None) if isinstance(array, RawFrame) else None
    return None if intensity is None else check_intensity(intensity)


def _description(intensity: float | None) -> str | None:
    return None if intensity is None else json.dumps({INTENSITY_KEY: {"intensity": intensity}})


def write_raw(path: str | os.PathLike[str], array: Any, intensity: float | None = None) -> None:
    """Write a raw Bayer mosaic as a single-page uncompressed 16-bit TIFF, atomically.

    Args:
        path: destination; its folder must exist. An existing file is replaced.
        array: uint16 ``(H, W)`` with even H and W (numpy, or a torch tensor).
        intensity: the frame's intensity ratio (exposure relative to the full one, e.g. 0.05),
            stored in the ImageDescription tag as ``{"raw_isp": {"intensity": ...}}`` and read
            back by :func:`read_raw` (``frame.intensity``), the image processor and the
            pipelines. Default: the ``intensity`` of a :class:`RawFrame` passed as ``array``,
            else nothing is stored.
    Raises:
        ValueError: ``array`` is not a non-empty even-sized 2-D uint16 array, or ``intensity``
            is not a positive finite number.
        RawFileError: the destination folder does not exist or the path is a directory.
    """
    p = _check_path(path)
    arr = _check_array_write(array)
    description = _description(_intensity_to_write(array, intensity))
    _atomic_write(
        p,
        lambda fh: tifffile.imwrite(fh, arr, photometric="minisblack", compression=None, metadata=None,
                                    description=description),
    )


def write_dng(path: str | os.PathLike[str], array: Any, pattern: str = "RGGB", intensity: float | None = None) -> None:
    """Write a raw Bayer mosaic as a minimal DNG (a TIFF with a CFA image), atomically.

    The file has one uncompressed IFD with PhotometricInterpretation CFA (32803),
    CFARepeatPatternDim (2, 2), CFAPattern for ``pattern``, CFAPlaneColor (R, G, B),
    DNGVersion 1.4.0.0 and uint16 samples. It holds no colour calibration, so it is meant for
    tests and for handing mosaics between tools, not as a camera-faithful DNG.

    Args:
        path: destination; its folder must exist. An existing file is replaced.
        array: uint16 ``(H, W)`` with even H and W.
        pattern: one of "RGGB", "BGGR", "GRBG", "GBRG".
        intensity: the frame's intensity ratio, stored as for :func:`write_raw`, and also as
            BaselineExposure ``-log2(intensity)`` EV (rounded to 1/1e6 EV; read back from the
            ImageDescription, exactly).
    Raises:
        ValueError: bad ``array``, ``pattern`` or ``intensity``.
        RawFileError: the destination folder does not exist or the path is a directory.
    """
    p = _check_path(path)
    arr = _check_array_write(array)
    if pattern not in _CFA_CODES:
        raise ValueError(f"pattern must be one of {', '.join(_CFA_CODES)}, got {pattern!r}")
    extratags = [
        (_TAG_CFA_REPEAT_PATTERN_DIM, "H", 2, (2, 2), True),
        (_TAG_CFA_PATTERN, "B", 4, bytes(_CFA_CODES[pattern]), True),
        (_TAG_DNG_VERSION, "B", 4, (1, 4, 0, 0), True),
        (_TAG_DNG_BACKWARD_VERSION, "B", 4, (1, 1, 0, 0), True),
        (_TAG_UNIQUE_CAMERA_MODEL, "s", 0, "raw_isp synthetic", True),
        (_TAG_CFA_PLANE_COLOR, "B", 3, (0, 1, 2), True),
        (_TAG_CFA_LAYOUT, "H", 1, 1, True),
    ]
    ratio = _intensity_to_write(array, intensity)
    if ratio is not None:
        ev = round(-math.log2(ratio) * 1_000_000)
        extratags.append((_TAG_BASELINE_EXPOSURE, 10, 1, (ev, 1_000_000), True))  # SRATIONAL
    description = _description(ratio)
    _atomic_write(
        p,
        lambda fh: tifffile.imwrite(
            fh,
            arr,
            photometric=_PHOTOMETRIC_CFA,
            subfiletype=0,
            compression=None,
            metadata=None,
            description=description,
            extratags=extratags,
        ),
    )


# ---------------------------------------------------------------------------------- units


def raw_to_unit(raw: Any, white_level: float | Any = 65535.0) -> Any:
    """Raw DN -> normalised units, ``raw / white_level`` as float32: the one raw -> [0, 1] conversion.

    Every path that develops raw frames (the ISPs, the model, the image processor, drift
    synthesis, the explorer) calls this, so the same frame gives the same floats everywhere.

    Args:
        raw: numpy array or torch tensor, any shape. Integer DN: uint16 frames, or their int16
            bit view (what the training loaders send, since accelerators have few uint16
            kernels; it is read back as uint16), or any other integer type. Floating-point
            input is taken as normalised already and returned as float32, unscaled.
        white_level: the DN that maps to 1 (65535 for 16-bit frames); a number, or a torch
            tensor broadcastable to ``raw`` (one value per image).
    Returns:
        float32 of the same shape and kind (torch: same device). The division is a true
        division by a float32 value (a tensor on the input's device, never a host scalar, which
        some kernels turn into a multiplication by the reciprocal), so numpy and torch, CPU and
        GPU give identical values.
    Raises:
        TypeError: ``raw`` holds booleans, complex numbers or objects.
    """
    if isinstance(raw, torch.Tensor):
        if raw.dtype == torch.bool or raw.is_complex():
            raise TypeError(f"raw must hold integer DN or normalised floats, got dtype {raw.dtype}")
        if raw.is_floating_point():
            return raw.to(torch.float32)
        if raw.dtype in (torch.int16, torch.uint16):
            raw = raw.view(torch.int16).to(torch.int32).bitwise_and_(0xFFFF)
        scale = torch.as_tensor(white_level, dtype=torch.float32, device=raw.device)
        return raw.to(torch.float32) / scale
    arr = np.asarray(raw)
    if arr.dtype == np.bool_ or not (np.issubdtype(arr.dtype, np.integer) or np.issubdtype(arr.dtype, np.floating)):
        raise TypeError(f"raw must hold integer DN or normalised floats, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.floating):
        return arr.astype(np.float32, copy=False)
    if arr.dtype == np.int16:
        arr = arr.view(np.uint16)
    return (arr.astype(np.float32) / np.float32(white_level)).astype(np.float32, copy=False)


def normalize_raw(raw: Any) -> Any:
    """Integer raw DN -> float32 in [0, 1] (:func:`raw_to_unit` with the 16-bit white level).

    Args:
        raw: integer DN (uint16 frames), any shape, numpy array or torch tensor.
    Returns:
        float32 of the same shape and kind (torch: same device), uint16 frames land in [0, 1].
    Raises:
        TypeError: ``raw`` is not integer (a float input is probably already normalised).
    """
    integer = (
        not (raw.is_floating_point() or raw.is_complex() or raw.dtype == torch.bool)
        if isinstance(raw, torch.Tensor)
        else np.issubdtype(np.asarray(raw).dtype, np.integer)
    )
    if not integer:
        dtype = raw.dtype if isinstance(raw, torch.Tensor) else np.asarray(raw).dtype
        raise TypeError(f"raw must hold integer DN (raw frames are uint16 DN), got dtype {dtype}")
    return raw_to_unit(raw)
