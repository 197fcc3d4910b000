"""The dataset export (raw_isp.data.export, and its command line scripts/export_to_hub.py):
Parquet + card repositories that plain `datasets` loads back exactly.

Tiny synthetic configurations are exported into temporary folders and loaded back in a separate
Python process that blocks every import of the project's packages, so the round trip is what a
user with only `datasets` installed gets. Rows are compared bit-exactly (SHA-256 of each stored
frame's bytes at its declared dtype), with labels, ids, intensities and the features.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import raw_isp.data.export as X

REPO = Path(__file__).resolve().parents[1]
PROJECT_PACKAGES = ("raw_isp", "raw_microscopy", "raw_drone")

# Small but real: every split non-empty, all intensities in the raw configs.
MICRO_KWARGS = {"num_examples": 20}
# 6 small frames (2x3 tiles each) instead of 12 of 2560x3840: seconds instead of a minute.
DRONE_KWARGS = {"num_examples": 12, "num_scenes": 6, "frame_height": 512, "frame_width": 768}

# --------------------------------------------------------------------------- digests

# Runs in the child process: plain `datasets` + numpy + pyarrow; importing the project is an error.
_CHILD = r"""
import hashlib, json, sys
class _Block:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ImportError(f"project package {{name}} imported during a plain-datasets load")
        return None
sys.meta_path.insert(0, _Block())
import numpy as np
import datasets
folder, config = sys.argv[1], sys.argv[2]
dd = datasets.load_dataset(folder, config, cache_dir=sys.argv[3])
out = {{}}
for split, ds in dd.items():
    table = ds.data.table
    rows = {{c: table.column(c).to_pylist() for c in ds.column_names}}
    digest = {{}}
    for c, feat in ds.features.items():
        if isinstance(feat, (datasets.Array2D, datasets.Array3D)):
            digest[c] = [hashlib.sha256(np.asarray(v, dtype=feat.dtype).tobytes()).hexdigest() for v in rows.pop(c)]
        elif isinstance(feat, datasets.Image):
            digest[c] = [[hashlib.sha256(v["bytes"]).hexdigest(), v["path"]] for v in rows.pop(c)]
    out[split] = {{"features": ds.features.to_dict(), "num_rows": len(ds), "rows": rows, "digest": digest}}
leaked = sorted(m for m in sys.modules if m.split(".")[0] in {blocked!r})
out["__leaked__"] = leaked
print(json.dumps(out))
""".format(blocked=PROJECT_PACKAGES)


def load_plain(folder: Path, config: str, cache: Path) -> dict:
    """Load ``config`` of ``folder`` in a child process without the project; its JSON summary."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(cache / "hf_home"))
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(folder), config, str(cache / "plain")],
                          cwd=str(cache), env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def summarise(dd) -> dict:
    """The same summary as the child's, computed from the project's own DatasetDict."""
    import datasets

    out = {}
    for split, ds in dd.items():
        table = ds.data.table if ds._indices is None else ds.flatten_indices().data.table
        rows = {c: table.column(c).to_pylist() for c in ds.column_names}
        digest = {}
        for c, feat in ds.features.items():
            if isinstance(feat, (datasets.Array2D, datasets.Array3D)):
                digest[c] = [hashlib.sha256(np.asarray(v, dtype=feat.dtype).tobytes()).hexdigest()
                             for v in rows.pop(c)]
            elif isinstance(feat, datasets.Image):  # PNG bytes as stored
                digest[c] = [[hashlib.sha256(v["bytes"]).hexdigest(), v["path"]] for v in rows.pop(c)]
        out[split] = {"features": ds.features.to_dict(), "num_rows": len(ds), "rows": rows, "digest": digest}
    return json.loads(json.dumps(out))  # the same JSON normalisation as the child's (tuples -> lists)


