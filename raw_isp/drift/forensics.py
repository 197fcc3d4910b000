"""Drift forensics: which ISP settings, close to the reference view, hurt a trained model most.

For a fixed task model behind an ISP, :class:`AdversarialISPSearch` moves the parameters of a
:class:`raw_isp.ParametrizedISP` (one parameter group, or all of them) to *raise* the task loss
while a penalty ``lam * D`` keeps the developed view close to the reference view:

    minimise over the group's parameters:   -mean_loss(theta) + lam * D(theta)
    D(theta) = mean over the images of distance(view(theta), view(theta_0))

with Adam for a few full passes over the evaluation batches. ``distance`` is ``1 - SSIM``
(:func:`ssim`) or the mean squared error (``"l2"``), on RGB views in [0, 1].

Selection rule (what makes the reported numbers provable): after every step, and at step 0
(the reference itself, metric ``M_clean``, distance 0), the true metric ``M`` (accuracy or mean
IoU, higher is better, >= 0) and ``D`` are measured on the evaluation data, and the iterate
with the smallest ``M + lam * D`` is kept. Hence

* ``lam = 0``: the attained metric is at most ``M_clean``;
* any ``lam > 0``: ``M + lam * D <= M_clean`` and ``M >= 0`` give ``D <= M_clean / lam``.

Nothing here knows a dataset: the caller gives the reference ISP, a function from views to
logits, and the evaluation batches (raw mosaics in [0, 1] with their labels).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import torch

from ..metrics import classification_scores, confusion_matrix, segmentation_scores
from ..metrics.ssim import ssim
from ..models.modeling import task_outputs
from ..registry import get_task
from ..isp.parametrized import PARAMETER_GROUPS, ParametrizedISP

__all__ = [
    "view_distance",
    "DISTANCES",
    "GROUP_ALIASES",
    "parse_groups",
    "group_parameters",
    "PassResult",
    "SearchResult",
    "AdversarialISPSearch",
]

#: Distance kinds of :func:`view_distance`.
DISTANCES = ("ssim", "l2")
#: Other accepted names of parameter groups (the issue's wording).
GROUP_ALIASES = {"sharpening": "sharpen_kernel", "blur": "blur_kernel", "color_matrix": "colour_matrix"}
#: Adam's step is relative to each parameter's scale: the RMS of its reference values, at least
#: this (black levels are ~1e-5 for some cameras; a step relative to that would never move).
SCALE_FLOOR = 0.05
#: Scales of parameters whose reference value says nothing about their range: the exposure is a
#: log-gain in stops that starts at 0 (a floor of 0.05 stops would move it 0.0025 stops a step).
GROUP_SCALES = {"exposure": 1.0}
#: Gamma is kept at or above this after every step (the ISP needs gamma > 0).
GAMMA_MIN = 0.1


# ---------------------------------------------------------------- distances

def view_distance(x: torch.Tensor, y: torch.Tensor, kind: str = "ssim") -> torch.Tensor:
    """Distance per image between views ``(B, 3, H, W)`` in [0, 1]: ``(B,)``, >= 0 up to rounding.

    ``kind``: ``"ssim"`` -> ``1 - ssim(x, y)`` (0 for equal images, at most 2);
    ``"l2"`` -> mean squared error over channels and pixels (in [0, 1]).
    """
    if kind == "ssim":
        return 1.0 - ssim(x, y)
    if kind == "l2":
        if x.shape != y.shape:
            raise ValueError(f"view_distance: shapes differ, {tuple(x.shape)} and {tuple(y.shape)}")
        return (x - y).square().flatten(1).mean(1)
    raise ValueError(f"distance must be one of {DISTANCES}, got {kind!r}")


# ---------------------------------------------------------------- parameter groups

def _available(isp: ParametrizedISP) -> tuple[str, ...]:
    return tuple(g for g in PARAMETER_GROUPS if getattr(isp, g) is not None)


def parse_groups(spec: str | Iterable[str], isp: ParametrizedISP) -> list[str]:
    """Validate group names for ``isp``: ``"all"``, :data:`raw_isp.PARAMETER_GROUPS` or an alias
    (:data:`GROUP_ALIASES`); a comma-separated string or a list. Returns canonical names, in order,
    without repeats. Raises ``ValueError`` naming an unknown group, or one this ISP does not have
    (``blur_kernel`` exists only with Gaussian denoising)."""
    names = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else [str(s).strip() for s in spec]
    names = [n for n in names if n]
    if not names:
        raise ValueError("groups: give at least one parameter group")
    out: list[str] = []
    for name in names:
        canon = GROUP_ALIASES.get(name, name)
        if canon != "all" and canon not in PARAMETER_GROUPS:
            raise ValueError(f"unknown parameter group {name!r}; expected 'all' or one of {PARAMETER_GROUPS} "
                             f"(aliases {sorted(GROUP_ALIASES)})")
        if canon != "all" and getattr(isp, canon) is None:
            which = isp.config.base_variant or isp.config.denoising
            raise ValueError(f"parameter group {name!r}: this ISP ({which}) has no such parameter; its groups are "
                             f"{_available(isp)}")
        if canon not in out:
            out.append(canon)
    return out


def group_parameters(group: str, isp: ParametrizedISP) -> tuple[str, ...]:
    """Names of the parameters a group moves (``"all"``: every parameter the ISP has)."""
    return _available(isp) if group == "all" else (group,)


# ---------------------------------------------------------------- the search

@dataclass
class PassResult:
    """One full pass over the evaluation data at fixed ISP parameters.

    ``metric``: the task metric (accuracy or mean IoU); ``distance``: mean view distance to the
    reference; ``loss``: mean cross-entropy; ``sample_loss``: ``(N,)`` per image (CPU);
    ``grad_loss`` / ``grad_distance``: gradients of ``loss`` / ``distance`` per parameter name,
    or None when not computed.
    """

    metric: float
    distance: float
    loss: float
    sample_loss: torch.Tensor
    grad_loss: dict[str, torch.Tensor] | None = None
    grad_distance: dict[str, torch.Tensor] | None = None


@dataclass
class SearchResult:
    """The outcome of one adversarial search (one group, one ``lam``).

    ``attained`` / ``distance`` / ``loss``: metric, mean distance and mean loss at the selected
    iterate ``step`` (0 = the reference); ``clean`` / ``loss_clean`` at the reference;
    ``history``: one dict per iterate (``step``, ``metric``, ``distance``, ``loss``,
    ``objective``); ``state``: the selected parameters (detached, CPU).
    """

    group: str
    lam: float
    distance_kind: str
    metric_name: str
    clean: float
    attained: float
    distance: float
    loss_clean: float
    loss: float
    step: int
    history: list[dict[str, float]] = field(default_factory=list)
    state: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def bound(self) -> float | None:
        """``clean / lam``, the distance bound of the selection rule (None for ``lam = 0``)."""
        return self.clean / self.lam if self.lam > 0 else None


#: ``(raw, labels)`` or ``(raw, labels, intensity)`` (see :class:`AdversarialISPSearch`).
Batch = tuple[torch.Tensor, ...]


class AdversarialISPSearch:
    """Adversarial search over :class:`ParametrizedISP` parameters for a fixed task model.

    Args:
        reference: the ISP the model was trained with, as a ParametrizedISP (not modified).
        logits_fn: RGB views ``(B, 3, H, W)`` in [0, 1] -> logits ``(B, K)`` (classification) or
            ``(B, K, h, w)`` (segmentation; upsampled bilinearly to the label size, as the
            training scripts evaluate). Differentiable; its own weights are not changed.
        batches: the evaluation data, a sequence of ``(raw, labels)`` or ``(raw, labels,
            intensity)``: raw ``(B, H, W)`` float in [0, 1], labels ``(B,)`` or ``(B, H, W)``
            int64, intensity ``(B,)`` the frames' light ratios (passed to the ISP, which needs
            them with ``exposure="metadata"``; None or left out: not passed), on the device of
            ``reference``.
        task: ``"classification"`` or ``"segmentation"``.
        num_labels: number of classes ``K``.
        distance: ``"ssim"`` or ``"l2"`` (:func:`view_distance`).
        metric: key of :func:`raw_isp.metrics.classification_scores` /
            :func:`~raw_isp.metrics.segmentation_scores` (default: the task's main metric in
            the registry, ``macro_f1`` / ``mean_iou``);
            higher must be better and values must be >= 0.
        ignore_index: label left out of segmentation metrics (as the evaluate module does).

    The reference pass (metric ``clean``, reference views, gradients) is made on construction.
    Passes are cached by the exact parameter values, so iterates shared between searches (the
    reference; the first step, which does not depend on ``lam``) are computed once.
    """

    def __init__(self, reference: ParametrizedISP, logits_fn: Callable[[torch.Tensor], torch.Tensor],
                 batches: Sequence[Batch], task: str, num_labels: int, distance: str = "ssim",
                 metric: str | None = None, ignore_index: int = 255) -> None:
        self.dense = get_task(task).dense  # ValueError naming the tasks for an unknown one
        if distance not in DISTANCES:
            raise ValueError(f"distance must be one of {DISTANCES}, got {distance!r}")
        if not batches:
            raise ValueError("batches: the evaluation data is empty")
        self.task, self.num_labels, self.distance_kind = task, int(num_labels), distance
        self.metric_name = metric or get_task(task).main_metric
        self.ignore_index = ignore_index
        self.logits_fn = logits_fn
        self.batches = [(b[0], b[1], b[2] if len(b) > 2 else None) for b in batches]
        self.num_samples = sum(int(raw.shape[0]) for raw, _, _ in self.batches)
        self.reference = reference
        self.parameter_names = _available(reference)
        self._probe = copy.deepcopy(reference)  # the module each pass runs, parameters loaded into it
        for p in self._probe.parameters():
            p.requires_grad_(True)
        self.reference_state = self._state_of(reference)
        self._reference_views: list[torch.Tensor] | None = None
        self._cache: dict[bytes, PassResult] = {}
        self.passes = 0  # full passes over the data so far (cache misses)
        self.clean = self.evaluate(self.reference_state, grad_loss=True)

    # ------------------------------------------------------------ passes

    def _state_of(self, isp: ParametrizedISP) -> dict[str, torch.Tensor]:
        return {n: getattr(isp, n).detach().clone() for n in self.parameter_names}

    def _key(self, state: dict[str, torch.Tensor]) -> bytes:
        return b"".join(state[n].detach().cpu().contiguous().numpy().tobytes() for n in self.parameter_names)

    def _outputs(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-image cross-entropy ``(B,)`` and predictions (as the training scripts evaluate)."""
        return task_outputs(logits, labels, self.task)

    def _score(self, cm) -> float:
        scores = segmentation_scores(cm) if self.dense else classification_scores(cm)
        if self.metric_name not in scores:
            raise ValueError(f"metric {self.metric_name!r} is not one of {sorted(scores)}")
        return float(scores[self.metric_name])

    def evaluate(self, state: dict[str, torch.Tensor], grad_loss: bool = False,
                 grad_distance: bool = False) -> PassResult:
        """Metric, distance, loss (and the requested gradients) at the parameters ``state``.

        The first call (from the constructor) is the reference pass: it stores the reference
        views, and its distance is 0 by definition (the views are the reference views), with a
        zero distance gradient (the distance is at its minimum there).
        """
        key = self._key(state)
        hit = self._cache.get(key)
        if hit is not None and (hit.grad_loss is not None or not grad_loss) and (
                hit.grad_distance is not None or not grad_distance):
            return hit
        first = self._reference_views is None
        self.passes += 1
        want_grad = grad_loss or grad_distance
        params = dict(self._probe.named_parameters())
        with torch.no_grad():
            for n in self.parameter_names:
                params[n].copy_(state[n])
        names = list(self.parameter_names)
        tensors = [params[n] for n in names]
        g_loss = [torch.zeros_like(t) for t in tensors] if grad_loss else None
        g_dist = [torch.zeros_like(t) for t in tensors] if grad_distance else None
        cm = None
        losses, dists = [], []
        refs = [] if first else self._reference_views
        n_total = self.num_samples
        for i, (raw, labels, intensity) in enumerate(self.batches):
            with torch.set_grad_enabled(want_grad):
                views = self._probe(raw) if intensity is None else self._probe(raw, intensity=intensity)
                if first:
                    refs.append(views.detach())
                    dist = torch.zeros(views.shape[0], dtype=views.dtype, device=views.device)
                else:
                    dist = view_distance(views, refs[i], self.distance_kind).clamp_min(0.0)
                sample_loss, preds = self._outputs(self.logits_fn(views), labels)
            if grad_loss:
                grads = torch.autograd.grad(sample_loss.sum() / n_total, tensors,
                                            retain_graph=grad_distance and not first, allow_unused=True)
                for acc, g in zip(g_loss, grads):
                    if g is not None:
                        acc += g
            if grad_distance and not first:
                grads = torch.autograd.grad(dist.sum() / n_total, tensors, allow_unused=True)
                for acc, g in zip(g_dist, grads):
                    if g is not None:
                        acc += g
            batch_cm = confusion_matrix(preds.detach(), labels,
                                        num_labels=self.num_labels,
                                        ignore_index=self.ignore_index if self.dense else None)
            batch_cm = batch_cm.cpu().numpy() if isinstance(batch_cm, torch.Tensor) else batch_cm
            cm = batch_cm if cm is None else cm + batch_cm
            losses.append(sample_loss.detach().double().cpu())
            dists.append(dist.detach().double().cpu())
        if first:
            self._reference_views = refs
        sample_loss = torch.cat(losses)
        result = PassResult(
            metric=self._score(cm),
            distance=float(torch.cat(dists).mean()),
            loss=float(sample_loss.mean()),
            sample_loss=sample_loss,
            grad_loss=dict(zip(names, g_loss)) if g_loss is not None else None,
            grad_distance=dict(zip(names, g_dist)) if g_dist is not None else None,
        )
        self._cache[key] = result
        return result

    # ------------------------------------------------------------ search

    def scales(self) -> dict[str, float]:
        """Each parameter's scale: RMS of its reference values, at least :data:`SCALE_FLOOR`
        (the exposure log-gain: 1 stop, :data:`GROUP_SCALES`)."""
        return {n: max(float(t.double().square().mean().sqrt()), SCALE_FLOOR, GROUP_SCALES.get(n, 0.0))
                for n, t in self.reference_state.items()}

    def search(self, group: str, lam: float, steps: int = 5, lr: float = 0.05) -> SearchResult:
        """Adversarial search in one parameter ``group`` (or ``"all"``) with penalty weight ``lam``.

        ``steps`` Adam updates (``betas`` (0.9, 0.999)); each step's gradient is that of
        ``-loss + lam * distance`` over all evaluation batches (the reference's distance gradient
        is 0). ``lr`` is relative: parameter ``p`` moves by about ``lr * scale(p)`` per step
        (:meth:`scales`). Gamma is projected to ``>= GAMMA_MIN``; a non-finite iterate ends the
        search. The iterate with the smallest ``metric + lam * distance`` is returned (ties: the
        smaller distance, then the earlier step), see the module docstring for the bounds.
        """
        if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
            raise ValueError(f"lambda must be a finite number >= 0, got {lam!r}")
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"steps must be a positive integer, got {steps!r}")
        if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
            raise ValueError(f"lr must be a positive number, got {lr!r}")
        group = parse_groups([group], self.reference)[0]
        names = group_parameters(group, self.reference)
        scale = self.scales()
        moving = {n: self.reference_state[n].clone().requires_grad_(True) for n in names}
        optimizer = torch.optim.Adam([{"params": [moving[n]], "lr": lr * scale[n]} for n in names])

        clean = self.clean
        history = [{"step": 0, "metric": clean.metric, "distance": 0.0, "loss": clean.loss, "objective": clean.metric}]
        states = [dict(self.reference_state)]
        current = clean
        for step in range(1, steps + 1):
            if step == 1 or lam == 0:
                grad_d = None
            else:
                grad_d = current.grad_distance
            for n in names:
                g = -current.grad_loss[n]
                if grad_d is not None:
                    g = g + lam * grad_d[n]
                moving[n].grad = g.clone()
            optimizer.step()
            with torch.no_grad():
                if "gamma" in moving:
                    moving["gamma"].clamp_(min=GAMMA_MIN)
            state = {**self.reference_state, **{n: t.detach().clone() for n, t in moving.items()}}
            if not all(torch.isfinite(t).all() for t in state.values()):
                break
            more = step < steps
            current = self.evaluate(state, grad_loss=more, grad_distance=more and lam > 0)
            if not (math.isfinite(current.metric) and math.isfinite(current.distance) and math.isfinite(current.loss)):
                break
            history.append({"step": step, "metric": current.metric, "distance": current.distance,
                            "loss": current.loss, "objective": current.metric + lam * current.distance})
            states.append(state)
        best = min(history, key=lambda h: (h["objective"], h["distance"], h["step"]))
        return SearchResult(
            group=group, lam=float(lam), distance_kind=self.distance_kind, metric_name=self.metric_name,
            clean=clean.metric, attained=best["metric"], distance=best["distance"], loss_clean=clean.loss,
            loss=best["loss"], step=best["step"], history=history,
            state={n: t.detach().cpu().clone() for n, t in states[best["step"]].items()},
        )

    def sweep(self, groups: Sequence[str], lambdas: Sequence[float], steps: int = 5, lr: float = 0.05,
              callback: Callable[[SearchResult], None] | None = None) -> list[SearchResult]:
        """:meth:`search` for every group and every ``lam``; results in the order
        ``[(g, lam) for g in groups for lam in lambdas]``. Within a group the positive ``lam`` run
        first, so the shared first iterate is evaluated once with both gradients.
        ``callback(result)`` is called as each search ends."""
        results: dict[tuple[str, float], SearchResult] = {}
        for group in groups:
            for lam in sorted(lambdas, key=lambda x: (x == 0, lambdas.index(x))):
                results[(group, lam)] = r = self.search(group, lam, steps=steps, lr=lr)
                if callback is not None:
                    callback(r)
        return [results[(g, lam)] for g in groups for lam in lambdas]

    def isp_for(self, state: dict[str, torch.Tensor]) -> ParametrizedISP:
        """A frozen copy of the reference ISP holding the parameters ``state`` (e.g. a result's)."""
        isp = copy.deepcopy(self.reference)
        with torch.no_grad():
            for n, t in state.items():
                getattr(isp, n).copy_(t)
        for p in isp.parameters():
            p.requires_grad_(False)
        return isp

    def sample_losses(self, state: dict[str, torch.Tensor]) -> torch.Tensor:
        """Per-image losses ``(N,)`` at ``state`` (cached pass), in the order of the batches."""
        return self.evaluate(state).sample_loss

    def reference_view(self, index: int) -> torch.Tensor:
        """The reference view ``(3, H, W)`` of evaluation image ``index`` (batches in order)."""
        for views in self._reference_views:
            if index < views.shape[0]:
                return views[index]
            index -= views.shape[0]
        raise IndexError("image index beyond the evaluation data")

    def raw(self, index: int) -> torch.Tensor:
        """Raw mosaic ``(H, W)`` of evaluation image ``index``."""
        return self._item(index)[0]

    def intensity(self, index: int) -> torch.Tensor | None:
        """The light intensity ratio ``(1,)`` of evaluation image ``index`` (None if the batches
        carry none): what the ISP takes with the image, ``isp(raw[None], intensity=...)``."""
        intensity = self._item(index)[1]
        return None if intensity is None else intensity.reshape(1)

    def _item(self, index: int) -> tuple[torch.Tensor, torch.Tensor | None]:
        for raw, _, intensity in self.batches:
            if index < raw.shape[0]:
                return raw[index], None if intensity is None else intensity[index]
            index -= raw.shape[0]
        raise IndexError("image index beyond the evaluation data")
