"""Callbacks of the training loop: how callers watch or stop a run without touching the loop.

Pass a list of :class:`TrainingCallback` objects to :func:`raw_isp.training.loop.train`; each
event calls the method of that name on every callback, in order, in every process. Raising in a
callback ends the run there (the tests stop a run after a checkpoint to simulate a kill).
"""

from __future__ import annotations

from typing import Any

__all__ = ["TrainingCallback", "MetricHistory"]


class TrainingCallback:
    """Base class: override the events you need; each is a no-op here.

    * ``on_log(step, logs)``: after a logging window (``logs``: ``train_loss``, ``lr``,
      ``images_per_second``, ``epoch``).
    * ``on_evaluate(step, epoch, metrics)``: after a validation pass (``metrics``: the evaluate
      module's results plus ``loss``).
    * ``on_checkpoint(step, folder)``: after a checkpoint is complete (``folder``: ``step_<N>``).
    * ``on_train_end(results)``: after the final validation and test (``results``: what goes into
      ``all_results.json``).
    """

    def on_log(self, step: int, logs: dict[str, Any]) -> None:
        pass

    def on_evaluate(self, step: int, epoch: int, metrics: dict[str, Any]) -> None:
        pass

    def on_checkpoint(self, step: int, folder: str) -> None:
        pass

    def on_train_end(self, results: dict[str, Any]) -> None:
        pass


class MetricHistory(TrainingCallback):
    """Records the chosen validation metrics after every evaluation:
    ``history = [{"step": N, "<metric>": value, ...}]`` (metrics the pass lacks are left out)."""

    def __init__(self, metrics: tuple[str, ...] | list[str]) -> None:
        self.metrics = tuple(metrics)
        self.history: list[dict[str, Any]] = []

    def on_evaluate(self, step: int, epoch: int, metrics: dict[str, Any]) -> None:
        self.history.append({"step": step, **{k: float(metrics[k]) for k in self.metrics if k in metrics}})
