"""The ISP chain, stage by stage, and :class:`StaticISP`, its fast fixed-parameter form.

Stage order (as in the Raw2Logit study): black level -> demosaic -> white balance -> colour
matrix -> sharpening on luma -> denoising on luma -> clip to [0, 1] -> gamma. Luma is BT.601
Y; chroma (U, V) passes through the luma filters unchanged.

Borders: the mosaic is first extended by CFA-preserving reflection (``x[-k] = x[k]``) by at
least the support of the whole chain, processed, and cropped back, so every output pixel
sees a full neighbourhood. A reference that pads each stage separately therefore agrees on
the interior; ``StaticISP.margin`` says how wide the border is where it may not.

:class:`StaticISP` computes the same result as :func:`run_stages` but compiles the chain
into a few batched kernels. Every linear stage (bilinear or Malvar demosaicing, white
balance, colour matrix, YUV, sharpening and Gaussian denoising) is folded into one
convolution on the four CFA planes; its weights are found by running the stage functions
themselves on impulses, so there is one implementation of each stage. A median (nonlinear)
splits the chain: since only luma is filtered, ``rgb_out = rgb + q * (f(Y) - Y)`` with
``q = yuv_to_rgb[:, 0]``, so the linear part delivers ``rgb - q*Y`` and the sharpened Y, and
the median result is added back. Menon demosaicing is nonlinear too and runs on its own,
followed by the fused linear tail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
import torch.nn.functional as F

from .cfa import check_raw, pattern_colours, split_planes
from .color import RGB_FROM_YUV, YUV_FROM_RGB, color_correct, gamma_encode, rgb_to_yuv, subtract_black_level, white_balance, yuv_to_rgb
from .config import CAMERAS, CameraPreset, ISPConfig
from .demosaic import demosaic_rggb_planes, rggb_canvas
from .filters import fft_lowpass, gaussian_blur, median3x3_valid, median_filter, pad2d, sharpen, unsharp_mask

__all__ = ["StaticISP", "run_stages", "luma_filter", "config_sharpen_fn", "config_denoise_fn", "as_raw_tensor", "STAGE_NAMES"]

#: Names of the intermediate results returned by ``run_stages(..., return_stages=True)``.
STAGE_NAMES = ("black_level", "demosaic", "white_balance", "color_correction", "sharpening", "denoising", "output")

LumaFn = Callable[[torch.Tensor], torch.Tensor]


def as_raw_tensor(raw, device=None, dtype=torch.float32) -> tuple[torch.Tensor, bool]:
    """Turn a numpy array or tensor ``(H, W)`` / ``(B, H, W)`` into a float tensor ``(B, H, W)``.

    Integer input is taken as 16-bit DN and divided by 65535. Returns the tensor and whether
    the input had no batch axis.
    """
    if isinstance(raw, np.ndarray):
        raw = torch.from_numpy(np.ascontiguousarray(raw))
    if not isinstance(raw, torch.Tensor):
        raise TypeError(f"raw must be a numpy array or torch tensor, got {type(raw).__name__}")
    single = raw.dim() == 2
    if not raw.is_floating_point():
        if raw.dtype == torch.bool or raw.is_complex():
            raise TypeError(f"raw must hold numbers in [0, 1] or 16-bit DN, got dtype {raw.dtype}")
        raw = raw.to(torch.float64) / 65535.0
    raw = check_raw(raw.to(device=device, dtype=dtype))
    return raw, single


def luma_filter(rgb: torch.Tensor, fn: LumaFn) -> torch.Tensor:
    """Apply ``fn`` to the Y channel of ``(B, 3, H, W)``, keeping U and V (YUV round trip)."""
    yuv = rgb_to_yuv(rgb)
    return yuv_to_rgb(torch.cat([fn(yuv[:, 0]).unsqueeze(1), yuv[:, 1:]], dim=1))


def config_sharpen_fn(config: ISPConfig) -> LumaFn | None:
    """The sharpening stage of a config as a function on luma ``(B, H, W)``, or None."""
    if config.sharpening == "sharpening_filter":
        return sharpen
    if config.sharpening == "unsharp_masking":
        return lambda y: unsharp_mask(y, config.sharpen_radius, config.sharpen_amount)
    return None


def config_denoise_fn(config: ISPConfig) -> LumaFn | None:
    """The denoising stage of a config as a function on luma ``(B, H, W)``, or None."""
    if config.denoising == "gaussian":
        return lambda y: gaussian_blur(y, config.gaussian_sigma)
    if config.denoising == "median":
        return lambda y: median_filter(y, config.median_size)
    if config.denoising == "fft":
        return lambda y: fft_lowpass(y, config.fft_keep_fraction)
    return None


def run_stages(
    raw: torch.Tensor,
    *,
    demosaic: str,
    pattern: str = "RGGB",
    black_level=0.0,
    white_balance_gains=(1.0, 1.0, 1.0),
    colour_matrix=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0),
    sharpen_fn: LumaFn | None = None,
    denoise_fn: LumaFn | None = None,
    gamma=2.2,
    margin: int = 0,
    return_stages: bool = False,
):
    """Run the ISP stage by stage on a mosaic ``(B, H, W)`` in [0, 1]; returns ``(B, 3, H, W)``.

    Parameters may be tensors (per-image with a leading batch axis) and receive gradients.
    ``margin``: reflection padding added around the mosaic before processing (see module
    docstring). With ``return_stages`` the result is ``(rgb, stages)`` where ``stages`` maps
    each name of :data:`STAGE_NAMES` to its output, cropped to the frame (``black_level`` is
    the corrected mosaic ``(B, H, W)``, the others ``(B, 3, H, W)``).
    """
    raw = check_raw(raw)
    h, w = raw.shape[-2:]
    canvas, (oy, ox) = rggb_canvas(raw, pattern_colours(pattern), margin)
    # Black level is given for the sites of the input pattern; the canvas may be shifted.
    bl = torch.as_tensor(black_level, dtype=raw.dtype, device=raw.device) if not isinstance(black_level, torch.Tensor) else black_level
    if bl.dim() > 0 and bl.shape[-1] == 4 and (oy % 2 or ox % 2):
        perm = [((i // 2 + oy) % 2) * 2 + (i % 2 + ox) % 2 for i in range(4)]
        bl = bl[..., perm]
    x = subtract_black_level(canvas, bl)
    stages = {"black_level": x}
    rgb = demosaic_rggb_planes(split_planes(x), demosaic)
    stages["demosaic"] = rgb
    rgb = white_balance(rgb, white_balance_gains)
    stages["white_balance"] = rgb
    rgb = color_correct(rgb, colour_matrix)
    stages["color_correction"] = rgb
    if sharpen_fn is not None:
        rgb = luma_filter(rgb, sharpen_fn)
    stages["sharpening"] = rgb
    if denoise_fn is not None:
        rgb = luma_filter(rgb, denoise_fn)
    stages["denoising"] = rgb
    rgb = gamma_encode(rgb, gamma)
    stages["output"] = rgb
    out = rgb[..., oy : oy + h, ox : ox + w]
    if not return_stages:
        return out
    return out, {k: v[..., oy : oy + h, ox : ox + w] for k, v in stages.items()}


# --------------------------------------------------------------------------- compiling


def _probe_polyphase(fn: Callable[[torch.Tensor], torch.Tensor], half_radius: int) -> torch.Tensor:
    """Conv weight ``(C*4, 4, m, m)`` of a linear, shift-invariant-per-site map on RGGB planes.

    ``fn`` maps planes ``(N, 4, n, n)`` (float64) to full-resolution ``(N, C, 2n, 2n)``.
    """
    m = 2 * half_radius + 1
    n = 4 * half_radius + 6
    c = n // 2
    probes = torch.zeros(4 * m * m, 4, n, n, dtype=torch.float64)
    idx = 0
    for p in range(4):
        for ky in range(m):
            for kx in range(m):
                probes[idx, p, c + ky - half_radius, c + kx - half_radius] = 1.0
                idx += 1
    out = fn(probes)  # (N, C, 2n, 2n)
    tile = out[:, :, 2 * c : 2 * c + 2, 2 * c : 2 * c + 2]  # (N, C, 2, 2): the four sites
    resp = tile.reshape(4, m, m, out.shape[1], 4)  # (p, ky, kx, C, site)
    return resp.permute(3, 4, 0, 1, 2).reshape(out.shape[1] * 4, 4, m, m).contiguous()


def _probe_kernel(fn: LumaFn, radius: int) -> torch.Tensor:
    """Correlation kernel ``(2r+1, 2r+1)`` of a linear, shift-invariant luma filter."""
    n = 4 * radius + 3
    c = n // 2
    impulse = torch.zeros(1, n, n, dtype=torch.float64)
    impulse[0, c, c] = 1.0
    resp = fn(impulse)[0, c - radius : c + radius + 1, c - radius : c + radius + 1]
    return resp.flip(0, 1).contiguous()


def _compose(*fns: LumaFn | None) -> LumaFn:
    def f(y):
        for fn in fns:
            if fn is not None:
                y = fn(y)
        return y

    return f


class StaticISP(torch.nn.Module):
    """A fixed ISP: raw mosaic ``(B, H, W)`` in [0, 1] -> RGB ``(B, 3, H, W)`` in [0, 1].

    Args:
        config: a variant name of :data:`raw_isp.ISP_VARIANTS` (e.g. ``"ma_s_me"``), an
            :class:`ISPConfig` or its dict.
        camera: "neutral", "drone", "microscopy" (:data:`raw_isp.CAMERAS`), a
            :class:`CameraPreset` or its dict.
        device, dtype: where and in which float type the ISP runs (float32 by default).

    Calling it accepts torch tensors or numpy arrays, ``(B, H, W)`` or ``(H, W)``, float in
    [0, 1] or integer 16-bit DN (divided by 65535); output is on the ISP's device. It is an
    ``nn.Module`` without parameters (the constant kernels are buffers), so it can be the
    first module of a model and follows ``.to(device)``. Gradients flow to the input.
    """

    def __init__(self, config="bi_s_ga", camera="neutral", device=None, dtype=torch.float32):
        super().__init__()
        self.config = ISPConfig.parse(config)
        self.camera = CameraPreset.parse(camera)
        if dtype not in (torch.float32, torch.float64, torch.float16, torch.bfloat16):
            raise ValueError(f"dtype must be a floating-point torch dtype, got {dtype}")
        cfg, cam = self.config, self.camera
        self._sharpen = config_sharpen_fn(cfg)
        self._denoise = config_denoise_fn(cfg)
        linear_demosaic = cfg.demosaic != "menon2007"
        if cfg.denoising == "fft":
            self.mode = "stages"
        elif linear_demosaic:
            self.mode = "linear" if cfg.denoising != "median" else "linear_median"
        else:
            self.mode = "menon"
        if cfg.denoising == "median" and cfg.median_size != 3:
            self.mode = "stages"  # the fused median path is the 3x3 network
        q = RGB_FROM_YUV[:, 0]  # how a change of Y shows in R, G, B
        self.margin = cfg.support + cfg.support % 2
        if self.mode in ("linear", "linear_median"):
            chain = _compose(self._sharpen, self._denoise if self.mode == "linear" else None)
            if self.mode == "linear":
                radius = cfg.support

                def fn(planes):
                    return luma_filter(self._linear_head(planes), chain)

            else:
                radius = cfg.support - cfg.denoise_support

                def fn(planes):
                    rgb = self._linear_head(planes)
                    y = rgb_to_yuv(rgb)[:, :1]
                    return torch.cat([rgb - q.view(1, 3, 1, 1) * y, chain(y[:, 0]).unsqueeze(1)], dim=1)

            half = (radius + 1) // 2
            weight = _probe_polyphase(fn, half)
            bl = torch.tensor(cam.black_level, dtype=torch.float64)
            bl = bl[[self._site_perm(i) for i in range(4)]]
            bias = -(weight.sum(dim=(2, 3)) @ bl)
            self.register_buffer("weight", weight.to(dtype), persistent=False)
            self.register_buffer("bias", bias.to(dtype), persistent=False)
            self._pad = 2 * half + (2 if self.mode == "linear_median" else 0)
        elif self.mode == "menon":
            m = torch.diag(torch.tensor(cam.white_balance, dtype=torch.float64))
            m = torch.tensor(cam.colour_matrix, dtype=torch.float64).view(3, 3) @ m
            y_row = YUV_FROM_RGB[0] @ m
            self.register_buffer("to_a", (m - torch.outer(q, y_row)).to(dtype), persistent=False)
            luma_r = cfg.sharpen_support + (cfg.denoise_support if cfg.denoising == "gaussian" else 0)
            luma = _compose(self._sharpen, self._denoise if cfg.denoising == "gaussian" else None)
            k = _probe_kernel(luma, luma_r) if luma_r else torch.ones(1, 1, dtype=torch.float64)
            # The luma kernel and the Y weights fold into one 3 -> 1 convolution.
            self.register_buffer("luma_weight", (y_row.view(1, 3, 1, 1) * k).to(dtype), persistent=False)
            self.register_buffer("bl_planes", torch.tensor(cam.black_level, dtype=dtype), persistent=False)
            self._pad = self.margin
        else:
            self._pad = self.margin
        self.register_buffer("q", q.to(dtype), persistent=False)
        self.to(device=device)

    # -- helpers -----------------------------------------------------------------------
    def _site_perm(self, i: int) -> int:
        """Index into the camera's black level (input-pattern sites) for RGGB canvas site ``i``."""
        dy, dx = ((0, 0), (0, 1), (1, 0), (1, 1))[pattern_colours(self.config.pattern).index(0)]
        return ((i // 2 + dy) % 2) * 2 + (i % 2 + dx) % 2

    def _linear_head(self, planes: torch.Tensor) -> torch.Tensor:
        """Demosaic, white balance and colour matrix of black-level-free RGGB planes (float64)."""
        rgb = demosaic_rggb_planes(planes, self.config.demosaic)
        return color_correct(white_balance(rgb, self.camera.white_balance), self.camera.colour_matrix)

    @property
    def dtype(self) -> torch.dtype:
        return self.q.dtype

    @property
    def device(self) -> torch.device:
        return self.q.device

    def extra_repr(self) -> str:
        name = self.config.variant or self.config
        return f"config={name}, camera={self.camera.name}, mode={self.mode}, margin={self.margin}"

    def _forward_stages(self, x: torch.Tensor, single: bool) -> torch.Tensor:
        cfg, cam = self.config, self.camera
        out = run_stages(
            x,
            demosaic=cfg.demosaic,
            pattern=cfg.pattern,
            black_level=torch.tensor(cam.black_level, dtype=x.dtype, device=x.device),
            white_balance_gains=cam.white_balance,
            colour_matrix=cam.colour_matrix,
            sharpen_fn=self._sharpen,
            denoise_fn=self._denoise,
            gamma=cfg.gamma,
            margin=self.margin,
        )
        return out[0] if single else out

    # -- forward -----------------------------------------------------------------------
    def forward(self, raw) -> torch.Tensor:
        x, single = as_raw_tensor(raw, device=self.device, dtype=self.dtype)
        h, w = x.shape[-2:]
        if self.mode == "stages":
            return self._forward_stages(x, single)
        if min(h, w) <= self._pad + 2:
            return self._forward_stages(x, single)
        canvas, (oy, ox) = rggb_canvas(x, pattern_colours(self.config.pattern), self._pad)
        planes = split_planes(canvas)
        if self.mode == "linear":
            rgb = F.pixel_shuffle(F.conv2d(planes, self.weight, self.bias), 2)
            off = self._pad  # the valid convolution has already removed the margin (RGGB)
            oy, ox = oy - off, ox - off
        elif self.mode == "linear_median":
            out = F.pixel_shuffle(F.conv2d(planes, self.weight, self.bias), 2)
            rgb, s = out[:, :3], out[:, 3]
            off = self._pad - 2
            rgb = rgb[..., 1:-1, 1:-1]
            rgb = rgb + self.q.view(1, 3, 1, 1) * median3x3_valid(s).unsqueeze(1)
            oy, ox = oy - off - 1, ox - off - 1
        else:  # menon
            planes = planes - self.bl_planes[[self._site_perm(i) for i in range(4)]].view(1, 4, 1, 1)
            rgb = demosaic_rggb_planes(planes, "menon2007")
            a = torch.einsum("ck,bkhw->bchw", self.to_a, rgb)
            kw = self.luma_weight.shape[-1]
            t = F.conv2d(F.pad(rgb, (kw // 2,) * 4, mode="replicate"), self.luma_weight)[:, 0]
            if self.config.denoising == "median":
                t = median3x3_valid(pad2d(t, 1, 1, "replicate"))
            rgb = a + self.q.view(1, 3, 1, 1) * t.unsqueeze(1)
        rgb = rgb[..., oy : oy + h, ox : ox + w]
        out = gamma_encode(rgb, self.config.gamma)
        return out[0] if single else out