def read_card(folder: Path) -> dict:
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n", 2)[1])


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    """One datasets cache for the module: each tiny config is generated once."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="module")
def micro_export(tmp_path_factory, shared_cache):
    """raw_microscopy configs "raw", "raw-050" and "rgb-bi_s_ga", 20 cells, exported; plus the originals."""
    import raw_microscopy

    root = tmp_path_factory.mktemp("micro")
    cache = shared_cache
    out = root / "repo"
    configs = ("raw", "raw-050", "rgb-bi_s_ga")
    records = X.export("raw_microscopy", out, configs=list(configs), builder_kwargs=MICRO_KWARGS,
                       cache_dir=str(cache), max_shard_size="1MB")
    originals = {c: raw_microscopy.load_dataset(c, cache_dir=str(cache), **MICRO_KWARGS) for c in configs}
    return out, records, originals, root


@pytest.fixture(scope="module")
def drone_export(tmp_path_factory, shared_cache):
    import raw_drone

    root = tmp_path_factory.mktemp("drone")
    cache = shared_cache
    out = root / "repo"
    configs = ["segmentation", "classification"]
    records = X.export("raw_drone", out, configs=configs, builder_kwargs=DRONE_KWARGS, cache_dir=str(cache))
    originals = {c: raw_drone.load_dataset(c, cache_dir=str(cache), **DRONE_KWARGS) for c in configs}
    return out, records, originals, root


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("config", ["raw", "raw-050", "rgb-bi_s_ga"])
def test_microscopy_round_trip_without_project_code(micro_export, config):
    out, _, originals, root = micro_export
    got = load_plain(out, config, root)
    assert got.pop("__leaked__") == []
    want = summarise(originals[config])
    assert set(got) == set(want) == {"train", "validation", "test"}
    for split in want:
        assert got[split]["num_rows"] == want[split]["num_rows"] > 0
        assert got[split]["features"] == want[split]["features"]
        assert got[split]["rows"] == want[split]["rows"]  # labels, ids, intensities, in order
        assert got[split]["digest"] == want[split]["digest"]  # every frame bit-exact
    features = got["train"]["features"]
    assert features["label"]["names"] == ["BAS", "EOS", "KSC", "LYA", "LYT", "MON", "NGB", "NGS", "UNC"]
    intensities = {round(v, 6) for split in got.values() for v in split["rows"]["intensity"]}  # float32
    if config == "rgb-bi_s_ga":
        assert features["image"]["_type"] == "Image"  # PNG bytes embedded in the Parquet file
        assert all(path is None for split in got.values() for _, path in split["digest"]["image"])
        assert intensities == {1.0}
    else:
        assert features["image"] == {"shape": [256, 256], "dtype": "uint16", "_type": "Array2D"}
        assert intensities == ({0.5} if config == "raw-050" else {1.0, 0.75, 0.5, 0.25, 0.1, 0.05, 0.01})


@pytest.mark.parametrize("config", ["segmentation", "classification"])
def test_drone_round_trip_without_project_code(drone_export, config):
    out, _, originals, root = drone_export
    got = load_plain(out, config, root)
    assert got.pop("__leaked__") == []
    want = summarise(originals[config])
    assert set(got) == set(want)
    for split in want:
        assert got[split]["features"] == want[split]["features"]
        assert got[split]["rows"] == want[split]["rows"]
        assert got[split]["digest"] == want[split]["digest"]
    features = got[next(iter(got))]["features"]
    assert features["image"]["dtype"] == "uint16"
    if config == "segmentation":
        assert features["mask"]["_type"] == "Array2D" and features["mask"]["dtype"] == "uint8"
    else:
        assert features["label"]["names"] == ["no_car", "car"]


def test_shards_respect_max_shard_size_and_row_order(micro_export):
    out, records, originals, _ = micro_export
    raw = next(r for r in records if r.name == "raw")
    train = next(s for s in raw.splits if s.name == "train")
    # 1 MB of Arrow rows per shard and ~131 kB per 256x256 uint16 frame: several shards.
    assert len(train.files) == -(-train.num_bytes // 1_000_000) > 1
    for rel in train.files:
        assert (out / rel).is_file()
    import pyarrow.parquet as pq

    ids = [i for rel in train.files for i in pq.read_table(out / rel, columns=["image_id"]).column(0).to_pylist()]
    assert ids == originals["raw"]["train"]["image_id"]


# --------------------------------------------------------------------------- the card


def test_card_yaml_lists_exactly_the_exported_configs_and_files(micro_export):
    out, records, originals, _ = micro_export
    meta = read_card(out)
    assert meta["license"] == "cc-by-4.0"
    assert "synthetic" in meta["tags"] and "raw-images" in meta["tags"]
    assert [c["config_name"] for c in meta["configs"]] == sorted(r.name for r in records)
    listed = set()
    for c in meta["configs"]:
        for entry in c["data_files"]:
            paths = entry["path"] if isinstance(entry["path"], list) else [entry["path"]]
            assert all((out / p).is_file() for p in paths)
            listed.update(paths)
    written = {p.relative_to(out).as_posix() for p in out.rglob("*.parquet")}
    assert listed == written
    assert [c for c in meta["configs"] if c.get("default")] == [c for c in meta["configs"] if c["config_name"] == "raw"]
    infos = {i["config_name"]: i for i in meta["dataset_info"]}
    assert set(infos) == {"raw", "raw-050", "rgb-bi_s_ga"}
    for name, dd in originals.items():
        assert {s["name"]: s["num_examples"] for s in infos[name]["splits"]} == {k: len(v) for k, v in dd.items()}
    total = sum(len(v) for v in originals["raw"].values())
    assert meta["size_categories"] == [X.size_category(total)]
    body = (out / "README.md").read_text()
    assert f"| `raw` | {len(originals['raw']['train']):,} |" in body
    assert "**synthetic** rows" in body and "TODO" not in body


def test_package_cards_have_the_required_sections():
    for package, task in (("raw_microscopy", "image-classification"), ("raw_drone", "image-segmentation")):
        text = (REPO / package / "README.md").read_text()
        meta = yaml.safe_load(text.split("---\n", 2)[1])
        assert meta["license"] == "cc-by-4.0" and task in meta["task_categories"]
        assert {"raw-images", "bayer", "isp", "dataset-drift"} <= set(meta["tags"])
        for c in meta["configs"]:
            for entry in c["data_files"]:
                assert entry["path"] == f"data/{c['config_name']}/{entry['split']}-*.parquet"
        for heading in ("## Dataset structure", "## How the data were made", "## The synthetic default",
                        "## Considerations", "## Licensing", "## Citation"):
            assert heading in text, (package, heading)
        assert "Data Models for Dataset Drift Controls in Machine Learning With Optical Images" in text
        assert "TODO" not in text


# --------------------------------------------------------------------------- the folder


def test_refuses_to_overwrite_a_non_empty_folder(tmp_path, shared_cache, script):
    E = script("export_to_hub")
    out = tmp_path / "repo"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(SystemExit, match="not empty"):
        E.main(["--dataset", "raw_microscopy", "--configs", "raw-100", "--num_examples", "20",
                "--output_dir", str(out), "--cache_dir", str(shared_cache)])
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo"]  # refused before any work


def test_overwrite_replaces_contents_but_keeps_git(tmp_path, shared_cache, script):
    E = script("export_to_hub")
    out = tmp_path / "repo"
    (out / ".git").mkdir(parents=True)
    (out / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    (out / "stale.parquet").write_text("old")
    E.main(["--dataset", "raw_microscopy", "--configs", "raw-100", "--num_examples", "20",
            "--output_dir", str(out), "--cache_dir", str(shared_cache), "--overwrite"])
    assert not (out / "stale.parquet").exists()
    assert (out / ".git" / "HEAD").read_text() == "ref: refs/heads/main\n"
    assert [c["config_name"] for c in read_card(out)["configs"]] == ["raw-100"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left over
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o777 & ~umask  # an ordinary folder, not mkdtemp's private one


def test_interrupted_export_leaves_nothing(tmp_path, monkeypatch, shared_cache):
    out = tmp_path / "repo"
    real = X.write_split
    calls = []

    def failing(*args, **kwargs):
        calls.append(args[3])  # the split name
        if len(calls) == 2:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-export
        return real(*args, **kwargs)

    monkeypatch.setattr(X, "write_split", failing)
    with pytest.raises(KeyboardInterrupt):
        X.export("raw_microscopy", out, configs=["raw-100"], builder_kwargs=MICRO_KWARGS,
                 cache_dir=str(shared_cache))
    assert len(calls) == 2
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []  # the staging folder is gone too


def test_unknown_config_is_named(tmp_path):
    with pytest.raises(X.ExportError, match="no configuration 'nope'"):
        X.export("raw_microscopy", tmp_path / "repo", configs=["nope"], builder_kwargs=MICRO_KWARGS)


# --------------------------------------------------------------------------- pushing


@pytest.fixture
def no_network(monkeypatch):
    """Any socket connection or HfApi call fails the test."""
    import huggingface_hub

    def forbidden(*args, **kwargs):
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket.socket, "connect", forbidden)
    monkeypatch.setattr(socket, "create_connection", forbidden)
    for name in ("create_repo", "upload_folder", "create_commit", "preupload_lfs_files", "whoami"):
        monkeypatch.setattr(huggingface_hub.HfApi, name, forbidden)


def test_dry_run_push_lists_files_without_network(tmp_path, shared_cache, capsys, no_network, script):
    E = script("export_to_hub")
    target = tmp_path / "copy"
    E.main(["--dataset", "raw_microscopy", "--configs", "raw-100", "--num_examples", "20",
            "--output_dir", str(target), "--cache_dir", str(shared_cache),
            "--push_to_hub", "someone/raw-microscopy-tiny", "--dry_run"])
    printed = capsys.readouterr().out
    assert "someone/raw-microscopy-tiny" in printed and "dry run" in printed
    files = X.list_files(target)
    assert any(rel == "README.md" for rel, _ in files)
    # The card's plain-datasets example names the configuration this export holds (not the template's "raw").
    text = (target / "README.md").read_text()
    assert 'datasets.load_dataset("path/or/hub-id", "raw-100")' in text and '"path/or/hub-id", "raw")' not in text
    assert any(rel.endswith(".parquet") for rel, _ in files)
    for rel, size in files:
        assert f"{size:>14,d}  {rel}" in printed


def test_push_calls_huggingface_hub_with_the_folder(micro_export, monkeypatch):
    import huggingface_hub

    out, _, _, _ = micro_export
    calls = []

    class FakeApi:
        def __init__(self, token=None):
            calls.append(("init", token))

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def list_repo_files(self, repo_id, **kwargs):
            return []  # a new repository

        def create_commit(self, repo_id, operations, **kwargs):
            calls.append(("create_commit", repo_id, list(operations), kwargs))

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    files = X.push(out, "someone/raw-microscopy", private=True, revision=None, token="t", commit_message=None)
    assert files == X.list_files(out)
    assert calls[0] == ("init", "t")
    assert calls[1][:2] == ("create_repo", "someone/raw-microscopy")
    assert calls[1][2]["repo_type"] == "dataset" and calls[1][2]["private"] is True
    _, repo_id, operations, kwargs = calls[2]
    assert repo_id == "someone/raw-microscopy" and kwargs["repo_type"] == "dataset"
    assert sorted(op.path_in_repo for op in operations) == sorted(rel for rel, _ in files)


# --------------------------------------------------------------------------- helpers


def test_zenodo_record_option_names_the_record_for_the_builder(script):
    E = script("export_to_hub")
    args = E.build_parser().parse_args(["--dataset", "raw_drone", "--output_dir", "out",
                                        "--zenodo_record", "10.5281/zenodo.7"])
    assert E.builder_kwargs_from_args(args) == {"source": "zenodo", "record": "10.5281/zenodo.7"}


def test_parse_size_units(script):
    assert X.parse_size("500MB") == 500_000_000
    assert X.parse_size("2GiB") == 2 * 2**30
    assert X.parse_size("1e6") == 1_000_000
    assert X.parse_size(1234) == 1234
    for bad in ("0", "-5MB", "lots", "5 parsecs"):
        with pytest.raises(ValueError):
            X.parse_size(bad)
    with pytest.raises(SystemExit):  # the command line names the option
        script("export_to_hub").build_parser().parse_args(["--dataset", "raw_drone", "--output_dir", "o", "--max_shard_size", "lots"])


def test_size_category_buckets():
    assert [X.size_category(n) for n in (0, 999, 1000, 9999, 10_346, 100_000)] == [
        "n<1K", "n<1K", "1K<n<10K", "1K<n<10K", "10K<n<100K", "100K<n<1M"]
