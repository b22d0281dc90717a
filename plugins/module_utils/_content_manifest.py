# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0
#
# PRIVATE to the collection: the offline content manifest (docs/content.md, "The manifest").
# Standard library only: this code runs on the organizer and on the units, which have no pip.
#
# A content root holds everything a unit needs before the workshop, under fixed sub-directories:
#   models/huggingface/hub/models--<org>--<name>/{blobs,refs,snapshots}   (HF_HOME=<root>/models/huggingface)
#   encodings/{o200k_base,cl100k_base}.tiktoken                          (TIKTOKEN_ENCODINGS_BASE)
#   packs/*.tar                                                          (packed compile caches)
#   images/*.tar                                                         (docker save tarballs)
# The manifest lists every regular file (path, size, sha256, kind) and every symlink (path, target), never
# following a link: HF snapshot entries stay links into blobs/, so blobs move once and are never doubled.

from __future__ import annotations

import hashlib
import json
import os
import stat
import time

FORMAT = "jetson_thor.workshop/content-manifest/1"
SUBDIRS = ("models", "encodings", "packs", "images")
STAMP = ".thor-content/verified.json"
CHUNK = 4 * 1024 * 1024


class ManifestError(Exception):
    """Bad input: the message names the problem and the fix."""


def sha256_file(path, chunk=CHUNK):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            block = f.read(chunk)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


PACK_SUFFIXES = (".tar.gz", ".tgz", ".tar")


def kind_of(rel):
    """What a file is, from where it lives in the content root."""
    parts = rel.split("/")
    if parts[0] == "models":
        if "blobs" in parts:
            return "hf-blob"
        if "refs" in parts:
            return "hf-ref"
        return "hf-file"
    if parts[0] == "encodings":
        return "encoding"
    # Only the archives are packs and images; their notes (packs/vllm_cache.keys.json) are plain files.
    if parts[0] == "packs" and rel.endswith(PACK_SUFFIXES):
        return "compile-cache"
    if parts[0] == "images" and rel.endswith(".tar"):
        return "image"
    return "file"


def _inside(root, rel, target):
    """True if a link at rel pointing to target (relative or absolute) resolves inside root, lexically."""
    base = os.path.dirname(os.path.join(root, rel))
    resolved = os.path.normpath(os.path.join(base, target))
    return os.path.commonpath([os.path.normpath(root), resolved]) == os.path.normpath(root)


def scan(root, subdirs=SUBDIRS, hash_cache=None, progress=None):
    """Walk root's sub-directories and return (files, symlinks), sorted by path.

    hash_cache: a dict {rel: [size, mtime_ns, sha256]} reused for files whose size and mtime did not change (so a
    re-run of a long pre-warm does not hash 130 GB again); it is updated in place. progress(rel, size) is called
    before each file is hashed. Links that leave root, or dangle, are errors: the manifest must be complete."""
    root = os.path.abspath(root)
    if not os.path.isdir(root):
        raise ManifestError(f"content root {root} does not exist: run the pre-warm playbook first, or set the content root")
    files, links, problems = [], [], []
    cache = hash_cache if hash_cache is not None else {}
    for sub in subdirs:
        top = os.path.join(root, sub)
        if not os.path.isdir(top):
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            dirnames.sort()
            for name in sorted(filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]):
                full = os.path.join(dirpath, name)
                rel = os.path.relpath(full, root).replace(os.sep, "/")
                st = os.lstat(full)
                if stat.S_ISLNK(st.st_mode):
                    target = os.readlink(full)
                    if not _inside(root, rel, target):
                        problems.append(f"{rel} -> {target} points outside the content root")
                    elif not os.path.exists(full):
                        problems.append(f"{rel} -> {target} dangles (its target is missing)")
                    else:
                        links.append({"path": rel, "target": target})
                elif stat.S_ISREG(st.st_mode):
                    if ".incomplete" in name or name.endswith(".lock"):
                        problems.append(f"{rel} is an unfinished download: finish or delete it")
                        continue
                    known = cache.get(rel)
                    if known and known[0] == st.st_size and known[1] == st.st_mtime_ns:
                        digest = known[2]
                    else:
                        if progress:
                            progress(rel, st.st_size)
                        digest = sha256_file(full)
                        cache[rel] = [st.st_size, st.st_mtime_ns, digest]
                    files.append({"path": rel, "size": st.st_size, "sha256": digest, "kind": kind_of(rel)})
    if problems:
        raise ManifestError("the content root is not complete: " + "; ".join(problems))
    return files, links


def content_id(files, links):
    """One hash over what the content is (paths, sizes, sha256, link targets): stamps and torrents name it."""
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"F {f['path']} {f['size']} {f['sha256']}\n".encode())
    for link in links:
        digest.update(f"L {link['path']} {link['target']}\n".encode())
    return digest.hexdigest()


