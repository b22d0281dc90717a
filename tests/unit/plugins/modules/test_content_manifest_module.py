from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from hf_cache_fixture import make_repo

from ansible_collections.jetson_thor.workshop.plugins.modules import content_manifest

IMAGE = {"ref": "thor-twin/vllm:25.09-py3", "id": "sha256:" + "a" * 64, "file": "images/thor-twin_vllm_25.09-py3.tar"}
CACHES = {"pack": "packs/vllm_cache.tar", "stages": {"fp4": {"key": "k1", "dirs": ["torch_compile_cache/0123456789"]}}}


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "data"
    make_repo(root / "models" / "huggingface" / "hub")
    (root / "encodings").mkdir()
    (root / "encodings" / "o200k_base.tiktoken").write_bytes(b"encoding")
    (root / "packs").mkdir()
    (root / "packs" / "vllm_cache.tar").write_bytes(b"pack")
    (root / "images").mkdir()
    (root / "images" / "thor-twin_vllm_25.09-py3.tar").write_bytes(b"image")
    return root


def run(run_module, root, **extra):
    return run_module(content_manifest.main, {"root": str(root), "images": [IMAGE], "compile_caches": CACHES, **extra})


def test_writes_the_manifest_with_images_and_caches(run_module, root):
    result = run(run_module, root)
    assert result["_rc"] == 0, result
    assert result["changed"] is True
    assert result["previous_content_id"] is None
    manifest = json.loads((root / "manifest.json").read_text())
    assert manifest["format"] == "jetson_thor.workshop/content-manifest/1"
    assert manifest["content_id"] == result["content_id"]
    assert manifest["images"] == [IMAGE]
    assert manifest["compile_caches"] == CACHES
    assert result["files"] == len(manifest["files"]) == 8  # 4 blobs, refs/main, encoding, pack, image
    assert result["symlinks"] == len(manifest["symlinks"]) == 4
    assert result["kinds"]["hf-blob"]["files"] == 4
    assert result["kinds"]["image"] == {"files": 1, "bytes": 5}
    assert all(link["target"].startswith("../../blobs/") for link in manifest["symlinks"])
    assert (root / ".thor-content" / "hash-cache.json").is_file()


def test_rerun_neither_rehashes_nor_rewrites(run_module, root):
    first = run(run_module, root)
    before = os.stat(root / "manifest.json").st_mtime_ns
    second = run(run_module, root)
    assert second["changed"] is False
    assert second["hashed_bytes"] == 0
    assert second["content_id"] == second["previous_content_id"] == first["content_id"]
    assert os.stat(root / "manifest.json").st_mtime_ns == before


def test_a_changed_file_changes_the_content_id(run_module, root):
    first = run(run_module, root)
    (root / "packs" / "vllm_cache.tar").write_bytes(b"another pack")
    second = run(run_module, root)
    assert second["changed"] is True
    assert second["content_id"] != first["content_id"]
    assert second["hashed_bytes"] == len(b"another pack")


def test_check_mode_writes_nothing(run_module, root):
    result = run(run_module, root, _ansible_check_mode=True)
    assert result["changed"] is True
    assert not (root / "manifest.json").exists()
    assert not (root / ".thor-content").exists()


def test_progress_file(run_module, root, tmp_path):
    progress = tmp_path / "progress.json"
    run(run_module, root, progress_file=str(progress))
    state = json.loads(progress.read_text())
    assert state["phase"] == "manifest"
    assert state["file"]


def test_dangling_link_fails_with_the_path(run_module, root):
    (root / "models" / "huggingface" / "hub" / "models--org--model" / "snapshots" / "x").mkdir()
    (root / "models" / "huggingface" / "hub" / "models--org--model" / "snapshots" / "x" / "y").symlink_to("../../blobs/none")
    result = run(run_module, root)
    assert result["failed"]
    assert "dangles" in result["msg"]


def test_missing_image_tarball_fails(run_module, root):
    (root / "images" / "thor-twin_vllm_25.09-py3.tar").unlink()
    result = run(run_module, root)
    assert result["failed"]
    assert "its tarball images/thor-twin_vllm_25.09-py3.tar is not in" in result["msg"]
