"""Bit-identity of RawISPImageProcessor between two source trees (a refactoring check).

The processor develops a fixed set of cases: synthetic Raw-Microscopy frames (64 x 64 crops of
the simulator's frames at full and 5 % light), all 12 ISP variants, the exposure settings
(none, ``"metadata"`` with a frame's stored ratio, ``intensity=`` per image, ``"auto"``), the
input kinds (a uint16 batch, a list, raw TIFF paths, a ``RawFrame``, floats in [0, 1]), the resize
modes, ``return_tensors`` "pt" / "np" / None, channels-last output, segmentation maps,
``to_pixel_values``, the ``to_dict`` JSON and the bytes of every file ``save_pretrained`` writes.
Each case's output bytes (array dtype, shape and data) are hashed with SHA-256.

    python benchmarks/processor_identity.py                          # hashes of this tree
    python benchmarks/processor_identity.py --against /tmp/proc_base # this tree and another, compared

With ``--against`` the script runs itself a second time with ``PYTHONPATH`` set to the other
tree (so ``import raw_isp`` there resolves to that tree's package), then prints one line per case
and the number of identical cases; the exit status is 1 if any case differs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def _digest(value) -> str:
    import torch

    h = hashlib.sha256()

    def feed(v) -> None:
        if isinstance(v, torch.Tensor):
            v = v.detach().cpu().numpy()
        if isinstance(v, np.ndarray):
            h.update(f"{v.dtype}{v.shape}".encode())
            h.update(np.ascontiguousarray(v).tobytes())
        elif isinstance(v, (list, tuple)):
            h.update(b"[")
            for item in v:
                feed(item)
            h.update(b"]")
        elif isinstance(v, dict) or hasattr(v, "keys"):
            for key in sorted(v.keys()):
                h.update(str(key).encode())
                feed(v[key])
        elif isinstance(v, bytes):
            h.update(v)
        else:
            h.update(repr(v).encode())

    feed(value)
    return h.hexdigest()


def cases() -> dict[str, str]:
    """Case name -> SHA-256 of the processor's output, for the ``raw_isp`` that imports here."""
    import warnings

    import torch

    import raw_isp
    from raw_microscopy import MicroscopySimulator

    sim = MicroscopySimulator()
    full = np.stack([sim.raw(i)[64:128, 64:128] for i in range(3)])
    dim = np.stack([sim.raw(i, intensity=0.05)[64:128, 64:128] for i in range(3)])
    out: dict[str, str] = {}
    warnings.simplefilter("ignore")

    for variant in raw_isp.ISP_VARIANTS:
        proc = raw_isp.RawISPImageProcessor(isp=variant, camera="microscopy", size=48)
        out[f"variant/{variant}"] = _digest(proc(full)["pixel_values"])
    proc = raw_isp.RawISPImageProcessor(isp="ma_s_ga", camera="microscopy", exposure="metadata", size=32)
    for ratio in (1.0, 0.05, 0.01):
        out[f"metadata/intensity={ratio}"] = _digest(proc(dim, intensity=ratio)["pixel_values"])
    out["metadata/per-image"] = _digest(proc(dim, intensity=[0.05, 0.1, 1.0])["pixel_values"])
    out["metadata/default"] = _digest(proc(list(full))["pixel_values"])
    out["auto"] = _digest(raw_isp.RawISPImageProcessor(isp="bi_s_me", exposure="auto", size=32)(dim)["pixel_values"])
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for i, frame in enumerate(dim):
            paths.append(os.path.join(tmp, f"f{i}.tiff"))
            raw_isp.write_raw(paths[-1], frame, intensity=0.05)
        out["paths/metadata"] = _digest(proc(paths)["pixel_values"])
        out["rawframe/metadata"] = _digest(proc(raw_isp.read_raw(paths[0]))["pixel_values"])
        saved = os.path.join(tmp, "saved")
        files = proc.save_pretrained(saved)
        out["save_pretrained/files"] = _digest({os.path.basename(f): Path(f).read_bytes() for f in files})
        again = type(proc).from_pretrained(saved)
        out["save_pretrained/reloaded"] = _digest(again(dim, intensity=0.05)["pixel_values"])
    out["to_dict"] = _digest(json.dumps(proc.to_dict(), sort_keys=True).encode())
    base = raw_isp.RawISPImageProcessor(isp="me_u_me", camera="drone", size=(40, 24))
    floats = full.astype(np.float32) / 65535
    out["floats"] = _digest(base(floats)["pixel_values"])
    for mode in ("bilinear", "bicubic", "nearest", "area"):
        out[f"resize/{mode}"] = _digest(base(full, resize_mode=mode)["pixel_values"])
    out["return_tensors/np"] = _digest(base(full, return_tensors="np")["pixel_values"])
    out["return_tensors/None"] = _digest(base(full, return_tensors=None)["pixel_values"])
    out["channels_last"] = _digest(base(full, data_format="channels_last")["pixel_values"])
    out["no_resize_no_normalize"] = _digest(base(full, do_resize=False, do_normalize=False)["pixel_values"])
    masks = (full > np.median(full)).astype(np.int64)
    out["segmentation"] = _digest(dict(base(full, segmentation_maps=masks)))
    rgb = raw_isp.StaticISP("bi_s_ga", camera="neutral")(torch.from_numpy(floats))
    out["to_pixel_values"] = _digest(base.to_pixel_values(rgb))
    logits = torch.linspace(-1, 1, 2 * 3 * 8 * 8).reshape(2, 3, 8, 8)
    out["post_process"] = _digest(base.post_process_semantic_segmentation(logits, target_sizes=[(16, 16), (16, 16)]))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--against", help="another source tree (its root folder) to compare with")
    parser.add_argument("--json", action="store_true", help="print the hashes as one JSON object")
    args = parser.parse_args()
    if not args.against:
        hashes = cases()
        import raw_isp

        print(json.dumps({"raw_isp": raw_isp.__file__, "hashes": hashes}) if args.json else
              "\n".join(f"{k}  {v}" for k, v in hashes.items()))
        return 0
    here = cases()
    import raw_isp

    env = dict(os.environ, PYTHONPATH=os.path.abspath(args.against))
    other = json.loads(subprocess.run(
        [sys.executable, __file__, "--json"], env=env, cwd=args.against, check=True, capture_output=True, text=True
    ).stdout)  # fmt: skip
    print(f"this tree: {raw_isp.__file__}; other: {other['raw_isp']}")
    other = other["hashes"]
    same = 0
    for key in sorted(set(here) | set(other)):
        ok = here.get(key) == other.get(key)
        same += ok
        print(f"{'same' if ok else 'DIFFERENT'}  {key}  {here.get(key, '-')[:16]}  {other.get(key, '-')[:16]}")
    print(f"{same} of {len(set(here) | set(other))} cases bit-identical (this tree vs {args.against})")
    return 0 if same == len(set(here) | set(other)) else 1


if __name__ == "__main__":
    sys.exit(main())
