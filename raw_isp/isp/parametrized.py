"""The ISP with learnable parameters, for drift forensics and drift optimisation."""

from __future__ import annotations

from collections.abc import Iterable

import dataclasses

import torch

from .config import CameraPreset, ISPConfig
from .exposure import EXPOSURE_MODES, exposure_gain
from .filters import SHARPEN_KERNEL, conv2d_same, gaussian_kernel1d
from .static import as_raw_tensor, config_denoise_fn, run_stages

__all__ = ["ParametrizedISP", "PARAMETER_GROUPS"]

#: Names of the learnable parameter groups (each is also the name of its parameter), in the
#: order of the stages.
PARAMETER_GROUPS = (
    "black_level", "exposure", "white_balance", "colour_matrix", "sharpen_kernel", "blur_kernel", "gamma",
)  # fmt: skip


def _sharpen_init(config: ISPConfig) -> torch.Tensor:
    """Correlation kernel equal to the config's sharpening stage (identity 3x3 if none)."""
    if config.sharpening == "kernel":
        return torch.tensor(config.sharpen_kernel, dtype=torch.float64)
    if config.sharpening == "sharpening_filter":
        return torch.tensor(SHARPEN_KERNEL, dtype=torch.float64).flip(0, 1)
    if config.sharpening == "unsharp_masking":
        g = gaussian_kernel1d(config.sharpen_radius, dtype=torch.float64)
        k = -config.sharpen_amount * torch.outer(g, g)
        c = g.numel() // 2
        k[c, c] += 1.0 + config.sharpen_amount
        return k
    k = torch.zeros(3, 3, dtype=torch.float64)
    k[1, 1] = 1.0
    return k


def _default_exposure(module, state_dict, prefix, *args) -> None:
    # State dicts saved before the exposure stage existed have no "exposure": they load as 0
    # stops, which is exactly the view they were trained with.
    key = prefix + "exposure"
    if key not in state_dict and prefix + "gamma" in state_dict:
        state_dict[key] = torch.zeros_like(module.exposure)


