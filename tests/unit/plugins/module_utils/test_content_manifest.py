from __future__ import annotations

import json
import os

import pytest

from ansible_collections.jetson_thor.workshop.plugins.module_utils import _content_manifest as cm

REPO = "models/huggingface/hub/models--org--m"


def make_root(tmp_path):
    """A small content root in the real HF layout: two blobs, refs/main, snapshot links, an encoding, a pack."""
    root = tmp_path / "content"
    blobs = root / REPO / "blobs"
    snap = root / REPO / "snapshots" / "abc123"
    blobs.mkdir(parents=True)
    snap.mkdir(parents=True)
    (root / REPO / "refs").mkdir()
    (root / REPO / "refs" / "main").write_text("abc123")
    for name, data in (("h1", b"weights" * 1000), ("h2", b"{}")):
        (blobs / name).write_bytes(data)
    (snap / "model.safetensors").symlink_to("../../blobs/h1")
    (snap / "config.json").symlink_to("../../blobs/h2")
    (root / "encodings").mkdir()
    (root / "encodings" / "o200k_base.tiktoken").write_bytes(b"enc")
    (root / "packs").mkdir()
    (root / "packs" / "vllm_cache.tar").write_bytes(b"tar")
    return root


def test_build_lists_files_and_links_without_following_them(tmp_path):
    root = make_root(tmp_path)
    m = cm.build(str(root), name="t")
    paths = {f["path"]: f for f in m["files"]}
    assert set(paths) == {
        f"{REPO}/blobs/h1",
        f"{REPO}/blobs/h2",
        f"{REPO}/refs/main",
        "encodings/o200k_base.tiktoken",
        "packs/vllm_cache.tar",
    }
    assert paths[f"{REPO}/blobs/h1"]["kind"] == "hf-blob" and paths[f"{REPO}/refs/main"]["kind"] == "hf-ref"
    assert paths["packs/vllm_cache.tar"]["kind"] == "compile-cache"
    assert m["symlinks"] == [
        {"path": f"{REPO}/snapshots/abc123/config.json", "target": "../../blobs/h2"},
        {"path": f"{REPO}/snapshots/abc123/model.safetensors", "target": "../../blobs/h1"},
    ]
    assert m["total_bytes"] == 7000 + 2 + 6 + 3 + 3  # each blob once: links add nothing
    assert m["content_id"] == cm.content_id(m["files"], m["symlinks"])


def test_links_leaving_the_root_or_dangling_and_partial_downloads_are_refused(tmp_path):
    root = make_root(tmp_path)
    (root / REPO / "snapshots" / "abc123" / "evil").symlink_to("/etc/passwd")
    (root / REPO / "snapshots" / "abc123" / "gone").symlink_to("../../blobs/nope")
    (root / REPO / "blobs" / "h3.incomplete").write_bytes(b"x")
    with pytest.raises(cm.ManifestError) as err:
        cm.build(str(root))
    text = str(err.value)
    assert "evil -> /etc/passwd points outside the content root" in text
    assert "gone -> ../../blobs/nope dangles" in text
    assert "h3.incomplete is an unfinished download" in text


def test_hash_cache_skips_unchanged_files(tmp_path):
    root = make_root(tmp_path)
    cache, hashed = {}, []
    cm.build(str(root), hash_cache=cache, progress=lambda rel, size: hashed.append(rel))
    assert len(hashed) == 5
    hashed.clear()
    (root / "encodings" / "o200k_base.tiktoken").write_bytes(b"changed")
    cm.build(str(root), hash_cache=cache, progress=lambda rel, size: hashed.append(rel))
    assert hashed == ["encodings/o200k_base.tiktoken"]


def test_load_names_the_problem(tmp_path):
    with pytest.raises(cm.ManifestError, match=r"no manifest at .* run the pre-warm playbook"):
        cm.load(str(tmp_path / "missing.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(cm.ManifestError, match="cannot read the manifest"):
        cm.load(str(bad))
    unsafe = {"format": cm.FORMAT, "files": [{"path": "../x"}], "symlinks": [], "content_id": "", "total_bytes": 0}
    bad.write_text(json.dumps(unsafe))
    with pytest.raises(cm.ManifestError, match=r"unsafe path '\.\./x'"):
        cm.load(str(bad))


def test_verify_place_links_and_stamp(tmp_path):
    root = make_root(tmp_path)
    m = cm.build(str(root))
    unit = tmp_path / "unit"
    for f in m["files"]:
        dest = unit / f["path"]
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_bytes((root / f["path"]).read_bytes())
    report = cm.verify(str(unit), m)
    assert not report["ok"] and len(report["links"]) == 2 and report["hashed_bytes"] == m["total_bytes"]
    assert cm.place_links(str(unit), m, check_mode=True) == [s["path"] for s in m["symlinks"]]
    assert not (unit / m["symlinks"][0]["path"]).is_symlink()  # check mode changes nothing
    assert len(cm.place_links(str(unit), m)) == 2
    assert cm.place_links(str(unit), m) == []
    assert os.path.islink(unit / m["symlinks"][1]["path"]) and (unit / m["symlinks"][1]["path"]).read_bytes() == b"weights" * 1000
    assert cm.verify(str(unit), m)["ok"]
    cm.write_stamp(str(unit), m, "full")
    assert cm.verify(str(unit), m)["hashed_bytes"] == 0  # the stamp vouches for unchanged files
    assert cm.verify(str(unit), m, "full")["hashed_bytes"] == m["total_bytes"]
    blob = unit / REPO / "blobs" / "h1"
    data = bytearray(blob.read_bytes())
    data[10] ^= 0xFF
    blob.write_bytes(bytes(data))
    report = cm.verify(str(unit), m)
    assert report["corrupt"] == [f"{REPO}/blobs/h1"] and report["hashed_bytes"] == 7000
    (unit / "encodings" / "o200k_base.tiktoken").unlink()
    assert cm.verify(str(unit), m)["missing"] == ["encodings/o200k_base.tiktoken"]


def test_place_links_never_overwrites_a_regular_file(tmp_path):
    root = make_root(tmp_path)
    m = cm.build(str(root))
    unit = tmp_path / "unit"
    target = unit / m["symlinks"][0]["path"]
    target.parent.mkdir(parents=True)
    target.write_text("user data")
    with pytest.raises(cm.ManifestError, match="is a regular file or directory where the manifest has a link"):
        cm.place_links(str(unit), m)
    assert target.read_text() == "user data"


def test_bytes_needed_counts_allocated_not_apparent_size(tmp_path):
    root = make_root(tmp_path)
    m = cm.build(str(root))
    unit = tmp_path / "unit"
    assert cm.bytes_needed(str(unit), m) == m["total_bytes"]
    sparse = unit / REPO / "blobs" / "h1"
    sparse.parent.mkdir(parents=True)
    with open(sparse, "wb") as f:
        f.truncate(7000)  # preallocated at full size, nothing written
    assert cm.bytes_needed(str(unit), m) == m["total_bytes"]
