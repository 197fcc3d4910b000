"""Test helpers: the real datasets' folder layouts in miniature, zip packings of them, and a fake
Zenodo REST API on 127.0.0.1. Every file is written here (raw_isp.write_raw, Pillow); nothing
touches the network beyond the loopback server."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import threading
import time
import zipfile
from pathlib import Path
from urllib.parse import unquote

import numpy as np
from PIL import Image

import raw_microscopy
from raw_isp import write_raw
from raw_microscopy.builder import LABEL_FILE, intensity_tag

CLASSES = raw_microscopy.CLASS_NAMES
RATIOS = (1.0, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01)


def write_microscopy(root: Path, num_cells: int = 18, ratios=RATIOS, extra_labels: tuple = (), seed: int = 0,
                     shape=(256, 256)) -> dict[str, dict]:
    """Real layout with ``num_cells`` cells (classes in turn), returns {stem: {"label", "frames"}}."""
    rng = np.random.default_rng(seed)
    cells = {}
    lines = []
    for k in range(num_cells):
        stem = f"Ma190c_lame{k % 3}_zone{k:02d}_composite_Mcropped_{k}"
        code = CLASSES[k % len(CLASSES)]
        frames = {r: rng.integers(0, 65536, shape, dtype=np.uint16) for r in ratios}
        cells[stem] = {"label": CLASSES.index(code), "frames": frames}
        lines.append(f"{stem} {code}")
        for r, frame in frames.items():
            folder = root / "images" / f"raw_scale{intensity_tag(r)}"
            folder.mkdir(parents=True, exist_ok=True)
            write_raw(folder / f"{stem}.tiff", frame)
    lines.extend(extra_labels)
    (root / LABEL_FILE).parent.mkdir(parents=True, exist_ok=True)
    (root / LABEL_FILE).write_text("\n".join(lines) + "\n")
    return cells


def write_drone_frames(root: Path, num_frames: int = 4, shape=(512, 768), ratios=(1.0,), seed: int = 0) -> dict:
    """Full frames with rectangle 'cars' in an RGB PNG mask (white = car, transparent alpha)."""
    rng = np.random.default_rng(seed)
    frames = {}
    for k in range(num_frames):
        stem = f"DJI_{k:04d}"
        mask = np.zeros(shape, np.uint8)
        for _ in range(3):  # cars in some tiles, none in others
            y, x = int(rng.integers(0, shape[0] - 40)), int(rng.integers(0, shape[1] // 2))
            mask[y:y + 30, x:x + 70] = 1
        rgba = np.zeros(shape + (4,), np.uint8)
        rgba[..., :3] = mask[..., None] * 255
        (root / "masks_full").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgba, "RGBA").save(root / "masks_full" / f"{stem}.png")
        raws = {}
        for r in ratios:
            folder = root / "images_full" / f"raw_scale{intensity_tag(r)}"
            folder.mkdir(parents=True, exist_ok=True)
            raws[r] = rng.integers(0, 65536, shape, dtype=np.uint16)
            write_raw(folder / f"{stem}.tif", raws[r])
        frames[stem] = {"mask": mask, "raws": raws}
    return frames


def zip_folder(folder: Path, zip_path: Path, prefix: str = "", extra: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_STORED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, prefix + p.relative_to(folder).as_posix())
        for name, data in (extra or {}).items():
            zf.writestr(zipfile.ZipInfo(name), data)
    return zip_path


def zip_bytes(members: dict[str, bytes], deflate: bool = False) -> bytes:
    """A zip archive in memory holding ``members`` (name -> content)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buffer.getvalue()


