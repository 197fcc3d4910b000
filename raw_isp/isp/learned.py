"""The learned ISP: a small U-Net from the four Bayer planes to RGB, trained with the task model.

This is the study's learned pipeline (``--isp learned`` in the training scripts). The network
works on the quarter-resolution CFA planes and predicts, for every 2x2 tile, a correction of
the three colours at each of its four sites; ``pixel_shuffle`` puts them back at full size,
where they are added to a fixed, cheap *base view* (by default bilinear demosaicing and gamma)
so that training starts from a sensible image instead of noise.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from .cfa import check_pattern, split_planes
from .config import CAMERAS, ISP_VARIANTS, CameraPreset, ISPConfig
from .demosaic import DEMOSAIC_METHODS, rggb_site_order
from .exposure import check_exposure, exposure_gain
from .static import StaticISP, as_raw_tensor

__all__ = ["LearnedISP"]

_INIT_KEYS = ("base_channels", "depth", "pattern", "base", "camera", "exposure")


class _PlaceAddClamp(torch.autograd.Function):
    """``clamp(base + pixel_shuffle(res, 2), 0, 1)``; the clamp keeps the gradients that pull back.

    ``base (B, 3, H, W)``, ``res (B, 12, H/2, W/2)`` with channel ``4c + 2dy + dx`` = colour
    ``c`` at offset ``(dy, dx)`` of each 2x2 tile. The sum is written into ``base`` when that
    is allowed (``inplace``), so the forward pass allocates nothing at full resolution: on
    this kind of machine a fresh 25 MB tensor costs more than the arithmetic on it.

    Gradient: a plain clamp gives zero gradient wherever the residual pushed a pixel out of
    range, so the loss could never pull that pixel back. Here the gradient at a clamped pixel
    (output exactly 0 or 1) is kept when a descent step (``y -= lr * grad``) moves it back
    into [0, 1] (``grad < 0`` at 0, ``grad > 0`` at 1) and dropped when it would push further
    out. Inside the range the clamp is the identity.
    """

    @staticmethod
    def forward(ctx, base: torch.Tensor, res: torch.Tensor, inplace: bool) -> torch.Tensor:
        b, _, h, w = res.shape
        tiles = res.view(b, 3, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)  # (b, 3, h, dy, w, dx)
        if inplace:
            y = base.view(b, 3, h, 2, w, 2).add_(tiles)
        else:
            y = base.reshape(b, 3, h, 2, w, 2) + tiles
        y.clamp_(0.0, 1.0)
        if inplace:
            ctx.mark_dirty(base)
            out = base
        else:
            out = y.view(b, 3, 2 * h, 2 * w)
        ctx.save_for_backward(out)
        ctx.res_shape = (b, h, w)
        ctx.res_channels_last = res.dim() == 4 and res.is_contiguous(memory_format=torch.channels_last)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (out,) = ctx.saved_tensors
        b, h, w = ctx.res_shape
        blocked = (out == 0).logical_and_(grad > 0).logical_or_((out == 1).logical_and_(grad < 0))
        grad_base = grad_res = None
        if ctx.needs_input_grad[1]:
            # The mask and the inverse pixel shuffle in one pass, straight into res's layout.
            grad_res = grad.new_empty(b, 3, 2, 2, h, w)
            torch.where(
                blocked.view(b, 3, h, 2, w, 2).permute(0, 1, 3, 5, 2, 4),
                grad.new_zeros(()),
                grad.reshape(b, 3, h, 2, w, 2).permute(0, 1, 3, 5, 2, 4),
                out=grad_res,
            )
            grad_res = grad_res.view(b, 12, h, w)
            if ctx.res_channels_last:
                # One conversion here saves one in each of the head's conv and upsampling backwards.
                grad_res = grad_res.contiguous(memory_format=torch.channels_last)
        if ctx.needs_input_grad[0]:
            grad_base = torch.where(blocked, 0.0, grad)
        return grad_base, grad_res, None


def _conv(cin: int, cout: int, stride: int = 1) -> torch.nn.Conv2d:
    return torch.nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


def _base_config(base, pattern: str) -> ISPConfig | None:
    """The static ISP behind the base view, with the learned ISP's pattern."""
    if base is None:
        return None
    if isinstance(base, str):
        if base in DEMOSAIC_METHODS:
            return ISPConfig(demosaic=base, sharpening=None, denoising=None, pattern=pattern)
        if base in ISP_VARIANTS:
            return ISPConfig.from_variant(base, pattern=pattern)
        raise ValueError(
            f"base={base!r} is unknown; expected None, a demosaicing method {DEMOSAIC_METHODS}, "
            f"an ISP variant such as 'bi_s_ga', or an ISPConfig dict"
        )
    if isinstance(base, Mapping):
        given = base.get("pattern", pattern)
        if check_pattern(given) != pattern:
            raise ValueError(f"base has pattern {given!r} but the learned ISP has pattern={pattern!r}")
        return ISPConfig.from_dict({**base, "pattern": pattern})
    raise TypeError(f"base must be None, a method or variant name, or a dict, got {type(base).__name__}")


