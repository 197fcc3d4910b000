"""all_results.json holds the transformers examples' train_loss, train_runtime and
train_samples_per_second (raw_isp.training.outputs.train_summary, from the logging windows)."""

import pytest

from raw_isp.training.outputs import train_summary


def test_train_loss_is_the_mean_per_step_and_runtime_the_windows_time():
    history = [
        {"step": 2, "train_loss": 1.0, "images_per_second": 8.0, "epoch": 0},  # 2 steps x 8 images in 2 s
        {"step": 2, "eval_accuracy": 0.5},                                      # a validation entry
        {"step": 3, "train_loss": 4.0, "images_per_second": 4.0, "epoch": 0},  # 1 step x 8 images in 2 s
    ]
    got = train_summary(history, images_per_step=8)
    assert got["train_loss"] == pytest.approx((2 * 1.0 + 4.0) / 3)
    assert got["train_runtime"] == pytest.approx(4.0)
    assert got["train_samples_per_second"] == pytest.approx(24 / 4.0)
    assert got["train_steps_per_second"] == pytest.approx(3 / 4.0)


def test_logged_images_and_seconds_are_used_when_present_and_nothing_logged_gives_nothing():
    history = [{"step": 4, "train_loss": 0.5, "images_per_second": 10.0, "images": 30, "seconds": 3.0}]
    got = train_summary(history, images_per_step=8)
    assert got["train_runtime"] == pytest.approx(3.0) and got["train_samples_per_second"] == pytest.approx(10.0)
    assert train_summary([{"step": 1, "eval_accuracy": 1.0}], images_per_step=8) == {}
