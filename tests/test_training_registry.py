"""The registry of datasets and tasks agrees with the dataset packages and transformers."""

import pytest

from raw_isp.registry import DATASETS, TASKS, get_dataset, get_task, guess_task


@pytest.mark.parametrize("name", list(DATASETS))
def test_each_dataset_entry_matches_its_package(name):
    import datasets

    import raw_isp

    info = get_dataset(name)
    module = info.module()
    assert info.intensities == tuple(module.INTENSITIES)
    builder = info.builder_class()
    assert issubclass(builder, datasets.DatasetBuilder)
    configs = {c.name for c in builder.BUILDER_CONFIGS}
    assert {t.config for t in info.tasks.values()} <= configs
    assert info.camera in raw_isp.CAMERAS and info.camera in raw_isp.SENSORS
    assert info.size_kwarg in module.load_dataset.__code__.co_varnames
    for task in info.tasks:
        assert task in TASKS and TASKS[task].main_metric in info.headline_metrics(task)


def test_label_columns_are_features_of_the_configs():
    import raw_drone
    import raw_microscopy

    for module, info in ((raw_microscopy, DATASETS["raw_microscopy"]), (raw_drone, DATASETS["raw_drone"])):
        builder = info.builder_class()
        for task, entry in info.tasks.items():
            config = next(c for c in builder.BUILDER_CONFIGS if c.name == entry.config)
            features = builder(config_name=config.name, cache_dir=None)._info().features
            assert entry.label_column in features, (info.name, task)
    assert raw_microscopy.CLASS_NAMES and raw_drone.CLASS_NAMES


def test_tasks_name_real_auto_classes_and_metrics():
    import raw_isp.metrics

    for task in TASKS.values():
        auto = task.auto_model_class()
        assert auto.__name__ == task.auto_class
        metric = raw_isp.metrics.load(task.name, num_labels=2, label_names=["a", "b"], keep_in_memory=True)
        metric.add_batch(predictions=[[0, 1]] if task.dense else [0, 1], references=[[0, 1]] if task.dense else [0, 1])
        computed = metric.compute()
        assert set(task.headline_metrics) <= set(computed)
        # What can select the best epoch (--metric_for_best_model) is a number the pass computes.
        assert task.main_metric in task.scalar_metrics and set(task.scalar_metrics) <= set(computed)
        assert all(isinstance(computed[k], float) for k in task.scalar_metrics)
        assert {f"{task.per_class_metric}a", f"{task.per_class_metric}b"} <= set(computed)
    # Imbalanced classes: models are selected by macro-F1, not by accuracy.
    assert TASKS["classification"].main_metric == "macro_f1" and TASKS["segmentation"].main_metric == "mean_iou"


def test_unknown_names_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown task 'detection'; expected one of"):
        get_task("detection")
    with pytest.raises(ValueError, match="unknown dataset 'cifar10'"):
        get_dataset("cifar10")
    with pytest.raises(ValueError, match="Raw-Microscopy has no segmentation task"):
        get_dataset("raw_microscopy").task("segmentation")


def test_guess_task_for_folders_without_a_recorded_task():
    from types import SimpleNamespace as C

    assert guess_task(C(architectures=["BeitForSemanticSegmentation"], model_type="beit")) == "segmentation"
    assert guess_task(C(architectures=["ViTForImageClassification"], model_type="vit")) == "classification"
    assert guess_task(C(architectures=None, model_type="segformer")) == "segmentation"  # the rule before the record
    assert guess_task(C(architectures=None, model_type="vit")) == "classification"


def test_which_dataset_a_model_belongs_to_comes_from_the_registry():
    from raw_isp.registry import dataset_for_model

    # the camera decides first; a drone car / no-car classifier shows drone tiles
    assert dataset_for_model("classification", "drone", ["car", "no_car"]) == "raw_drone"
    assert dataset_for_model("classification", "microscopy", ["BAS", "EBO"]) == "raw_microscopy"
    # a neutral camera: mask-derived labels, else the first dataset with the task
    assert dataset_for_model("classification", "neutral", ["car", "no_car"]) == "raw_drone"
    assert dataset_for_model("classification", "neutral", ["BAS", "EBO"]) == "raw_microscopy"
    assert dataset_for_model("segmentation", None) == "raw_drone"


def test_foreground_and_mask_labels_are_registry_data():
    from raw_isp.registry import foreground_index, label_from_mask

    assert DATASETS["raw_drone"].tasks["segmentation"].foreground == "car"
    assert foreground_index(["background", "car"]) == 1
    assert foreground_index(["car", "background"]) == 0
    assert foreground_index(["sky", "road", "lane"]) == 2  # no registry foreground: the last label
    assert label_from_mask(["car", "no_car"], True) == "car"
    assert label_from_mask(["no_car", "car"], False) == "no_car"
    assert label_from_mask(["BAS", "EBO"], True) is None