def tree_members(folder: Path, prefix: str = "") -> dict[str, bytes]:
    """``{prefix + relative path: bytes}`` of every file below ``folder``."""
    return {prefix + p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def per_folder_zips(folder: Path, names: list[str], prefix: str = "") -> dict[str, bytes]:
    """Members where each of the sub-folders ``names`` of ``folder`` is packed as ``<name>.zip``
    (holding ``<name>/...``), the other files as they are: the Raw2Logit way of shipping folders."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder).as_posix()
        if p.is_file() and not any(rel.startswith(n + "/") for n in names):
            out[prefix + rel] = p.read_bytes()
    for n in names:
        inner = tree_members(folder / n, prefix=Path(n).name + "/")
        out[prefix + n + ".zip"] = zip_bytes(inner)
    return out


def rows_by_key(ds) -> dict[tuple[str, float], dict]:
    out = {}
    for split in ds:
        for row in ds[split]:
            out[(str(row["image_id"]), round(float(row["intensity"]), 4))] = {**row, "split": split}
    return out


def check_against_files(ds, cells: dict[str, dict], ratios) -> None:
    rows = rows_by_key(ds)
    assert set(rows) == {(stem, round(r, 4)) for stem in cells for r in ratios}
    for (stem, r), row in rows.items():
        frame = cells[stem]["frames"][[x for x in ratios if round(x, 4) == r][0]]
        assert row["image"].dtype == np.uint16 and np.array_equal(row["image"], frame)
        assert int(row["label"]) == cells[stem]["label"]
    # One cell, one split.
    split_of = {}
    for (stem, _), row in rows.items():
        assert split_of.setdefault(stem, row["split"]) == row["split"]


def check_drone_tiles(ds, frames: dict, ratio: float = 1.0) -> int:
    """Every row of a Raw-Drone segmentation dataset is its frame's tile (image and mask), one
    frame never in two splits; returns the number of rows."""
    split_of: dict[str, str] = {}
    n = 0
    for split in ds:
        for row in ds[split]:
            stem, rr, cc = str(row["tile_id"]).rsplit("_", 2)
            y, x = int(rr[1:]) * 256, int(cc[1:]) * 256
            assert row["source_image"] == stem and split_of.setdefault(stem, split) == split
            assert np.array_equal(row["image"], frames[stem]["raws"][ratio][y:y + 256, x:x + 256])
            assert np.array_equal(row["mask"], frames[stem]["mask"][y:y + 256, x:x + 256])
            n += 1
    return n


# ----------------------------------------------------------------------------- a fake Zenodo


class LoopbackServer:
    """The tests' one HTTP server: threaded, on 127.0.0.1 at a free port, answering with
    ``handler`` (a ``BaseHTTPRequestHandler`` class or factory); :meth:`close` stops it."""

    def __init__(self, handler) -> None:
        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.timeout = 5
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


class QuietFileHandler(http.server.SimpleHTTPRequestHandler):
    """Serves a folder's files (``functools.partial(QuietFileHandler, directory=...)``) without
    logging each request."""

    def log_message(self, *args) -> None:
        pass


class FakeZenodo:
    """The Zenodo REST API on 127.0.0.1: ``GET {api}/records/<id>`` lists the files of a record
    (key, size, ``md5:`` checksum, ``links.self``), ``GET {api}/records/<id>/files/<key>/content``
    serves them. Per file, ``faults`` can make the listing lie (``md5``, ``size``, ``link``) or the
    transfer fail (``status``: an HTTP error; ``stall``: seconds to hang after half the body;
    ``body``: other bytes than listed; ``length``: another Content-Length header, None for none;
    ``endless``: the body repeated until the client hangs up, counted in ``sent``; ``redirect``:
    a 302 back to the same URL). The fault of key ``""`` applies to the record's listing.
    ``down = True`` answers every request with HTTP 503."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, bytes]] = {}
        self.faults: dict[tuple[str, str], dict] = {}
        self.down = False
        self.requests: list[str] = []
        self.sent: dict[str, int] = {}  # bytes of an endless body written, per path
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_HEAD(self) -> None:
                owner._answer(self, head=True)

            def do_GET(self) -> None:
                owner._answer(self, head=False)

        self.server = LoopbackServer(Handler)

    @property
    def api(self) -> str:
        return f"{self.server.url}/api"

    def close(self) -> None:
        self.server.close()

    def publish(self, record: str, files: dict[str, bytes], faults: dict[str, dict] | None = None) -> str:
        """Serve ``files`` (key -> bytes) as record ``record``, with ``faults`` per key."""
        self.records[record] = dict(files)
        for key, fault in (faults or {}).items():
            self.faults[(record, key)] = fault
        return record

    def listing(self, record: str) -> dict:
        files = []
        for key, data in self.records[record].items():
            fault = self.faults.get((record, key), {})
            files.append({
                "id": hashlib.md5(key.encode()).hexdigest(), "key": key,
                "size": fault.get("size", len(data)),
                "checksum": "md5:" + fault.get("md5", hashlib.md5(data).hexdigest()),
                "links": {"self": fault.get("link", f"{self.api}/records/{record}/files/{key}/content")}})
        return {"id": int(record), "metadata": {"title": f"fake record {record}", "version": "1"}, "files": files}

    def _answer(self, h: http.server.BaseHTTPRequestHandler, head: bool) -> None:
        path = unquote(h.path.split("?")[0])
        self.requests.append(f"{h.command} {path}")
        parts = path.strip("/").split("/")
        body, fault = None, {}
        if not self.down and parts[:2] == ["api", "records"] and len(parts) >= 3 and parts[2] in self.records:
            record = parts[2]
            if len(parts) == 3:
                body = json.dumps(self.listing(record)).encode()
                fault = self.faults.get((record, ""), {})
            elif len(parts) == 6 and parts[3] == "files" and parts[5] == "content":
                key = parts[4]
                if key in self.records[record]:
                    fault = self.faults.get((record, key), {})
                    body = fault.get("body", self.records[record][key])
        status = 503 if self.down else fault.get("status", 200 if body is not None else 404)
        if status != 200:
            h.send_response(status)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        if "redirect" in fault:
            h.send_response(302)
            h.send_header("Location", h.path)
            h.send_header("Content-Length", "0")
            h.end_headers()
            return
        h.send_response(200)
        length = fault.get("length", len(body))
        if length is not None:
            h.send_header("Content-Length", str(length))
        h.end_headers()
        if head:
            return
        if fault.get("endless"):
            self.sent[path] = 0
            try:
                while True:
                    h.wfile.write(body)
                    self.sent[path] += len(body)
            except (BrokenPipeError, ConnectionResetError):
                return
        if "stall" in fault:
            h.wfile.write(body[: len(body) // 2])
            h.wfile.flush()
            time.sleep(fault["stall"])
            return
        h.wfile.write(body)


def cache_files(cache: Path) -> dict[str, tuple[int, int]]:
    """``{relative path: (size, mtime)}`` of the files in a cache folder (lock files aside)."""
    return {str(p.relative_to(cache)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in cache.rglob("*") if p.is_file() and not p.name.endswith(".lock")}


def half_written(cache: Path) -> list[str]:
    """Files and folders in a cache that a failed load must not leave behind."""
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*")
                  if p.name.endswith((".incomplete", ".tmp")) or ".extract-" in p.name or ".tmp-" in p.name)
