"""What converge.yml's two pre-warm runs left on the organizer, and how a stage starts from the pack.

The organizer's content root is <ephemeral>/organizer-data; the runs' statuses are status-first.json and
status-second.json (scripts/prewarm.py status --json); after playbooks/content.yml distributed the content,
serve-<unit>-<stage>.log is each warmed stage started on each unit.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "collections"))

from ansible_collections.jetson_thor.workshop.plugins.module_utils import _content_manifest as cm

EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
ROOT = EPHEMERAL / "organizer-data"
STAGES = {"gpt-oss-120b", "fp4", "fp4_eagle3"}
MODELS = {"openai/gpt-oss-120b", "nvidia/Llama-3.1-8B-Instruct-FP4", "yuhuili/EAGLE3-LLaMA3.1-Instruct-8B"}
PUBLISHED = {
    "o200k_base.tiktoken": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    "cl100k_base.tiktoken": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
}


@pytest.fixture(scope="module")
def manifest():
    path = ROOT / "manifest.json"
    if not path.is_file():
        pytest.skip(f"{path} is missing: run `molecule converge -s prewarm` first")
    return cm.load(str(path))


def status(run):
    return json.loads((EPHEMERAL / f"status-{run}.json").read_text())


def test_first_run_ended_without_failures():
    first = status("first")
    assert first["pid"] is None
    assert first["failures"] == []
    assert first["finished"] is not None
    assert any(entry["changed"] for entry in first["done"])


def test_second_start_changes_nothing():
    second = status("second")
    assert second["failures"] == []
    assert second["finished"] is not None
    assert second["finished"]["changed"] == {}, second["finished"]
    assert not [entry for entry in second["done"] if entry["changed"]]


def test_manifest_is_complete_and_correct(manifest):
    files = {f["path"]: f for f in manifest["files"]}
    for rel, entry in files.items():
        full = ROOT / rel
        assert full.is_file() and not full.is_symlink(), rel
        assert full.stat().st_size == entry["size"], rel
        assert cm.sha256_file(str(full)) == entry["sha256"], rel
    for link in manifest["symlinks"]:
        full = ROOT / link["path"]
        assert full.is_symlink() and os.readlink(full) == link["target"]
        assert full.resolve().is_relative_to((ROOT / "models").resolve())
    assert manifest["content_id"] == cm.content_id(manifest["files"], manifest["symlinks"])
    assert manifest["total_bytes"] == sum(f["size"] for f in manifest["files"])
    # Every regular file of the content's sub-directories is listed, nothing of the pre-warm's own state.
    on_disk = {
        str(p.relative_to(ROOT))
        for sub in cm.SUBDIRS
        for p in (ROOT / sub).rglob("*")
        if p.is_file() and not p.is_symlink()
    }
    assert on_disk == set(files)
    assert not [p for p in files if p.startswith(".prewarm")]
    repos = {p.split("/")[3] for p in files if p.startswith("models/")}
    assert repos == {"models--" + m.replace("/", "--") for m in MODELS}


def test_encodings_verified(manifest):
    files = {f["path"]: f for f in manifest["files"]}
    for name, digest in PUBLISHED.items():
        assert files[f"encodings/{name}"]["sha256"] == digest
        assert hashlib.sha256((ROOT / "encodings" / name).read_bytes()).hexdigest() == digest


def test_image_tarballs_saved_with_their_ids(manifest):
    images = {i["ref"]: i for i in manifest["images"]}
    assert set(images) == {"thor-twin/vllm:25.09-py3", "thor-twin/cuda:13.0.0-runtime-ubuntu24.04"}
    for ref, image in images.items():
        assert image["file"] == "images/" + ref.replace("/", "_").replace(":", "_") + ".tar"
        with tarfile.open(ROOT / image["file"]) as tar:
            saved = json.load(tar.extractfile("manifest.json"))
        assert saved[0]["RepoTags"] == [ref]
        assert image["id"] == "sha256:" + saved[0]["Config"].split("/")[-1].removesuffix(".json")


def test_compile_cache_packed_one_entry_per_stage(manifest):
    caches = manifest["compile_caches"]
    assert caches["pack"] == "packs/vllm_cache.tar"
    stages = caches["stages"]
    assert set(stages) == STAGES
    keys = json.loads((ROOT / caches["keys"]).read_text())
    assert keys["stages"] == stages
    with tarfile.open(ROOT / caches["pack"]) as tar:
        names = tar.getnames()
        members = tar.getmembers()
    hash_dirs = {n.split("/")[1] for n in names if n.count("/") >= 1}
    assert len(hash_dirs) == len(STAGES)
    assert {d for s in stages.values() for d in s["dirs"]} == {f"torch_compile_cache/{h}" for h in hash_dirs}
    assert all(m.mtime == 0 and m.uid == 0 for m in members)
    assert any(n.endswith("rank_0_0/eagle_head/twin_simulated.json") for n in names)
    assert len({s["key"] for s in stages.values()}) == len(STAGES)
    # Two stages on one unit: stage i went to reachable unit i modulo 2.
    assert {s["unit"] for s in stages.values()} == {"thor-m1", "thor-m2"}


@pytest.mark.parametrize("unit_name", ["thor-m1", "thor-m2"])
@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_stage_starts_without_compiling_on_every_unit_after_distribution(unit_name, stage):
    """The compile cache travelled in the pack: on both units (one of which never warmed this stage), each stage's
    start-up loads the compiled graphs instead of compiling them."""
    log = (EPHEMERAL / f"serve-{unit_name}-{stage}.log").read_text()
    assert "Application startup complete" in log, [line for line in log.splitlines() if "Error" in line][:5]
    assert "Directly load the compiled graph(s) for dynamic shape from the cache" in log
    assert "Compiling a graph for dynamic shape" not in log


def test_distribution_put_the_content_on_both_units():
    report = json.loads((EPHEMERAL / "reports-content" / "content-distribution.json").read_text())
    for unit in ("thor-m1", "thor-m2"):
        assert report["units"][unit]["verified"], report["units"][unit]