class ParametrizedISP(torch.nn.Module):
    """The static ISP chain with learnable black level, exposure, white balance, colour matrix,
    sharpening kernel, blur kernel and gamma.

    Initialised from a static config and camera, it computes the same view as
    :class:`raw_isp.StaticISP` (to float rounding) until its parameters move. The demosaicing
    method stays fixed (it has no continuous parameters); a Gaussian (or explicit "kernel")
    denoiser becomes a learnable blur kernel, a median or FFT denoiser stays fixed.
    :meth:`static_config` writes the current parameters back as a config and camera that
    :class:`raw_isp.StaticISP` and :class:`raw_isp.RawISPImageProcessor` replay exactly.

    Args:
        config: variant name, :class:`ISPConfig` or dict.
        camera: preset name, :class:`CameraPreset` or dict (initial colour parameters).
        learn: which of :data:`PARAMETER_GROUPS` are trainable; the others are kept as
            parameters with ``requires_grad=False``. Default: all.
        dtype: float type of the parameters (float32 by default).
        exposure: None (default: the config's setting), ``"metadata"``, ``"auto"`` or a positive
            fixed gain, merged into the config as :class:`raw_isp.StaticISP` does.

    Parameters (normalised units): ``black_level (4,)`` per positional CFA site;
    ``exposure ()`` a log-gain in stops (EV); ``white_balance (3,)``; ``colour_matrix (3, 3)``;
    ``sharpen_kernel (k, k)`` correlation kernel on luma; ``blur_kernel (k, k)`` (only with
    Gaussian or "kernel" denoising); ``gamma ()``. The kernels are applied projected onto their
    initial sums (a learned kernel changes shape, not the brightness of a flat patch).
    :meth:`optimizer_groups` gives the black level a rate divided by the exposure gain, so
    one optimiser step means the same change of the developed view at every light level.

    Exposure: the gain on the black-subtracted mosaic is ``2 ** exposure`` times the gain of the
    config's exposure setting (1 without one; ``exposure_scale / intensity`` with "metadata";
    the auto-exposure gain, computed from the raw and the *learnable* black level, with "auto";
    the fixed gain with a number). The parameter starts at 0, so the initial view is the
    setting's view exactly; training learns a correction on top of the mode, in stops (one
    value for all images: with "metadata" and "auto" the per-image part stays with the mode).

    ``forward(raw, return_stages=False, *, intensity=None)``: raw ``(B, H, W)`` or ``(H, W)``
    in [0, 1] (or uint16 DN) -> RGB ``(B, 3, H, W)`` in [0, 1]; ``intensity``: the intensity
    ratio of each image (a number or ``(B,)``), required with ``exposure="metadata"``, ignored
    otherwise. With ``return_stages`` also a dict of every
    intermediate stage (:data:`raw_isp.isp.static.STAGE_NAMES`), each cropped to the frame.
    With ``return_stages`` the gradient of each stage, cropped to the frame, is stored in
    ``isp.stage_grads[name]`` by the next ``backward()``, so gradients can be inspected per stage.
    """

    def __init__(
        self, config="bi_s_ga", camera="neutral", learn: Iterable[str] | None = None, dtype=torch.float32, exposure=None
    ):
        super().__init__()
        self.config = ISPConfig.parse(config).with_exposure(exposure)
        cam = CameraPreset.parse(camera)
        self.camera_name = cam.name
        learn = set(PARAMETER_GROUPS if learn is None else learn)
        unknown = learn - set(PARAMETER_GROUPS)
        if unknown:
            raise ValueError(f"unknown parameter groups {sorted(unknown)}; expected some of {PARAMETER_GROUPS}")
        cfg = self.config
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64 (see StaticISP), got {dtype}")

        def param(name, value):
            p = torch.nn.Parameter(torch.as_tensor(value, dtype=dtype).clone(), requires_grad=name in learn)
            self.register_parameter(name, p)

        param("black_level", cam.black_level)
        param("exposure", 0.0)
        param("white_balance", cam.white_balance)
        param("colour_matrix", torch.tensor(cam.colour_matrix, dtype=torch.float64).view(3, 3))
        param("sharpen_kernel", _sharpen_init(cfg))
        if cfg.denoising == "gaussian":
            g = gaussian_kernel1d(cfg.gaussian_sigma, dtype=torch.float64)
            param("blur_kernel", torch.outer(g, g))
        elif cfg.denoising == "kernel":
            param("blur_kernel", torch.tensor(cfg.blur_kernel, dtype=torch.float64))
        else:
            self.blur_kernel = None
        param("gamma", cfg.gamma)
        # The kernels' sums (their gain on a flat patch) stay at their initial values: the
        # forward pass projects each learned kernel onto that sum (see _kernel), so sharpening
        # and blur learn a shape while brightness stays with exposure and white balance.
        self._kernel_sums = {name: float(getattr(self, name).detach().sum())
                             for name in ("sharpen_kernel", "blur_kernel") if getattr(self, name) is not None}
        self._fixed_denoise = None if self.blur_kernel is not None else config_denoise_fn(cfg)
        # Margin: demosaic support plus the radius of the (possibly larger) learnable kernels.
        luma = self.sharpen_kernel.shape[-1] // 2 + (
            self.blur_kernel.shape[-1] // 2 if self.blur_kernel is not None else cfg.denoise_support
        )
        support = cfg.support - cfg.sharpen_support - cfg.denoise_support + luma
        self.margin = support + support % 2
        self.stage_grads: dict[str, torch.Tensor] = {}
        self.register_load_state_dict_pre_hook(_default_exposure)

    def _kernel(self, name: str) -> torch.Tensor:
        """The learnable kernel ``name`` projected onto its initial sum: ``k - (sum(k) - s0) / k.numel()``
        (the identity at initialisation, so the initial view is the static one exactly)."""
        k = getattr(self, name)
        return k - (k.sum() - self._kernel_sums[name]) / k.numel()

    def optimizer_groups(self, lr: float, reference_gain: float = 1.0) -> list[dict]:
        """Optimiser parameter groups of the trainable parameters, in units where one step moves
        the developed view by a similar amount at every light level.

        The black level is subtracted *before* the exposure gain, so a step ``d`` of it moves the
        developed mosaic by ``d * gain``: at ratio 0.01 with metadata exposure (gain 100) a
        hundred times more than at full light. Its rate is therefore ``lr / reference_gain``
        (``reference_gain``: the exposure gain of the training frames, e.g.
        :meth:`exposure_gain` averaged over a batch; 1 without exposure). Every other group
        (exposure in stops, white balance, colour matrix, kernels, gamma) acts after the gain
        and keeps ``lr``. Returns ``[{"params", "lr", "weight_decay": 0, "name"}, ...]``, one
        group per trainable parameter (empty if none is trainable).
        """
        if not (reference_gain > 0 and torch.isfinite(torch.as_tensor(reference_gain))):
            raise ValueError(f"reference_gain must be a positive finite number, got {reference_gain}")
        groups = []
        for name in PARAMETER_GROUPS:
            p = getattr(self, name)
            if p is None or not p.requires_grad:
                continue
            rate = lr / float(reference_gain) if name == "black_level" else lr
            groups.append({"params": [p], "lr": rate, "weight_decay": 0.0, "name": f"isp.{name}"})
        return groups

    def extra_repr(self) -> str:
        return f"config={self.config.variant or self.config}, camera={self.camera_name}, margin={self.margin}"

    def camera_preset(self) -> CameraPreset:
        """The current colour parameters as a :class:`CameraPreset` (detached)."""
        return CameraPreset(
            tuple(self.black_level.detach().cpu().tolist()),
            tuple(self.white_balance.detach().cpu().tolist()),
            tuple(self.colour_matrix.detach().cpu().flatten().tolist()),
            name=f"{self.camera_name}-learned",
        )

    def static_config(self) -> tuple[ISPConfig, CameraPreset]:
        """The current parameters (detached) as a fixed ISP: ``(config, camera)``.

        ``StaticISP(*isp.static_config())(raw)`` equals ``isp(raw)`` to float rounding, on the
        whole frame (both extend the mosaic by the same margin). The config keeps demosaicing
        and pattern, has ``sharpening="kernel"`` with the learned sharpening kernel,
        ``denoising="kernel"`` with the learned blur kernel when there is one (else the fixed
        median / FFT / no denoiser with its settings) and the learned gamma. Kernel weights
        and gamma are stored as Python floats (float32 parameters are kept exactly).
        The learned exposure (stops) is folded into the config's exposure setting: with
        "metadata" or "auto" as ``exposure_scale`` (times the config's), with a fixed gain or
        none as the fixed gain ``exposure = gain * 2 ** exposure`` (None stays None while the
        parameter is exactly 0).

        Raises ValueError if a learned value is not a valid setting (e.g. gamma <= 0 or a
        non-finite weight).
        """
        cfg = self.config
        has_blur = self.blur_kernel is not None
        config = ISPConfig(
            **self._exposure_settings(),
            demosaic=cfg.demosaic,
            pattern=cfg.pattern,
            sharpening="kernel",
            sharpen_kernel=self._kernel("sharpen_kernel").detach().cpu().double().tolist(),
            denoising="kernel" if has_blur else cfg.denoising,
            blur_kernel=self._kernel("blur_kernel").detach().cpu().double().tolist() if has_blur else None,
            median_size=cfg.median_size,
            fft_keep_fraction=cfg.fft_keep_fraction,
            gamma=float(self.gamma.detach()),
        )
        return config, self.camera_preset()

    def _exposure_settings(self) -> dict:
        """The config's exposure fields with the learned stops folded in (see :meth:`static_config`)."""
        cfg = self.config
        factor = 2.0 ** float(self.exposure.detach().double())
        settings = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg) if "exposure" in f.name}
        if cfg.exposure in EXPOSURE_MODES:
            settings["exposure_scale"] = cfg.exposure_scale * factor
        elif cfg.exposure is not None or factor != 1.0:
            settings["exposure"] = (1.0 if cfg.exposure is None else cfg.exposure) * factor
        return settings

    def processor_settings(self) -> dict:
        """``{"isp": config dict, "camera": camera dict}`` of :meth:`static_config`, as JSON
        values, for ``RawISPImageProcessor(**isp.processor_settings(), size=..., ...)``.

        The processor runs the ISP in float32; its output equals this module's float32 output
        to float32 rounding.
        """
        config, camera = self.static_config()
        return {"isp": config.to_dict(), "camera": camera.to_dict()}

    def exposure_gain(self, raw, intensity=None) -> torch.Tensor:
        """The exposure stage's gain per image, ``(B,)`` or a scalar ``()`` without an exposure
        setting: ``2 ** exposure`` times the setting's gain. Differentiable in the parameters."""
        p = self.black_level
        x, _ = as_raw_tensor(raw, device=p.device, dtype=p.dtype)
        return self._gain(x, intensity)

    def _gain(self, x: torch.Tensor, intensity) -> torch.Tensor:
        factor = torch.exp2(self.exposure)
        base = exposure_gain(x, self.black_level, self.config, intensity)
        return factor if base is None else base * factor

    def forward(self, raw, return_stages: bool = False, *, intensity=None):
        p = self.black_level
        x, single = as_raw_tensor(raw, device=p.device, dtype=p.dtype)
        sharpen_kernel = self._kernel("sharpen_kernel")
        sharpen = lambda y: conv2d_same(y, sharpen_kernel, "symmetric")  # noqa: E731
        if self.blur_kernel is not None:
            blur_kernel = self._kernel("blur_kernel")
            denoise = lambda y: conv2d_same(y, blur_kernel, "symmetric")  # noqa: E731
        else:
            denoise = self._fixed_denoise
        result = run_stages(
            x,
            demosaic=self.config.demosaic,
            pattern=self.config.pattern,
            black_level=self.black_level,
            white_balance_gains=self.white_balance,
            colour_matrix=self.colour_matrix,
            sharpen_fn=sharpen,
            denoise_fn=denoise,
            gamma=self.gamma,
            margin=self.margin,
            exposure_gain=self._gain(x, intensity),
            return_stages=return_stages,
            stage_grads=self.stage_grads if return_stages else None,
        )
        if not single:
            return result
        if return_stages:
            rgb, stages = result
            return rgb[0], {k: v[0] for k, v in stages.items()}
        return result[0]

