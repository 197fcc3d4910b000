"""The ISP chain, stage by stage, and :class:`StaticISP`, its fast fixed-parameter form.

Stage order (as in the Raw2Logit study): black level -> demosaic -> white balance -> colour
matrix -> sharpening on luma -> denoising on luma -> clip to [0, 1] -> gamma. Luma is BT.601
Y; chroma (U, V) passes through the luma filters unchanged. An optional exposure stage (a
per-image digital gain, :mod:`raw_isp.isp.exposure`) follows black level; without an exposure
setting it does not run at all.

Borders: the mosaic is first extended by CFA-preserving reflection (``x[-k] = x[k]``) by at
least the support of the whole chain, processed, and cropped back, so every output pixel
sees a full neighbourhood. A reference that pads each stage separately therefore agrees on
the interior; ``StaticISP.margin`` says how wide the border is where it may not.

:func:`run_stages` runs the chain literally, one stage function after the other; it is what
:class:`ParametrizedISP` uses (tensor parameters, gradients, every stage kept).
:class:`StaticISP` computes the same result with the same stage functions, fused: it works on
the four quarter-resolution CFA planes until luma is needed, folds white balance, colour
matrix and the luma row of the YUV transform into one mix per site, and, since only luma is
filtered, replaces the YUV round trips by ``rgb_out = rgb + q * (f(Y) - Y)`` with
``q = yuv_to_rgb[:, 0]``. The luma filters run unpadded inside the margin, and the batch is
processed in cache-sized chunks, on several threads where cores are free
(:mod:`raw_isp.isp.threads`). The tests check that both paths agree to float rounding.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch

from ..io import raw_to_unit
from .cfa import check_raw, pattern_colours, split_planes
from .color import RGB_FROM_YUV, YUV_FROM_RGB, color_correct, gamma_encode, rgb_to_yuv, subtract_black_level, white_balance, yuv_to_rgb
from .config import CameraPreset, ISPConfig
from .exposure import apply_gain, exposure_gain, per_image_tensor
from .demosaic import demosaic_rggb_planes, demosaic_site_planes, rggb_canvas, rggb_site_order
from .threads import choose_threads, isp_thread_scope, parse_threads, run_chunks
from .filters import (
    conv2d_same,
    correlate2d_valid,
    fft_lowpass,
    gaussian_blur,
    gaussian_blur_valid,
    median3x3_valid,
    median_filter,
    sharpen,
    sharpen_valid,
    unsharp_mask,
    unsharp_mask_valid,
)

__all__ = ["StaticISP", "run_stages", "luma_filter", "config_sharpen_fn", "config_denoise_fn", "as_raw_tensor", "STAGE_NAMES",
           "MIN_FRAME_SIDE", "check_frame_side"]

#: Smallest frame side (pixels) every ISP variant develops: demosaicing, denoising and
#: sharpening each look a few pixels around a pixel (the unsharp-mask median variants need 8;
#: a config without filters, such as a learned ISP's base view, takes 2x2).
MIN_FRAME_SIDE = 8


def check_frame_side(h: int, w: int, err: BaseException | None = None, what: str = "the ISP") -> None:
    """Raise ``ValueError`` for a raw frame ``h x w`` that ``what`` could not develop (``err``:
    what its filters raised) because it is smaller than :data:`MIN_FRAME_SIDE` on a side."""
    if h < MIN_FRAME_SIDE or w < MIN_FRAME_SIDE:
        detail = f"; {type(err).__name__}: {str(err).splitlines()[0]}" if err is not None and str(err) else ""
        raise ValueError(f"raw frame {h}x{w}: too small for {what}, whose filters need up to "
                         f"{MIN_FRAME_SIDE}x{MIN_FRAME_SIDE} pixels (demosaicing, denoising and sharpening look "
                         f"several pixels around each pixel){detail}") from None

#: Names of the intermediate results returned by ``run_stages(..., return_stages=True)``.
STAGE_NAMES = ("black_level", "exposure", "demosaic", "white_balance", "color_correction", "sharpening", "denoising", "output")

LumaFn = Callable[[torch.Tensor], torch.Tensor]


def as_raw_tensor(raw, device=None, dtype=torch.float32) -> tuple[torch.Tensor, bool]:
    """Turn a numpy array or tensor ``(H, W)`` / ``(B, H, W)`` into a float tensor ``(B, H, W)``.

    Integer input is taken as 16-bit DN (:func:`raw_isp.io.raw_to_unit`). Returns the tensor and whether
    the input had no batch axis.
    """
    if isinstance(raw, np.ndarray):
        raw = torch.from_numpy(np.ascontiguousarray(raw))
    if not isinstance(raw, torch.Tensor):
        raise TypeError(f"raw must be a numpy array or torch tensor, got {type(raw).__name__}")
    single = raw.dim() == 2
    if raw.dtype == torch.bool or raw.is_complex():
        raise TypeError(f"raw must hold numbers in [0, 1] or 16-bit DN, got dtype {raw.dtype}")
    if not raw.is_floating_point():
        raw = raw_to_unit(raw)
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
    if config.sharpening == "kernel":
        return _kernel_fn(config.sharpen_kernel)
    return None


def _kernel_fn(kernel) -> LumaFn:
    # The boundary rule and the tensor (conv2d) form of ParametrizedISP's learnable kernels,
    # so that a config written from one replays it operation for operation in run_stages.
    k = torch.tensor(kernel, dtype=torch.float64)
    return lambda y: conv2d_same(y, k, "symmetric")


def config_denoise_fn(config: ISPConfig) -> LumaFn | None:
    """The denoising stage of a config as a function on luma ``(B, H, W)``, or None."""
    if config.denoising == "gaussian":
        return lambda y: gaussian_blur(y, config.gaussian_sigma)
    if config.denoising == "median":
        return lambda y: median_filter(y, config.median_size)
    if config.denoising == "kernel":
        return _kernel_fn(config.blur_kernel)
    if config.denoising == "fft":
        def fft(y):
            return fft_lowpass(y, config.fft_keep_fraction)

        fft.is_global = True  # run_stages applies it to the frame, not the padded canvas
        return fft
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
    stage_grads: dict | None = None,
    exposure_gain=None,
):
    """Run the ISP stage by stage on a mosaic ``(B, H, W)`` in [0, 1]; returns ``(B, 3, H, W)``.

    Parameters may be tensors (per-image with a leading batch axis) and receive gradients.
    ``exposure_gain``: None (no exposure stage), a scalar or a ``(B,)`` tensor multiplying the
    black-subtracted mosaic (:func:`raw_isp.isp.exposure.exposure_gain` computes it from a config).
    ``margin``: reflection padding added around the mosaic before processing (see module
    docstring). With ``return_stages`` the result is ``(rgb, stages)`` where ``stages`` maps
    each name of :data:`STAGE_NAMES` to its output, cropped to the frame (``black_level`` and
    ``exposure`` are mosaics ``(B, H, W)``, the others ``(B, 3, H, W)``). The stages are computed
    on the padded canvas, so the cropped views are not on the path to the output; to inspect
    gradients per stage pass a dict as ``stage_grads``: after ``backward()`` it holds each
    stage's gradient, cropped to the frame.
    """
    raw = check_raw(raw)
    h, w = raw.shape[-2:]
    canvas, (oy, ox) = rggb_canvas(raw, pattern_colours(pattern), margin)
    # Black level is given for the sites of the input pattern; the canvas may be shifted.
    bl = black_level if isinstance(black_level, torch.Tensor) else torch.as_tensor(black_level, dtype=raw.dtype, device=raw.device)
    if bl.dim() > 0 and bl.shape[-1] == 4:
        bl = bl[..., rggb_site_order(pattern)]
    x = subtract_black_level(canvas, bl)
    stages = {"black_level": x}
    x = apply_gain(x, exposure_gain)
    stages["exposure"] = x
    rgb = demosaic_rggb_planes(split_planes(x), demosaic)
    stages["demosaic"] = rgb
    rgb = white_balance(rgb, white_balance_gains)
    stages["white_balance"] = rgb
    rgb = color_correct(rgb, colour_matrix)
    stages["color_correction"] = rgb
    if sharpen_fn is not None:
        rgb = luma_filter(rgb, sharpen_fn)
    stages["sharpening"] = rgb
    frame = {name: (oy, ox) for name in stages}
    if getattr(denoise_fn, "is_global", False):
        # A global filter (FFT) sees the frame itself, as the reference does, not the canvas.
        rgb = rgb[..., oy : oy + h, ox : ox + w]
        oy = ox = 0
    if denoise_fn is not None:
        rgb = luma_filter(rgb, denoise_fn)
    stages["denoising"] = rgb
    rgb = gamma_encode(rgb, gamma)
    stages["output"] = rgb
    frame.update(denoising=(oy, ox), output=(oy, ox))
    out = rgb[..., oy : oy + h, ox : ox + w]
    if stage_grads is not None:
        for name, t in stages.items():
            if t.requires_grad:
                t.register_hook(functools.partial(_store_grad, stage_grads, name, (*frame[name], h, w)))
    if not return_stages:
        return out
    return out, {k: v[..., frame[k][0] : frame[k][0] + h, frame[k][1] : frame[k][1] + w] for k, v in stages.items()}


def _luma_valid_steps(config: ISPConfig) -> list[LumaFn]:
    """The luma stages of a config as unpadded filters (each shrinks the image by its radius)."""
    steps = []
    if config.sharpening == "sharpening_filter":
        steps.append(sharpen_valid)
    elif config.sharpening == "unsharp_masking":
        steps.append(functools.partial(unsharp_mask_valid, radius=config.sharpen_radius, amount=config.sharpen_amount))
    elif config.sharpening == "kernel":
        steps.append(functools.partial(correlate2d_valid, kernel=config.sharpen_kernel))
    if config.denoising == "gaussian":
        steps.append(functools.partial(gaussian_blur_valid, sigma=config.gaussian_sigma))
    elif config.denoising == "median":
        steps.append(median3x3_valid if config.median_size == 3 else _median_valid(config.median_size))
    elif config.denoising == "kernel":
        steps.append(functools.partial(correlate2d_valid, kernel=config.blur_kernel))
    return steps


def _median_valid(size: int) -> LumaFn:
    def med(x):
        r = size // 2
        return median_filter(x, size)[..., r : x.shape[-2] - r, r : x.shape[-1] - r]

    return med


def _store_grad(store: dict, name: str, frame: tuple[int, int, int, int], grad: torch.Tensor) -> None:
    oy, ox, h, w = frame
    store[name] = grad[..., oy : oy + h, ox : ox + w].detach().clone()


# --------------------------------------------------------------------------- fast path


class StaticISP(torch.nn.Module):
    """A fixed ISP: raw mosaic ``(B, H, W)`` in [0, 1] -> RGB ``(B, 3, H, W)`` in [0, 1].

    Args:
        config: a variant name of :data:`raw_isp.ISP_VARIANTS` (e.g. ``"ma_s_me"``), an
            :class:`ISPConfig` or its dict.
        camera: "neutral", "drone", "microscopy" (:data:`raw_isp.CAMERAS`), a
            :class:`CameraPreset` or its dict.
        device, dtype: where and in which float type the ISP runs (float32 by default).
        chunk_pixels: the batch is processed in chunks of about this many pixels so that
            the intermediate planes stay in the CPU cache (ignored on CUDA).
        exposure: None (default: the config's setting, None for the study's variants),
            ``"metadata"``, ``"auto"`` or a positive fixed gain; merged into the config
            (:meth:`ISPConfig.with_exposure`; an error if the config has another one). See
            :mod:`raw_isp.isp.exposure`.
        threads: CPU threads per call: None or ``"auto"`` (default) chooses on every call,
            else a positive integer. Unless given, the environment variable
            ``RAW_ISP_THREADS`` (an integer or ``"auto"``) decides; "auto" means 1 inside a
            DataLoader worker, else the cores this process may use minus the tasks running
            elsewhere right now (:func:`raw_isp.isp.threads.choose_threads`). The chunks of the
            batch are shared out among that many worker threads, each with one PyTorch
            intra-op thread, so a busy core slows its worker only instead of every operation
            (one chunk, the FFT config and calls that need gradients use intra-op threads).
            ``torch.set_num_threads`` is changed for the call and restored after it, which
            other threads of the process running PyTorch at the same time also see. The
            thread count does not change results (bit for bit). Ignored on CUDA.

    Calling it, ``isp(raw, *, intensity=None, gain=None)``, accepts torch tensors or numpy
    arrays, ``(B, H, W)`` or ``(H, W)``, float in [0, 1] or integer 16-bit DN (divided by
    65535); output is on the ISP's device. ``intensity``: the intensity ratio of each image
    (a number or ``(B,)``), required with ``exposure="metadata"`` and ignored otherwise.
    ``gain``: per-image gains ``(B,)`` (or one number) to use instead of the exposure
    setting's, e.g. what :meth:`exposure_gain` returned. It is an ``nn.Module`` without
    parameters, so it can be the first module of a model and follows ``.to(device)``.
    Gradients flow to the input (and to ``intensity`` / ``gain`` tensors that require them).

    The result equals :func:`run_stages` with the same settings (to float rounding) but is
    computed with the stages fused: white balance, colour matrix and the luma row of the YUV
    transform are one 4x3 matrix applied per CFA site; only luma is filtered, and since
    ``yuv_to_rgb`` maps a change ``dY`` of luma to ``q * dY`` in RGB (``q`` = its first
    column), the YUV round trips collapse into one multiply-add; all work before the luma
    filters happens on quarter-resolution CFA planes; gamma is computed in place.
    """

    def __init__(
        self, config="bi_s_ga", camera="neutral", device=None, dtype=torch.float32, chunk_pixels: int = 1 << 18,
        exposure=None, threads=None,
    ):
        super().__init__()
        self.threads = parse_threads(threads, "threads")
        self.config = ISPConfig.parse(config).with_exposure(exposure)
        self.camera = CameraPreset.parse(camera)
        if dtype not in (torch.float32, torch.float64):
            # Half precision is not exact enough for an ISP: the 16-bit raw alone needs more than
            # fp16's 11 bits, Menon's direction test flips, and gamma's slope near 0 amplifies
            # rounding (max error 0.7 in fp16, 1.0 in bf16). Cast the ISP's output instead.
            raise ValueError(f"dtype must be torch.float32 or torch.float64, got {dtype}")
        cfg, cam = self.config, self.camera
        self.chunk_pixels = int(chunk_pixels)
        self._sharpen = config_sharpen_fn(cfg)
        self._denoise = config_denoise_fn(cfg)
        # The FFT filter is global (not a local stencil), so it runs stage by stage.
        self.fused = cfg.denoising != "fft"
        self.margin = cfg.support + cfg.support % 2
        bl = [cam.black_level[i] for i in rggb_site_order(cfg.pattern)]
        wb_ccm = torch.tensor(cam.colour_matrix, dtype=torch.float64).view(3, 3) @ torch.diag(
            torch.tensor(cam.white_balance, dtype=torch.float64)
        )
        mix = torch.cat([wb_ccm, (YUV_FROM_RGB[0] @ wb_ccm).view(1, 3)])  # rows: R, G, B, Y
        q = RGB_FROM_YUV[:, 0]
        mix[:3] -= torch.outer(q, mix[3])  # rows 0-2 now give rgb - q * Y
        self._mix = mix.tolist()
        self._luma_valid = _luma_valid_steps(cfg)
        self._luma_shrink = cfg.sharpen_support + cfg.denoise_support
        self.register_buffer("q", q.to(dtype), persistent=False)
        self.register_buffer("black_level", torch.tensor(bl, dtype=dtype).view(1, 4, 1, 1), persistent=False)
        self.to(device=device)

    @property
    def dtype(self) -> torch.dtype:
        return self.black_level.dtype

    @property
    def device(self) -> torch.device:
        return self.black_level.device

    def extra_repr(self) -> str:
        threads = "" if self.threads is None else f", threads={self.threads}"
        return f"config={self.config.variant or self.config}, camera={self.camera.name}, margin={self.margin}{threads}"

    def exposure_gain(self, raw, intensity=None) -> torch.Tensor | None:
        """The exposure stage's gain per image, ``(B,)`` (None without an exposure setting).

        ``raw``: as for calling the ISP; ``intensity``: as for calling the ISP. See
        :func:`raw_isp.isp.exposure.exposure_gain`.
        """
        x, _ = as_raw_tensor(raw, device=self.device, dtype=self.dtype)
        return exposure_gain(x, self._positional_black_level(), self.config, intensity)

    def _positional_black_level(self) -> torch.Tensor:
        return torch.tensor(self.camera.black_level, dtype=self.dtype, device=self.device)

    def forward(self, raw, *, intensity=None, gain=None) -> torch.Tensor:
        x, single = as_raw_tensor(raw, device=self.device, dtype=self.dtype)
        b, h, w = x.shape
        if gain is None:
            gain = exposure_gain(x, self._positional_black_level(), self.config, intensity)
        else:
            gain = per_image_tensor(gain, b, x, name="gain", hint="")
        if x.device.type != "cpu":
            return self._develop_checked(x, single, gain, 1)
        threads = choose_threads(self.threads)
        # Worker threads over chunks run with one intra-op thread each; otherwise the threads
        # go to PyTorch's intra-op pool.
        intra_op = 1 if self._chunk_count(x, gain) > 1 else threads
        with isp_thread_scope(intra_op):
            return self._develop_checked(x, single, gain, threads)

    def _develop_checked(self, x: torch.Tensor, single: bool, gain: torch.Tensor | None, threads: int) -> torch.Tensor:
        h, w = x.shape[-2:]
        if min(h, w) < MIN_FRAME_SIDE:  # small frames: only some configs develop them, the others say so
            try:
                return self._develop(x, single, gain, threads)
            except (RuntimeError, ValueError, IndexError) as err:
                check_frame_side(h, w, err, f"ISP {self.config.base_variant or 'config'}")
                raise
        return self._develop(x, single, gain, threads)

    def _chunk_step(self, x: torch.Tensor) -> int:
        b, h, w = x.shape
        return b if x.is_cuda else max(1, self.chunk_pixels // (h * w))

    def _chunk_count(self, x: torch.Tensor, gain: torch.Tensor | None) -> int:
        """Chunks of the batch on the path that shares them out among worker threads (fused,
        no autograd); 1 on the other paths."""
        if not self.fused or self._needs_grad(x, gain):
            return 1
        return -(-x.shape[0] // self._chunk_step(x))

    @staticmethod
    def _needs_grad(x: torch.Tensor, gain: torch.Tensor | None) -> bool:
        return torch.is_grad_enabled() and (x.requires_grad or (gain is not None and gain.requires_grad))

    def _develop(self, x: torch.Tensor, single: bool, gain: torch.Tensor | None, threads: int = 1) -> torch.Tensor:
        b, h, w = x.shape
        if not self.fused:
            out = self._forward_stages(x, gain)
        else:
            step = self._chunk_step(x)
            chunk_gain = (lambda i: None) if gain is None else (lambda i: gain[i : i + step])  # noqa: E731
            if self._needs_grad(x, gain):
                out = torch.cat([self._forward_fused(x[i : i + step], gain=chunk_gain(i)) for i in range(0, b, step)])
            else:
                # Chunks write straight into one output tensor (no concatenation copy), on
                # `threads` worker threads that each keep their own workspace.
                out = x.new_empty(b, 3, h, w)
                run_chunks(list(range(0, b, step)), threads,
                           lambda i, ws: self._forward_fused(x[i : i + step], out[i : i + step], ws, gain=chunk_gain(i)))
        return out[0] if single else out

    def _forward_stages(self, x: torch.Tensor, gain: torch.Tensor | None = None) -> torch.Tensor:
        cfg, cam = self.config, self.camera
        return run_stages(
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
            exposure_gain=gain,
        )

    def _forward_fused(
        self, x: torch.Tensor, out: torch.Tensor | None = None, workspace: dict | None = None,
        gain: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Fused chain on ``x (b, H, W)``; writes into ``out (b, 3, H, W)`` when given (no autograd).

        ``gain``: the exposure gain ``(b,)`` of these images, applied to the black-subtracted
        planes (None: no exposure stage).

        ``workspace`` keeps the large intermediate buffers from one chunk to the next: freshly
        allocated memory costs a page fault per 4 KiB on first touch, which was a third of the
        run time on CPU.
        """

        def buffer(name: str, *shape: int) -> torch.Tensor:
            if workspace is None:
                return x.new_empty(*shape)
            t = workspace.get(name)
            if t is None or t.shape[1:] != shape[1:] or t.shape[0] < shape[0]:
                t = workspace[name] = x.new_empty(*shape)
            return t[: shape[0]]

        b, h, w = x.shape
        canvas, (oy, ox) = rggb_canvas(x, pattern_colours(self.config.pattern), self.margin)
        hc, wc = canvas.shape[-2] // 2, canvas.shape[-1] // 2
        # Split into the four sites and subtract the black level in one pass.
        sites = canvas.view(b, hc, 2, wc, 2).permute(0, 2, 4, 1, 3)
        bl_sites = self.black_level.view(1, 2, 2, 1, 1)
        inplace = out is not None
        if inplace:
            planes = torch.sub(sites, bl_sites, out=buffer("planes", b, 2, 2, hc, wc)).view(b, 4, hc, wc)
        else:
            planes = (sites - bl_sites).reshape(b, 4, hc, wc)
        if gain is not None:
            g = gain.view(b, 1, 1, 1)
            planes = planes.mul_(g) if inplace else planes * g
        r, g, bl = demosaic_site_planes(planes, self.config.demosaic)
        # Per site: `rgb_sites[s]` (B, 3, h/2, w/2) = rgb - q*Y (white balance, colour matrix and
        # luma folded into one 3x3), and luma Y goes to the full-resolution image `y`.
        rgb_sites = []
        y = buffer("y", b, 2 * hc, 2 * wc)
        y_sites = y.view(b, hc, 2, wc, 2)
        for s in range(4):
            dest = buffer(f"site{s}", b, 4, hc, wc) if inplace else None
            rows = []
            for i, row in enumerate(self._mix):
                if inplace:
                    acc = torch.mul(r[s], row[0], out=dest[:, i])
                    acc.add_(g[s], alpha=row[1]).add_(bl[s], alpha=row[2])
                else:
                    acc = r[s] * row[0] + g[s] * row[1] + bl[s] * row[2]
                rows.append(acc)
            if inplace:
                y_sites[:, :, s // 2, :, s % 2].copy_(dest[:, 3])
                rgb_sites.append(dest[:, :3])
            else:
                y_sites[:, :, s // 2, :, s % 2] = rows[3]
                rgb_sites.append(torch.stack(rows[:3], dim=1))
        # The luma filters run without padding: the canvas margin already holds every pixel
        # they need, so f(Y) covers the canvas minus `_luma_shrink` on each side.
        for fn in self._luma_valid:
            y = fn(y)
        fy, fx = oy - self._luma_shrink, ox - self._luma_shrink
        # Add q*f(Y) per site (contiguous), then interleave the sites into the output frame.
        if out is None:
            out = x.new_empty(b, 3, h, w)
        out_sites = out.view(b, 3, h // 2, 2, w // 2, 2)
        q = self.q.view(1, 3, 1, 1)
        for a in range(2):
            for c in range(2):
                s = ((a + oy) % 2) * 2 + (c + ox) % 2
                ty, tx = (a + oy) // 2, (c + ox) // 2
                f = y[:, fy + a : fy + a + h : 2, fx + c : fx + c + w : 2].unsqueeze(1)
                m = rgb_sites[s][..., ty : ty + h // 2, tx : tx + w // 2]
                if inplace:
                    out_sites[:, :, :, a, :, c].copy_(m.addcmul_(f, q))
                else:
                    out_sites[:, :, :, a, :, c] = m + f * q
        return gamma_encode(out, self.config.gamma, inplace=inplace)
