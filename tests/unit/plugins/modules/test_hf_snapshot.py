from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from hf_cache_fixture import REV, blob_of, make_repo

from ansible_collections.jetson_thor.workshop.plugins.modules import hf_snapshot


@pytest.fixture
def hub(tmp_path):
    return tmp_path / "models" / "huggingface" / "hub"


def present(run_module, hub, **extra):
    return run_module(hf_snapshot.main, {"repo_id": "org/model", "cache_dir": str(hub), "source": "present", **extra})


def test_present_complete_repo_verifies(run_module, hub):
    make_repo(hub)
    result = present(run_module, hub)
    assert result["_rc"] == 0, result
    assert result["changed"] is False
    assert result["revision"] == REV
    assert result["files"] == 4
    assert result["bytes"] > 0
    assert result["hashed_bytes"] > 0


def test_missing_repo_names_the_model_and_the_fix(run_module, hub):
    hub.mkdir(parents=True)
    result = present(run_module, hub)
    assert result["failed"]
    assert "org/model is not in the cache" in result["msg"]
    assert "content_prewarm_source: download" in result["msg"]


def test_dereferenced_snapshot_entry_is_reported(run_module, hub):
    repo = make_repo(hub)
    link = repo / "snapshots" / REV / "config.json"
    data = link.read_bytes()
    link.unlink()
    link.write_bytes(data)
    result = present(run_module, hub)
    assert result["failed"]
    assert "config.json is a regular file, not a symlink into blobs/" in result["msg"]
    assert "rsync -a" in result["msg"]


def test_shard_missing_from_the_index_and_every_problem_at_once(run_module, hub):
    repo = make_repo(hub, shards=3)
    (repo / "snapshots" / REV / "model-00002-of-00003.safetensors").unlink()
    (repo / "blobs" / "deadbeef.incomplete").write_bytes(b"x" * 10)
    result = present(run_module, hub)
    assert result["failed"]
    assert len(result["problems"]) == 2
    assert "model-00002-of-00003.safetensors is listed in model.safetensors.index.json but missing" in result["msg"]
    assert "blobs/deadbeef.incomplete is an unfinished download (10 bytes)" in result["msg"]


def test_dangling_link_and_missing_refs(run_module, hub):
    repo = make_repo(hub)
    blob_of(repo, "model-00001-of-00002.safetensors").unlink()
    result = present(run_module, hub)
    assert "which is missing" in result["msg"]
    (repo / "refs" / "main").unlink()
    result = present(run_module, hub)
    assert "refs/main is missing" in result["msg"]


def test_corrupt_blob_is_found_by_its_hash_only_when_verifying(run_module, hub):
    repo = make_repo(hub)
    blob = blob_of(repo, "model-00002-of-00002.safetensors")
    blob.write_bytes(b"flipped" + blob.read_bytes()[7:])
    result = present(run_module, hub)
    assert result["failed"]
    assert f"blob {blob.name} (model-00002-of-00002.safetensors) is corrupt" in result["msg"]
    assert present(run_module, hub, verify_hashes=False)["_rc"] == 0


def test_corrupt_small_file_is_found_by_its_git_blob_id(run_module, hub):
    repo = make_repo(hub)
    blob = blob_of(repo, "config.json")
    blob.write_bytes(b'{"architectures": []}')
    assert "is corrupt" in present(run_module, hub)["msg"]


def test_hash_cache_is_shared_and_reused(run_module, hub, tmp_path):
    make_repo(hub)
    cache, progress = tmp_path / "state" / "hash-cache.json", tmp_path / "state" / "progress.json"
    args = {"hash_cache": str(cache), "hash_cache_base": str(tmp_path), "progress_file": str(progress)}
    first = present(run_module, hub, **args)
    assert first["hashed_bytes"] > 0
    keys = json.loads(cache.read_text())
    assert all(k.startswith("models/huggingface/hub/models--org--model/blobs/") for k in keys)
    assert json.loads(progress.read_text())["phase"] == "verify"
    second = present(run_module, hub, **args)
    assert second["_rc"] == 0
    assert second["hashed_bytes"] == 0


def fake_snapshot_download(hub, calls, fail=None):
    def download(repo_id, **kwargs):
        calls.append(kwargs)
        if fail:
            raise fail
        if kwargs.get("dry_run"):
            complete = (hub / "models--org--model" / "refs" / "main").exists()
            return [SimpleNamespace(commit_hash=REV, will_download=not complete, file_size=1000, filename="x")]
        make_repo(Path(kwargs["cache_dir"]), repo_id)
        return str(Path(kwargs["cache_dir"]) / "models--org--model" / "snapshots" / REV)

    return download


def download_args(hub, **extra):
    return {"repo_id": "org/model", "cache_dir": str(hub), "source": "download", **extra}


def test_download_fetches_then_verifies_and_a_rerun_changes_nothing(run_module, hub, monkeypatch):
    calls = []
    monkeypatch.setenv("HF_TOKEN", "hf_secret")
    fake = SimpleNamespace(snapshot_download=fake_snapshot_download(hub, calls))
    with mock.patch.object(hf_snapshot, "huggingface_hub", fake):
        first = run_module(hf_snapshot.main, download_args(hub, ignore_patterns=["original/*"]))
        second = run_module(hf_snapshot.main, download_args(hub))
    assert first["_rc"] == 0, first
    assert first["changed"] is True
    assert first["download_bytes"] > 0
    assert first["revision"] == REV
    assert calls[0]["token"] == "hf_secret"
    assert calls[0]["ignore_patterns"] == ["original/*"]
    assert calls[0]["cache_dir"] == str(hub)
    assert calls[0]["revision"] == "main"
    assert "hf_secret" not in json.dumps(first)
    assert second["changed"] is False
    assert second["download_bytes"] == 0


def test_download_check_mode_asks_for_a_dry_run(run_module, hub):
    calls = []
    fake = SimpleNamespace(snapshot_download=fake_snapshot_download(hub, calls))
    with mock.patch.object(hf_snapshot, "huggingface_hub", fake):
        result = run_module(hf_snapshot.main, download_args(hub, _ansible_check_mode=True))
    assert result["changed"] is True
    assert result["download_bytes"] == 1000
    assert calls[0]["dry_run"] is True
    assert not hub.exists()


def test_gated_repo_error_names_the_licence_and_the_token(run_module, hub):
    class GatedRepoError(Exception):
        pass

    fake = SimpleNamespace(snapshot_download=fake_snapshot_download(hub, [], fail=GatedRepoError("401 gated")))
    with mock.patch.object(hf_snapshot, "huggingface_hub", fake):
        result = run_module(hf_snapshot.main, download_args(hub, repo_id="meta-llama/Llama-3.1-8B-Instruct"))
    assert result["failed"]
    assert "meta-llama/Llama-3.1-8B-Instruct: the download failed (GatedRepoError" in result["msg"]
    assert "accept the model's licence" in result["msg"]


def test_download_without_huggingface_hub_says_what_to_install(run_module, hub):
    with mock.patch.object(hf_snapshot, "huggingface_hub", None):
        result = run_module(hf_snapshot.main, download_args(hub))
    assert result["failed"]
    assert "huggingface_hub" in result["msg"]


def test_real_snapshot_download_signature_accepts_the_arguments():
    hub_lib = pytest.importorskip("huggingface_hub")
    import inspect

    params = inspect.signature(hub_lib.snapshot_download).parameters
    for name in ("cache_dir", "revision", "token", "endpoint", "allow_patterns", "ignore_patterns", "max_workers", "dry_run"):
        assert name in params
    assert os.environ.get("HF_HUB_OFFLINE") != "0"