def build(root, name="workshop", extra=None, subdirs=SUBDIRS, hash_cache=None, progress=None):
    """The manifest of root as a dict (see the module comment); extra: more top-level keys (images, caches...)."""
    files, links = scan(root, subdirs, hash_cache, progress)
    if not files:
        raise ManifestError(f"content root {root} holds no files under {', '.join(subdirs)}: nothing to distribute")
    manifest = {
        "format": FORMAT,
        "name": name,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "content_id": content_id(files, links),
        "total_bytes": sum(f["size"] for f in files),
        "files": files,
        "symlinks": links,
    }
    manifest.update(extra or {})
    return manifest


def load(path):
    """Read and check a manifest file; ManifestError names what is wrong and what to do."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ManifestError(f"no manifest at {path}: run the pre-warm playbook (playbooks/prewarm.yml) first") from None
    except (OSError, ValueError) as exc:
        raise ManifestError(f"cannot read the manifest {path}: {exc}; re-run the pre-warm playbook to write it again") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ManifestError(f"{path} is not a content manifest of format {FORMAT!r}: re-run the pre-warm playbook")
    for key in ("files", "symlinks", "content_id", "total_bytes"):
        if key not in data:
            raise ManifestError(f"the manifest {path} has no {key!r}: it is truncated; re-run the pre-warm playbook")
    for entry in data["files"] + data["symlinks"]:
        rel = entry.get("path", "")
        if not rel or rel.startswith("/") or ".." in rel.split("/"):
            raise ManifestError(f"the manifest {path} has an unsafe path {rel!r}: it was not written by this collection")
    return data


def allocated_bytes(path):
    """Bytes a file really occupies (sparse and preallocated-but-unwritten files count what is written so far)."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if not stat.S_ISREG(st.st_mode):
        return 0
    return min(st.st_size, st.st_blocks * 512)


def bytes_needed(root, manifest):
    """How many more bytes root needs to hold the manifest's files (for the free-disk check before a transfer)."""
    need = 0
    for f in manifest["files"]:
        need += max(0, f["size"] - allocated_bytes(os.path.join(root, f["path"])))
    return need


def read_stamp(root):
    try:
        with open(os.path.join(root, STAMP), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def write_stamp(root, manifest, mode):
    """Record that root held the manifest's content, verified in `mode`, with each file's size/mtime/inode (so a
    quick check later notices a file that was rewritten, truncated or replaced)."""
    stamp = {"content_id": manifest["content_id"], "mode": mode, "verified": time.time(), "files": {}}
    for f in manifest["files"]:
        st = os.stat(os.path.join(root, f["path"]))
        stamp["files"][f["path"]] = [st.st_size, st.st_mtime_ns, st.st_ino]
    path = os.path.join(root, STAMP)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(stamp, out)
    os.replace(tmp, path)
    return stamp


def verify(root, manifest, mode="quick"):
    """Compare root with the manifest. mode "quick": sizes, links, and sha256 only of files the last verification
    stamp does not vouch for (size, mtime and inode unchanged); "full": sha256 of every file.

    Returns {"ok", "missing", "wrong_size", "corrupt", "links", "hashed_bytes"}: lists of paths (links: of links
    that are missing or point elsewhere)."""
    if mode not in ("quick", "full"):
        raise ManifestError(f"verify mode must be 'quick' or 'full', not {mode!r}")
    stamp = read_stamp(root)
    vouched = stamp.get("files", {}) if stamp.get("content_id") == manifest["content_id"] else {}
    report = {"missing": [], "wrong_size": [], "corrupt": [], "links": [], "hashed_bytes": 0}
    for f in manifest["files"]:
        full = os.path.join(root, f["path"])
        try:
            st = os.lstat(full)
        except FileNotFoundError:
            report["missing"].append(f["path"])
            continue
        if not stat.S_ISREG(st.st_mode):
            report["missing"].append(f["path"])
        elif st.st_size != f["size"]:
            report["wrong_size"].append(f["path"])
        elif mode == "full" or vouched.get(f["path"]) != [st.st_size, st.st_mtime_ns, st.st_ino]:
            report["hashed_bytes"] += st.st_size
            if sha256_file(full) != f["sha256"]:
                report["corrupt"].append(f["path"])
    for link in manifest["symlinks"]:
        full = os.path.join(root, link["path"])
        if not os.path.islink(full) or os.readlink(full) != link["target"]:
            report["links"].append(link["path"])
    report["ok"] = not any(report[k] for k in ("missing", "wrong_size", "corrupt", "links"))
    return report


def place_links(root, manifest, check_mode=False):
    """Create or correct every symlink of the manifest (never dereferencing: a link stays a link). A regular file
    or directory where a link belongs is an error, not overwritten. Returns the paths changed."""
    changed = []
    for link in manifest["symlinks"]:
        full = os.path.join(root, link["path"])
        if os.path.islink(full):
            if os.readlink(full) == link["target"]:
                continue
        elif os.path.lexists(full):
            raise ManifestError(
                f"{full} is a regular file or directory where the manifest has a link to {link['target']}: "
                "move it away (it is not overwritten) and run again"
            )
        changed.append(link["path"])
        if check_mode:
            continue
        os.makedirs(os.path.dirname(full), exist_ok=True)
        tmp = full + ".thor-link-tmp"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(link["target"], tmp)
        os.replace(tmp, full)
    return changed
