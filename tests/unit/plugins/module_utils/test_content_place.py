from __future__ import annotations

import io
import json
import tarfile

import pytest

from ansible_collections.jetson_thor.workshop.plugins.module_utils import _content_manifest as cm
from ansible_collections.jetson_thor.workshop.plugins.module_utils import _content_place as place


def write_tar(path, members):
    with tarfile.open(path, "w") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_pack_target():
    assert place.pack_target("packs/vllm_cache.tar") == "vllm_cache"
    assert place.pack_target("packs/x.tar.gz") == "x"


def test_unpack_replaces_the_directory_and_records_the_pack(tmp_path):
    (tmp_path / "packs").mkdir()
    write_tar(tmp_path / "packs" / "vllm_cache.tar", {"torch_compile_cache/a.py": b"a", "b.bin": b"bb"})
    manifest = cm.build(str(tmp_path))
    (tmp_path / "vllm_cache").mkdir()
    (tmp_path / "vllm_cache" / "stale").write_text("old")
    assert [f["path"] for f in place.packs_to_unpack(str(tmp_path), manifest)] == ["packs/vllm_cache.tar"]
    place.unpack(str(tmp_path), place.packs(manifest)[0])
    assert (tmp_path / "vllm_cache" / "torch_compile_cache" / "a.py").read_bytes() == b"a"
    assert not (tmp_path / "vllm_cache" / "stale").exists()
    assert place.packs_to_unpack(str(tmp_path), manifest) == []


def test_unpack_refuses_paths_leaving_the_cache(tmp_path):
    (tmp_path / "packs").mkdir()
    write_tar(tmp_path / "packs" / "vllm_cache.tar", {"../evil": b"x"})
    manifest = cm.build(str(tmp_path))
    with pytest.raises(cm.ManifestError, match="unsafe"):
        place.unpack(str(tmp_path), place.packs(manifest)[0])
    assert not (tmp_path / "evil").exists()


@pytest.mark.parametrize("config", ["0123abcd.json", "blobs/sha256/0123abcd"])
def test_image_id_from_docker_save(tmp_path, config):
    manifest = json.dumps([{"Config": config, "RepoTags": ["thor-twin/x:1"], "Layers": []}]).encode()
    write_tar(tmp_path / "x.tar", {"manifest.json": manifest})
    assert place.image_id(str(tmp_path / "x.tar")) == {"id": "sha256:0123abcd", "tags": ["thor-twin/x:1"]}


def test_image_id_of_something_else_names_the_fix(tmp_path):
    (tmp_path / "x.tar").write_bytes(b"not a tar")
    with pytest.raises(cm.ManifestError, match="docker save"):
        place.image_id(str(tmp_path / "x.tar"))


def test_free_space_measures_the_nearest_existing_parent(tmp_path):
    free, probe = place.free_space(str(tmp_path / "not" / "yet"))
    assert probe == str(tmp_path) and free > 0


def test_route_source_and_python():
    assert place.route_source("127.0.0.1") == "127.0.0.1"
    assert place.route_source("") is None
    info = place.python_info()
    assert info["tag"].startswith("cp3") and info["machine"]
