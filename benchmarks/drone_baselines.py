"""Baselines a Raw-Drone segmenter must beat: all background, and one threshold on one colour feature.

The threshold baseline develops every tile with a static ISP (``--variant``, the drone camera,
metadata exposure), computes per-pixel features of the view (R, G, B, luma, HSV saturation and
value, and a blue-minus-red difference), and picks on the *training* split the feature, the
direction (car above or below) and the threshold (one of 64 quantiles) with the highest car
IoU; it is then scored once on the test split. Printed: car IoU, mean IoU and pixel accuracy of
both baselines on the test tiles with 95 % percentile-bootstrap intervals over the tiles (the
same resamples as the drift reports), and, with ``--model``, the trained model's figures from its
``all_results.json`` beside them.

    python benchmarks/drone_baselines.py --model outputs/segmentation --json out.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import raw_drone
import raw_isp
from raw_isp.isp.color import rgb_to_hsv
from raw_isp.metrics.bootstrap import metric_function, percentile_interval, resample_indices, resampled_values

FEATURES = ("R", "G", "B", "luma", "saturation", "value", "blue_minus_red")
NAMES = ["background", "car"]


def features(rgb: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` views in [0, 1] -> ``(len(FEATURES), B, H, W)`` per-pixel features."""
    hsv = rgb_to_hsv(rgb)
    luma = 0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]
    return torch.stack([rgb[:, 0], rgb[:, 1], rgb[:, 2], luma, hsv[:, 1], hsv[:, 2], rgb[:, 2] - rgb[:, 0]])


def develop(split, variant: str, batch: int = 32):
    """Features ``(F, N, H, W)`` float32 and masks ``(N, H, W)`` int64 of a split."""
    isp = raw_isp.StaticISP(variant, camera="drone", exposure="metadata")
    feats, masks = [], []
    for start in range(0, len(split), batch):
        rows = split[start:start + batch]
        raw = torch.as_tensor(np.stack([np.asarray(x) for x in rows["image"]]))
        intensity = torch.as_tensor(rows["intensity"], dtype=torch.float32)
        with torch.no_grad():
            feats.append(features(isp(raw, intensity=intensity)))
        masks.append(torch.as_tensor(np.stack([np.asarray(m) for m in rows["mask"]])).long())
    return torch.cat(feats, 1), torch.cat(masks)


def confusions(pred: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    """Per-tile 2x2 confusion matrices ``(N, 2, 2)`` (rows: reference)."""
    idx = (mask.clamp(0, 1) * 2 + pred).reshape(mask.shape[0], -1)
    counts = torch.stack([torch.bincount(r, minlength=4) for r in idx])
    return counts.reshape(-1, 2, 2).numpy().astype(np.int64)


def car_iou(pred: torch.Tensor, mask: torch.Tensor) -> float:
    tp = float(((pred == 1) & (mask == 1)).sum())
    return tp / max(float(((pred == 1) | (mask == 1)).sum()), 1.0)


def fit_threshold(feats: torch.Tensor, mask: torch.Tensor, n: int = 64) -> dict:
    """The feature, direction and threshold with the best training car IoU."""
    best = {"car_iou": -1.0}
    g = torch.Generator().manual_seed(0)
    for f, name in enumerate(FEATURES):
        x = feats[f]
        sample = x.reshape(-1)[torch.randint(0, x.numel(), (200_000,), generator=g)]
        for t in torch.quantile(sample, torch.linspace(0.01, 0.99, n)).tolist():
            for above in (True, False):
                iou = car_iou((x > t if above else x < t).long(), mask)
                if iou > best["car_iou"]:
                    best = {"feature": name, "index": f, "threshold": t, "above": above, "car_iou": iou}
    return best


def scores(cm: np.ndarray, indices: np.ndarray) -> dict:
    out = {}
    for metric in ("iou_car", "mean_iou", "pixel_accuracy"):
        fn = metric_function("segmentation", metric, NAMES)
        value = fn(cm.sum(0))
        ci = percentile_interval(value, resampled_values(cm, fn, indices), cm.shape[0])
        out[metric] = {"value": float(value), "ci_low": ci.low, "ci_high": ci.high}
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", default="bi_s_ga", choices=raw_isp.ISP_VARIANTS)
    p.add_argument("--intensity", type=float, default=1.0)
    p.add_argument("--model", default=None, help="a segmentation training folder to print beside the baselines")
    p.add_argument("--n_boot", type=int, default=1000)
    p.add_argument("--cache_dir", default=None)
    p.add_argument("--num_examples", type=int, default=None, help="tiles (default: the dataset's)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    kwargs = {"intensity": args.intensity, "cache_dir": args.cache_dir}
    if args.num_examples:
        kwargs["num_examples"] = args.num_examples
    splits = raw_drone.load_dataset("segmentation", **kwargs)
    train_f, train_m = develop(splits["train"], args.variant)
    rule = fit_threshold(train_f, train_m)
    test_f, test_m = develop(splits["test"], args.variant)
    x = test_f[rule["index"]]
    pred = (x > rule["threshold"] if rule["above"] else x < rule["threshold"]).long()
    indices = resample_indices(test_m.shape[0], args.n_boot, 0)
    results = {"test_tiles": int(test_m.shape[0]), "variant": args.variant, "intensity": args.intensity,
               "all_background": scores(confusions(torch.zeros_like(test_m), test_m), indices),
               "threshold": {"rule": {k: v for k, v in rule.items() if k != "index"},
                             **scores(confusions(pred, test_m), indices)}}
    fmt = lambda d: f"{d['value']:.4f} [{d['ci_low']:.4f}, {d['ci_high']:.4f}]"  # noqa: E731
    print(f"Raw-Drone test split, {results['test_tiles']} tiles, {args.variant} at intensity {args.intensity:g}; "
          f"95% intervals: percentile bootstrap over the tiles, {args.n_boot} resamples")
    for name in ("all_background", "threshold"):
        r = results[name]
        print(f"  {name:<15} car IoU {fmt(r['iou_car'])}, mean IoU {fmt(r['mean_iou'])}, "
              f"pixel accuracy {fmt(r['pixel_accuracy'])}")
    print(f"  threshold rule (fitted on {len(splits['train'])} training tiles): car where {rule['feature']} "
          f"{'>' if rule['above'] else '<'} {rule['threshold']:.4f} (training car IoU {rule['car_iou']:.4f})")
    if args.model:
        model = json.loads((Path(args.model) / "all_results.json").read_text())
        results["model"] = {k: model[k] for k in ("test_iou_car", "test_mean_iou", "test_pixel_accuracy") if k in model}
        print(f"  model ({args.model}): car IoU {model.get('test_iou_car', float('nan')):.4f}, mean IoU "
              f"{model.get('test_mean_iou', float('nan')):.4f}, pixel accuracy "
              f"{model.get('test_pixel_accuracy', float('nan')):.4f} (intervals: its drift synthesis report)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
