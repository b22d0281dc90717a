from __future__ import annotations

import io
import json
import tarfile

from ansible_collections.jetson_thor.workshop.plugins.module_utils import _content_manifest as cm
from ansible_collections.jetson_thor.workshop.plugins.modules import content_swarm, content_verify

REPO = "models/huggingface/hub/models--org--m"


def make_root(path):
    blobs = path / REPO / "blobs"
    snap = path / REPO / "snapshots" / "abc"
    blobs.mkdir(parents=True)
    snap.mkdir(parents=True)
    (path / REPO / "refs").mkdir()
    (path / REPO / "refs" / "main").write_text("abc")
    (blobs / "h1").write_bytes(b"w" * 5000)
    (snap / "model.safetensors").symlink_to("../../blobs/h1")
    (path / "packs").mkdir()
    with tarfile.open(path / "packs" / "vllm_cache.tar", "w") as archive:
        info = tarfile.TarInfo("graph.py")
        info.size = 3
        archive.addfile(info, io.BytesIO(b"abc"))
    # The pre-warm writes the stages' cache keys next to the pack (packs/vllm_cache.keys.json): a plain file.
    (path / "packs" / "vllm_cache.keys.json").write_text('{"stages": {}}')
    (path / "images").mkdir()
    (path / "images" / "vllm.json").write_text("{}")
    return cm.build(str(path))


def copy_files(src, dst, manifest):
    for f in manifest["files"]:
        (dst / f["path"]).parent.mkdir(parents=True, exist_ok=True)
        (dst / f["path"]).write_bytes((src / f["path"]).read_bytes())


def test_loaded_names_the_fix_when_the_manifest_is_missing(run_module, tmp_path):
    result = run_module(content_verify.main, {"state": "loaded", "manifest_path": str(tmp_path / "manifest.json")})
    assert result["failed"] and "pre-warm" in result["msg"]


def test_checked_counts_what_is_needed_without_writing(run_module, tmp_path):
    manifest = make_root(tmp_path / "org")
    unit = tmp_path / "unit"
    result = run_module(content_verify.main, {"state": "checked", "root": str(unit), "manifest": manifest,
                                              "organizer_address": "127.0.0.1"})
    assert not result["changed"] and result["up_to_date"] is False
    assert result["bytes_needed"] >= manifest["total_bytes"]
    assert result["disk_path"] == str(tmp_path) and result["fleet_address"] == "127.0.0.1"
    assert not unit.exists()


def test_present_places_links_unpacks_stamps_then_changes_nothing(run_module, tmp_path):
    manifest = make_root(tmp_path / "org")
    unit = tmp_path / "unit"
    copy_files(tmp_path / "org", unit, manifest)
    args = {"state": "present", "root": str(unit), "manifest": manifest}
    first = run_module(content_verify.main, args)
    assert first["changed"] and first["verification"]["ok"], first
    assert (unit / REPO / "snapshots" / "abc" / "model.safetensors").is_symlink()
    assert (unit / "vllm_cache" / "graph.py").read_bytes() == b"abc"
    assert json.loads((unit / cm.STAMP).read_text())["content_id"] == manifest["content_id"]
    second = run_module(content_verify.main, args)
    assert not second["changed"] and second["verification"]["hashed_bytes"] == 0
    checked = run_module(content_verify.main, {"state": "checked", "root": str(unit), "manifest": manifest})
    assert checked["up_to_date"] and checked["bytes_needed"] == 0


def test_present_fails_naming_a_corrupt_file(run_module, tmp_path):
    manifest = make_root(tmp_path / "org")
    unit = tmp_path / "unit"
    copy_files(tmp_path / "org", unit, manifest)
    (unit / REPO / "blobs" / "h1").write_bytes(b"x" * 5000)
    result = run_module(content_verify.main, {"state": "present", "root": str(unit), "manifest": manifest})
    assert result["failed"] and "wrong sha256" in result["msg"] and "blobs/h1" in result["msg"]


def test_present_in_check_mode_writes_nothing(run_module, tmp_path):
    manifest = make_root(tmp_path / "org")
    unit = tmp_path / "unit"
    copy_files(tmp_path / "org", unit, manifest)
    result = run_module(content_verify.main, {"state": "present", "root": str(unit), "manifest": manifest,
                                              "_ansible_check_mode": True})
    assert result["changed"] and not result.get("failed")
    assert not (unit / REPO / "snapshots").exists() and not (unit / cm.STAMP).exists()


def test_swarm_status_and_stop_when_nothing_runs(run_module, tmp_path):
    args = {"state_dir": str(tmp_path), "launcher": "process"}
    status = run_module(content_swarm.main, dict(args, state="status"))
    assert not status["running"] and not status["changed"] and "never reported" in status["summary"]
    stopped = run_module(content_swarm.main, dict(args, state="stopped"))
    assert not stopped["changed"]


def test_swarm_summary_says_a_killed_engine():
    engine = {"total_bytes": 100, "have_bytes": 40, "payload_download": 40, "peers": 2, "complete": False, "stopped": None}
    line = content_swarm.summarize(engine, running=False)
    assert "incomplete" in line and "40.0 %" in line and "killed or crashed" in line


def test_only_archives_are_packs_and_images_even_in_an_older_manifest(run_module, tmp_path):
    manifest = make_root(tmp_path / "org")
    kinds = {f["path"]: f["kind"] for f in manifest["files"]}
    assert kinds["packs/vllm_cache.tar"] == "compile-cache"
    assert kinds["packs/vllm_cache.keys.json"] == "file" and kinds["images/vllm.json"] == "file"
    # A manifest written before kind_of knew better called the keys file a compile cache too: it is not unpacked.
    for f in manifest["files"]:
        if f["path"] == "packs/vllm_cache.keys.json":
            f["kind"] = "compile-cache"
    unit = tmp_path / "unit"
    copy_files(tmp_path / "org", unit, manifest)
    result = run_module(content_verify.main, {"state": "present", "root": str(unit), "manifest": manifest})
    assert result["changed"] and result["verification"]["ok"], result
    assert (unit / "vllm_cache" / "graph.py").read_bytes() == b"abc"
    assert not (unit / "vllm_cache.keys").exists()
