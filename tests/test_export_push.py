"""--push_to_hub adds configurations to a dataset repository without deleting the others (their
files and card entries), unless --replace; tested against a fake HfApi (no network)."""

from pathlib import Path

import pytest
from huggingface_hub import DatasetCard

from raw_isp.data import export as X


def card(config: str, default: bool = True, body: str = "body") -> str:
    flag = "\n  default: true" if default else ""
    return (f"---\nlicense: cc-by-4.0\nconfigs:\n- config_name: {config}\n  data_files:\n  - split: train\n"
            f"    path:\n    - data/{config}/train-00000-of-00001.parquet{flag}\ndataset_info:\n"
            f"- config_name: {config}\n  features:\n  - name: label\n    dtype: int64\n---\n\n{body}\n")


class FakeApi:
    """The HfApi calls push makes, against an in-memory repository."""

    def __init__(self, files: dict[str, str], tmp: Path):
        self.files, self.tmp, self.commits = dict(files), tmp, []

    def __call__(self, token=None):
        return self

    def create_repo(self, repo_id, **kwargs):
        pass

    def list_repo_files(self, repo_id, **kwargs):
        return sorted(self.files)

    def hf_hub_download(self, repo_id, filename, **kwargs):
        path = self.tmp / f"remote_{filename}"
        path.write_text(self.files[filename])
        return str(path)

    def create_commit(self, repo_id, operations, **kwargs):
        from huggingface_hub import CommitOperationAdd, CommitOperationDelete

        self.commits.append(list(operations))
        for op in operations:
            if isinstance(op, CommitOperationDelete):
                del self.files[op.path_in_repo]
            elif isinstance(op, CommitOperationAdd):
                content = op.path_or_fileobj
                self.files[op.path_in_repo] = content.decode() if isinstance(content, bytes) else Path(content).read_text()


@pytest.fixture
def setup(tmp_path, monkeypatch):
    import huggingface_hub

    local = tmp_path / "export"
    (local / "data" / "raw").mkdir(parents=True)
    (local / "data" / "raw" / "train-00000-of-00001.parquet").write_text("new raw shard")
    (local / "README.md").write_text(card("raw", body="the new export"))
    remote = {
        "README.md": card("raw-050"),
        "data/raw-050/train-00000-of-00001.parquet": "raw-050 shard",
        "data/raw/train-00000-of-00002.parquet": "stale raw shard",  # an earlier export of "raw" in 2 shards
        "data/raw/train-00001-of-00002.parquet": "stale raw shard",
        ".gitattributes": "*.parquet filter=lfs",
    }
    api = FakeApi(remote, tmp_path)
    monkeypatch.setattr(huggingface_hub, "HfApi", api)
    return local, api


def test_push_adds_configs_and_keeps_the_others(setup):
    local, api = setup
    X.push(local, "someone/raw-microscopy")
    assert len(api.commits) == 1  # one commit: additions and deletions together
    assert sorted(api.files) == [".gitattributes", "README.md", "data/raw-050/train-00000-of-00001.parquet",
                                 "data/raw/train-00000-of-00001.parquet"]  # stale shards of "raw" gone
    merged = DatasetCard(api.files["README.md"])
    assert [c["config_name"] for c in merged.data.configs] == ["raw", "raw-050"]
    assert [c.get("default", False) for c in merged.data.configs] == [True, False]  # one default
    assert [i["config_name"] for i in merged.data.dataset_info] == ["raw", "raw-050"]
    assert "the new export" in merged.text
    assert (local / "README.md").read_text() == card("raw", body="the new export")  # the folder is not touched


def test_replace_makes_the_repository_hold_exactly_the_export(setup):
    local, api = setup
    X.push(local, "someone/raw-microscopy", replace=True)
    assert sorted(api.files) == [".gitattributes", "README.md", "data/raw/train-00000-of-00001.parquet"]
    assert api.files["README.md"] == card("raw", body="the new export")


def test_the_script_passes_replace(monkeypatch, script):
    E = script("export_to_hub")
    pushed = []
    monkeypatch.setattr(E, "export", lambda *args, **kwargs: [])
    monkeypatch.setattr(E, "list_files", lambda folder: [])
    monkeypatch.setattr(E, "push", lambda folder, repo_id, **kwargs: pushed.append(kwargs["replace"]))
    for extra in ([], ["--replace"]):
        E.main(["--dataset", "raw_microscopy", "--output_dir", "x", "--push_to_hub", "someone/repo", *extra])
    assert pushed == [False, True]