class _Up(torch.nn.Module):
    """U-Net up step: ``conv3x3(concat(upsample(deep), skip))`` (+ ReLU), with the conv factorised.

    A conv over a concatenation is the sum of a conv over each part. The part on the deep
    features runs *before* the x2 upsampling (bilinear), at a quarter of the pixels: at the
    planes' resolution this is what keeps the network cheap. ``deep (B, c_deep, h, w)``,
    ``skip (B, c_skip, 2h, 2w)`` -> ``(B, c_out, 2h, 2w)``.
    """

    def __init__(self, c_deep: int, c_skip: int, c_out: int, relu: bool):
        super().__init__()
        self.deep = torch.nn.Conv2d(c_deep, c_out, 3, padding=1, bias=False)
        self.skip = _conv(c_skip, c_out)
        self.relu = relu

    def forward(self, deep: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        up = F.interpolate(self.deep(deep), scale_factor=2.0, mode="bilinear", align_corners=False)
        out = self.skip(skip).add_(up)
        return out.relu_() if self.relu else out


class LearnedISP(torch.nn.Module):
    """A learnable ISP: raw Bayer mosaic ``(B, H, W)`` -> RGB ``(B, 3, H, W)`` in [0, 1].

    Args:
        base_channels: feature channels of the first U-Net level below the planes (``C``);
            each further level doubles them.
        depth: number of stride-2 levels below the planes (>= 1).
        pattern: Bayer pattern of the input, "RGGB", "BGGR", "GRBG" or "GBRG".
        base: the fixed view the network corrects:
            ``"bilinear"`` (default), ``"malvar2004"`` or ``"menon2007"`` - that demosaicing,
            then (with the camera) black level, white balance and colour matrix, clip to
            [0, 1] and gamma 1/2.2; with the neutral camera this is just demosaic + gamma;
            an ISP variant name such as ``"bi_s_ga"`` (:data:`raw_isp.ISP_VARIANTS`) or an
            :class:`~raw_isp.ISPConfig` dict - that static pipeline (:class:`~raw_isp.StaticISP`);
            ``None`` - no base view: the output starts as mid-grey (0.5) and the network
            learns the whole ISP.
        camera: camera preset of the base view: "neutral" (default), "drone", "microscopy"
            (:data:`raw_isp.CAMERAS`) or a :class:`~raw_isp.CameraPreset` dict.
        exposure: None (default; the base config's setting, None for the named bases),
            ``"metadata"``, ``"auto"`` or a positive fixed gain (:mod:`raw_isp.isp.exposure`).
            With a setting, the base view goes through the same exposure stage as
            :class:`~raw_isp.StaticISP` (so training starts from an exposure-correct view), and
            the network sees the mosaic brought to the same exposure,
            ``black_level + gain * (raw - black_level)`` (camera black level), so its input
            does not depend on the light level either. ``forward(raw, *, intensity=None)``
            takes the intensity ratios that "metadata" needs.

    Input: torch tensor or numpy array ``(B, H, W)`` or ``(H, W)``, float in [0, 1] or integer
    16-bit DN (divided by 65535); H and W even. Output: ``(B, 3, H, W)`` (or ``(3, H, W)``) in
    [0, 1], on the parameters' device and in their dtype.

    Data flow, with ``h, w = H/2, W/2``:

    1. ``split_planes`` -> ``(B, 4, h, w)``, reordered to R, G1, G2, B (G1 shares a row with
       R) so that the channels mean the same for every pattern. If ``h`` or ``w`` is not a
       multiple of ``2**depth`` the planes are extended by reflection and the result cropped.
    2. U-Net. Level 0 is the planes themselves; level ``l = 1..depth`` works at
       ``(h, w) / 2**l`` with ``C * 2**(l-1)`` channels: a stride-2 conv3x3 + ReLU, then a
       conv3x3 + ReLU. Going up, level ``l + 1`` is upsampled x2 (bilinear), concatenated
       with the skip of level ``l`` and mixed by a conv3x3 + ReLU (no ReLU in the head), the conv
       factorised so that its part on the upsampled features runs before the upsampling
       (see ``_Up``). At level 0 that conv is the output head: 12 channels, colour ``c``
       (R, G, B) at tile site ``s`` (R, G1, G2, B) in channel ``4c + s``.
       Level 0 holds no learned features on purpose: at the planes' resolution each feature
       channel costs about as much as a whole lower level, and the base view already
       carries the full-resolution detail.
    3. The head's sites are put back in positional order and ``pixel_shuffle(2)`` gives the
       residual ``(B, 3, H, W)`` (fused with the addition below, in one pass);
       output = ``clamp(base + residual, 0, 1)``, with the gradient of the clamp kept where
       it pulls a value back into range (see ``_PlaceAddClamp``), so no pixel goes silent.
       The head starts at zero, so at initialisation the output equals the base view
       exactly (0.5 without a base); in the first backward pass only the head gets a
       gradient, every parameter after that. (A sigmoid in logit space would also bound
       the output, but it cannot start exactly at a base view that touches 0 or 1 - dark
       and saturated pixels - and its gradient vanishes there.)

    Parameter count: 25,900 with the defaults (C=16, depth=2); 7,412 for (8, 2), 109,004
    for (16, 3), 97,436 for (32, 2).

    The base view always runs in float32 (float64 if the parameters are float64) whatever the
    parameters' dtype, and holds no parameters or state; the U-Net runs in the parameters'
    dtype (or under autocast). ``to_dict()`` / ``from_dict()`` give the JSON-able constructor
    arguments, so a checkpoint is ``isp_config.json`` + the ``state_dict``.
    """

    def __init__(
        self,
        base_channels: int = 16,
        depth: int = 2,
        pattern: str = "RGGB",
        base: str | Mapping | None = "bilinear",
        camera: str | Mapping | CameraPreset = "neutral",
        exposure: str | float | None = None,
    ):
        super().__init__()
        for name, value in (("base_channels", base_channels), ("depth", depth)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        self.pattern = check_pattern(pattern)
        exposure = check_exposure(exposure)
        base_config = _base_config(base, self.pattern)
        self.base_config = None if base_config is None else base_config.with_exposure(exposure)
        # Where the exposure settings live: the base config, or (no base view) a plain one.
        self.exposure_config = self.base_config or ISPConfig(pattern=self.pattern).with_exposure(exposure)
        self.camera = CameraPreset.parse(camera)
        self._config = {
            "base_channels": base_channels,
            "depth": depth,
            "pattern": self.pattern,
            "base": dict(base) if isinstance(base, Mapping) else base,
            "camera": self._camera_spec(camera),
        }
        if exposure is not None:  # left out otherwise: the same dict as before the setting existed
            self._config["exposure"] = exposure
        self.depth = depth
        # Input site of each R, G1, G2, B plane, and where each of them goes back in the 2x2 tile.
        order = rggb_site_order(self.pattern)
        self._site_order = order
        place = [order.index(p) for p in range(4)]
        self.register_buffer("_head_to_positional", torch.tensor([4 * c + place[p] for c in range(3) for p in range(4)]),
                             persistent=False)
        self._identity_sites = place == [0, 1, 2, 3]

        chans = [4] + [base_channels * 2**i for i in range(depth)]
        self.down = torch.nn.ModuleList(
            torch.nn.Sequential(_conv(chans[l], chans[l + 1], 2), torch.nn.ReLU(inplace=True),
                                _conv(chans[l + 1], chans[l + 1]), torch.nn.ReLU(inplace=True))
            for l in range(depth)
        )
        # up[i] joins level i+1 to the skip of level i (i = depth-1 .. 1); the head joins
        # level 1 to the planes and gives the 12 output channels. It starts at zero.
        self.up = torch.nn.ModuleList(_Up(chans[l + 1], chans[l], chans[l], relu=True) for l in range(1, depth))
        self.head = _Up(chans[1], 4, 12, relu=False)
        for conv in (self.head.deep, self.head.skip):
            torch.nn.init.zeros_(conv.weight)
        torch.nn.init.zeros_(self.head.skip.bias)
        # The base view lives outside the module tree so that .to(dtype) cannot lower its precision.
        self._base_isp: list[StaticISP] = []

    @staticmethod
    def _camera_spec(camera) -> str | dict:
        if isinstance(camera, str):
            CameraPreset.parse(camera)  # validates the name
            return camera
        preset = CameraPreset.parse(camera)
        if preset.name in CAMERAS and CAMERAS[preset.name] == preset:
            return preset.name
        return preset.to_dict()

    # ------------------------------------------------------------------ configuration

    @property
    def config(self) -> dict:
        """The constructor arguments, JSON-able (a copy)."""
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self._config.items()}

    def to_dict(self) -> dict:
        """Constructor arguments as a JSON-able dict; :meth:`from_dict` rebuilds the module."""
        return self.config

    @classmethod
    def from_dict(cls, d: Mapping) -> "LearnedISP":
        """A fresh module from :meth:`to_dict`'s dict (load the weights with ``load_state_dict``)."""
        if not isinstance(d, Mapping):
            raise TypeError(f"LearnedISP config must be a dict, got {type(d).__name__}")
        unknown = set(d) - set(_INIT_KEYS)
        if unknown:
            raise ValueError(f"unknown LearnedISP config keys {sorted(unknown)}; expected some of {list(_INIT_KEYS)}")
        return cls(**dict(d))

    def extra_repr(self) -> str:
        base = self._config["base"]
        return (f"base_channels={self._config['base_channels']}, depth={self.depth}, pattern={self.pattern}, "
                f"base={base!r}, camera={self.camera.name}, exposure={self.exposure_config.exposure!r}")

    # ------------------------------------------------------------------ forward

    def planes(self, x: torch.Tensor) -> torch.Tensor:
        """The network's input: a mosaic ``(B, H, W)`` as planes ``(B, 4, H/2, W/2)`` in R, G1, G2, B order."""
        return split_planes(x)[:, self._site_order]

    def base_view(self, x: torch.Tensor, gain: torch.Tensor | None = None) -> torch.Tensor | None:
        """The fixed view ``(B, 3, H, W)`` in [0, 1] of a float mosaic ``(B, H, W)``, or None without a base.

        ``gain``: the exposure gain ``(B,)`` (:meth:`exposure_gain`); needed when the base
        config has an exposure setting.
        """
        if self.base_config is None:
            return None
        dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
        isp = self._base_isp[0] if self._base_isp else None
        if isp is None or isp.device != x.device or isp.dtype != dtype:
            # One chunk: the batch is already on the way to a network, and many small ops on a
            # busy CPU cost more than the cache misses that chunking avoids.
            isp = StaticISP(self.base_config, camera=self.camera, device=x.device, dtype=dtype, chunk_pixels=1 << 62)
            self._base_isp[:] = [isp]
        if gain is None and self.base_config.exposure is not None:
            raise ValueError("base_view: this learned ISP has an exposure setting; pass gain=isp.exposure_gain(x, ...)")
        return isp(x.to(dtype), gain=None if gain is None else gain.to(dtype))

    def exposure_gain(self, x: torch.Tensor, intensity=None) -> torch.Tensor | None:
        """The exposure gain ``(B,)`` of float mosaics ``(B, H, W)`` (None without an exposure setting).

        The same gain as :class:`~raw_isp.StaticISP` with this ISP's exposure setting and camera.
        """
        bl = torch.tensor(self.camera.black_level, dtype=x.dtype, device=x.device)
        return exposure_gain(x, bl, self.exposure_config, intensity)

    def exposed(self, x: torch.Tensor, gain: torch.Tensor | None) -> torch.Tensor:
        """The network's mosaic, ``black_level + gain * (x - black_level)`` per CFA site (``x`` without a gain)."""
        if gain is None:
            return x
        b, h, w = x.shape
        bl = torch.tensor(self.camera.black_level, dtype=x.dtype, device=x.device).view(1, 1, 2, 1, 2)
        sites = x.reshape(b, h // 2, 2, w // 2, 2)
        return (bl + gain.to(x.dtype).view(b, 1, 1, 1, 1) * (sites - bl)).reshape(b, h, w)

    def residual(self, planes: torch.Tensor) -> torch.Tensor:
        """U-Net on planes ``(B, 4, h, w)`` (R, G1, G2, B) -> ``(B, 12, h, w)``, channel ``4c + s``."""
        h, w = planes.shape[-2:]
        m = 2**self.depth
        pad_h, pad_w = -h % m, -w % m
        x = planes
        if pad_h or pad_w:
            mode = "reflect" if pad_h < h and pad_w < w else "replicate"
            x = F.pad(x, (0, pad_w, 0, pad_h), mode=mode)
        # channels_last: about twice as fast for these small convolutions on CPU (oneDNN).
        x = x.contiguous(memory_format=torch.channels_last)
        skips = [x]
        for block in self.down:
            x = block(x)
            skips.append(x)
        skips.pop()
        for block in reversed(self.up):
            x = block(x, skips.pop())
        return self.head(x, skips.pop())[..., :h, :w]

    def forward(self, raw, *, intensity=None) -> torch.Tensor:
        p = self.head.skip.weight
        x, single = as_raw_tensor(raw, device=p.device, dtype=torch.float64 if p.dtype == torch.float64 else torch.float32)
        gain = self.exposure_gain(x, intensity)
        base = self.base_view(x, gain)
        res = self.residual(self.planes(self.exposed(x, gain)).to(p.dtype))
        if not self._identity_sites:
            # Colour-site channels (R, G1, G2, B) back to positional sites of the 2x2 tile.
            res = res.index_select(1, self._head_to_positional)
        b, _, h, w = res.shape
        if base is None:
            base = x.new_full((b, 3, 2 * h, 2 * w), 0.5)
        # Writing into the base view is safe unless autograd needs it (a raw that requires grad).
        inplace = not base.requires_grad and base.is_contiguous()
        out = _PlaceAddClamp.apply(base, res, inplace).to(p.dtype)
        return out[0] if single else out
