"""How much class evidence auto-exposure removes: the per-image auto-exposure gain by class.

Auto-exposure (``raw_isp.isp.exposure.auto_exposure_gain``, average metering) scales each frame so
its trimmed mean reaches mid-grey. In bright-field microscopy the frame's mean is the light the
cell lets through: a large or densely stained cell gives a darker frame and a larger gain. If the
gain differs by class, auto-exposure takes that difference out of the view the model sees.

Prints, on the training split of the synthetic default (or ``--data_dir``): the gain's mean and sd
per class, the share of its variance between classes (eta squared), and the accuracy of the
nearest-class-mean rule on log-gain alone against the majority rate (both on the validation split).

    python benchmarks/probe_auto_exposure.py [--data_dir PATH] [--json out.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from machine import machine_info, write_json  # benchmarks/machine.py, beside this script
from raw_isp.io import raw_to_unit
from raw_isp.isp.config import CAMERAS
from raw_isp.isp.exposure import auto_exposure_gain
from raw_isp.training import RawTrainingArguments, label_names, load_splits


def gains(split, camera: str, batch: int = 64) -> np.ndarray:
    """Auto-exposure gain of every frame of a split, ``(N,)``."""
    black = torch.tensor(CAMERAS[camera].black_level, dtype=torch.float32)
    out = []
    for start in range(0, len(split), batch):
        frames = np.stack(split[start:start + batch]["image"]).astype(np.uint16)
        out.append(auto_exposure_gain(raw_to_unit(torch.from_numpy(frames)), black).numpy())
    return np.concatenate(out)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data_dir", default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    targs = RawTrainingArguments(data_dir=args.data_dir)
    splits = load_splits(targs).with_format("numpy")
    column = targs.label_column
    names = label_names(splits["train"], column)
    g = {s: np.log(gains(splits[s], targs.camera_name)) for s in ("train", "validation")}
    y = {s: np.asarray(splits[s][column]) for s in ("train", "validation")}
    rows, means = [], {}
    print(f"{'class':<6} {'n':>4} {'gain mean':>10} {'sd':>7}")
    for c, name in enumerate(names):
        lg = g["train"][y["train"] == c]
        if len(lg) == 0:
            continue
        means[c] = lg.mean()
        rows.append({"class": name, "n": int(len(lg)), "gain_mean": float(np.exp(lg).mean()),
                     "gain_sd": float(np.exp(lg).std())})
        print(f"{name:<6} {len(lg):>4} {rows[-1]['gain_mean']:>10.3f} {rows[-1]['gain_sd']:>7.3f}")
    total = g["train"].var()
    between = sum((y["train"] == c).mean() * (m - g["train"].mean()) ** 2 for c, m in means.items())
    classes = np.array(sorted(means))
    centres = np.array([means[c] for c in classes])
    pred = classes[np.abs(g["validation"][:, None] - centres[None]).argmin(1)]
    acc = float((pred == y["validation"]).mean())
    majority = float(np.bincount(y["validation"]).max() / len(y["validation"]))
    print(f"log-gain variance between classes: {between / total:.1%} (eta squared)")
    print(f"nearest class mean on log-gain alone, validation accuracy {acc:.3f} (majority rate {majority:.3f})")
    result = {"machine": machine_info(), "data_dir": args.data_dir, "classes": rows,
              "eta_squared": float(between / total), "gain_only_accuracy": acc, "majority_rate": majority}
    write_json(args.json, result)
    return result


if __name__ == "__main__":
    main()
