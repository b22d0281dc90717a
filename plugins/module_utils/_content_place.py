# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0
#
# PRIVATE to the collection: what a unit does with the content around the manifest (docs/content.md, "Distribution"):
# its free disk, the address it reaches the organizer from, its Python (for the engine wheel), the docker save
# tarballs' image IDs, and unpacking the compile-cache packs. Standard library only: this runs on the units.

from __future__ import annotations

import json
import os
import platform
import shutil
import socket
import sys
import tarfile

from ansible_collections.jetson_thor.workshop.plugins.module_utils import _content_manifest as cm
from ansible_collections.jetson_thor.workshop.plugins.module_utils._thor import nearest_statvfs

UNPACKED = ".thor-content/unpacked.json"


def free_space(path):
    """(free bytes for an unprivileged writer, the existing directory measured): path or its nearest existing parent."""
    st, probe = nearest_statvfs(path)
    return st.f_bavail * st.f_frsize, probe


def python_info():
    major, minor = sys.version_info[:2]
    return {"version": f"{major}.{minor}", "tag": f"cp{major}{minor}", "machine": platform.machine(),
            "executable": sys.executable}


def route_source(address):
    """The local address this host reaches address from (a UDP connect sends nothing), or None."""
    if not address:
        return None
    try:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((address, 9))
            return sock.getsockname()[0]
    except OSError:
        return None


def pack_target(rel):
    """packs/vllm_cache.tar -> vllm_cache: where a packed compile cache is unpacked, relative to the root."""
    name = os.path.basename(rel)
    for suffix in cm.PACK_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def packs(manifest):
    # Manifests written before kind_of knew better also called packs/*.keys.json a compile cache: archives only.
    return [f for f in manifest["files"] if f.get("kind") == "compile-cache" and f["path"].endswith(cm.PACK_SUFFIXES)]


def unpack_state(root):
    try:
        with open(os.path.join(root, UNPACKED), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def packs_to_unpack(root, manifest):
    """Packs whose unpacked directory is missing or came from another pack (by sha256)."""
    done = unpack_state(root)
    out = []
    for f in packs(manifest):
        target = os.path.join(root, pack_target(f["path"]))
        if done.get(f["path"]) != f["sha256"] or not os.path.isdir(target):
            out.append(f)
    return out


def _safe_members(archive, dest):
    for member in archive.getmembers():
        name = member.name
        if name.startswith("/") or ".." in name.split("/"):
            raise cm.ManifestError(f"{archive.name} holds an unsafe path {name!r}: re-pack the compile cache")
        if member.issym() or member.islnk():
            resolved = os.path.normpath(os.path.join(dest, os.path.dirname(name), member.linkname))
            if member.linkname.startswith("/") or not resolved.startswith(os.path.normpath(dest) + os.sep):
                raise cm.ManifestError(f"{archive.name} holds a link {name} -> {member.linkname} leaving the cache")
        elif not (member.isfile() or member.isdir()):
            raise cm.ManifestError(f"{archive.name} holds a special file {name}: re-pack the compile cache")
        yield member


def unpack(root, pack, owner=None):
    """Unpack one pack into <root>/<target> (replacing the old directory as a whole) and record it."""
    source = os.path.join(root, pack["path"])
    target = os.path.join(root, pack_target(pack["path"]))
    tmp = target + ".thor-unpack"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    with tarfile.open(source) as archive:
        members = list(_safe_members(archive, tmp))
        # Members are checked above; newer Pythons would warn without a filter, older ones have none.
        extra = {"filter": "fully_trusted"} if hasattr(tarfile, "data_filter") else {}
        archive.extractall(tmp, members=members, numeric_owner=True, **extra)
    if owner is not None:
        for dirpath, dirnames, filenames in os.walk(tmp):
            os.lchown(dirpath, *owner)
            for name in dirnames + filenames:
                os.lchown(os.path.join(dirpath, name), *owner)
    old = target + ".thor-old"
    shutil.rmtree(old, ignore_errors=True)
    if os.path.lexists(target):
        os.replace(target, old)
    os.replace(tmp, target)
    shutil.rmtree(old, ignore_errors=True)
    state = unpack_state(root)
    state[pack["path"]] = pack["sha256"]
    path = os.path.join(root, UNPACKED)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path + ".tmp", "w", encoding="utf-8") as out:
        json.dump(state, out)
    os.replace(path + ".tmp", path)
    return target


def image_id(path):
    """The image ID and tags of a `docker save` tarball, from its manifest.json (legacy or OCI layout)."""
    try:
        with tarfile.open(path) as archive:
            member = archive.extractfile("manifest.json")
            data = json.load(member)
    except (OSError, KeyError, ValueError, tarfile.TarError) as exc:
        raise cm.ManifestError(f"{path} is not a docker save tarball ({exc}): save the image again on the organizer") from None
    if not data:
        raise cm.ManifestError(f"{path} holds no image")
    config = data[0]["Config"]
    digest = os.path.basename(config)
    if digest.endswith(".json"):
        digest = digest[: -len(".json")]
    return {"id": "sha256:" + digest, "tags": data[0].get("RepoTags") or []}


def images(root, manifest):
    out = []
    for f in manifest["files"]:
        if f.get("kind") == "image":
            full = os.path.join(root, f["path"])
            entry = {"path": full}
            entry.update(image_id(full))
            out.append(entry)
    return out
