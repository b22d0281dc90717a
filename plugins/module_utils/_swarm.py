# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0
#
# PRIVATE to the collection: what content_torrent and content_swarm share (docs/content.md, "Distribution"):
# the shipped libtorrent wheel, the torrent made from a content manifest, and the engine process's life cycle
# (a transient systemd unit on the units, a detached process where there is no systemd, such as the organizer).
# Standard library only; libtorrent is imported from the unpacked wheel when it is needed.

from __future__ import annotations

import importlib
import inspect
import json
import os
import shutil
import signal
import sys
import time
import zipfile

from ansible_collections.jetson_thor.workshop.plugins.module_utils import _swarm_engine

TORRENT_NAME = "thor-content"
SCRIPT_NAME = "thor_content_swarm.py"


class SwarmError(Exception):
    """A problem the caller reports as is: it names the cause and the way out."""


# --- the engine (libtorrent from its wheel) ---------------------------------------------------------------------
def unpack_wheel(wheel, engine_root, owner=None):
    """Unpack a libtorrent wheel into <engine_root>/<wheel name without .whl> (once) and return (dir, changed).
    A wheel is a zip file; its top level holds the package, so the directory goes on PYTHONPATH as it is."""
    if not os.path.isfile(wheel):
        raise SwarmError(f"the libtorrent wheel {wheel} is missing: the role copies it from the organizer first")
    name = os.path.basename(wheel)
    if not name.endswith(".whl"):
        raise SwarmError(f"{wheel} is not a wheel (*.whl)")
    target = os.path.join(engine_root, name[: -len(".whl")])
    marker = os.path.join(target, ".unpacked")
    if os.path.exists(marker):
        return target, False
    os.makedirs(engine_root, exist_ok=True)
    tmp = target + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                if member.startswith("/") or ".." in member.split("/"):
                    raise SwarmError(f"{wheel} holds an unsafe path {member!r}")
            archive.extractall(tmp)
    except zipfile.BadZipFile as exc:
        raise SwarmError(f"{wheel} is not a valid wheel ({exc}): delete it on the organizer and run again") from None
    with open(os.path.join(tmp, ".unpacked"), "w", encoding="utf-8") as out:
        out.write(name + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    if owner is not None:
        chown_tree(target, *owner)
    return target, True


def import_libtorrent(engine_dir):
    """Import libtorrent from an unpacked wheel (the organizer's modules run without it installed)."""
    if engine_dir and engine_dir not in sys.path:
        sys.path.insert(0, engine_dir)
    try:
        return importlib.import_module("libtorrent")
    except ImportError as exc:
        raise SwarmError(
            f"libtorrent does not import from {engine_dir or 'the Python path'} with {sys.executable} "
            f"(Python {sys.version_info[0]}.{sys.version_info[1]}): {exc}. The wheel must match this Python and "
            "architecture (content_distribution_engine_wheel_dir, or let the role fetch it)"
        ) from None


def chown_tree(path, uid, gid):
    for dirpath, dirnames, filenames in os.walk(path):
        os.lchown(dirpath, uid, gid)
        for name in dirnames + filenames:
            os.lchown(os.path.join(dirpath, name), uid, gid)


# --- the torrent -------------------------------------------------------------------------------------------------
def torrent_files(manifest):
    """The manifest's regular files, in manifest order: only these travel (links are placed afterwards)."""
    return [(f["path"], int(f["size"])) for f in manifest["files"]]


def make_torrent(lt, manifest, root, piece_size, out_path, work_dir):
    """Hash root's files as the manifest lists them into a hybrid (v1 + v2) torrent at out_path. Every file starts
    on a piece boundary (pad files, not stored on disk), so a bad file costs only its own pieces."""
    files = torrent_files(manifest)
    entries = [lt.create_file_entry(f"{TORRENT_NAME}/{path}", size) for path, size in files]
    creator = lt.create_torrent(entries, piece_size, 0)
    creator.set_creator("jetson_thor.workshop content_torrent")
    creator.set_comment(f"content_id {manifest['content_id']}")
    # set_piece_hashes reads <dir>/<torrent name>/<path>: give it the content root under that name.
    link_dir = os.path.join(work_dir, "hash-root")
    os.makedirs(link_dir, exist_ok=True)
    link = os.path.join(link_dir, TORRENT_NAME)
    if os.path.lexists(link):
        os.unlink(link)
    os.symlink(os.path.abspath(root), link)
    try:
        lt.set_piece_hashes(creator, link_dir)
    except RuntimeError as exc:
        raise SwarmError(f"hashing {root} for the torrent failed: {exc}; check the content root against the manifest") from None
    finally:
        os.unlink(link)
    data = lt.bencode(creator.generate())
    tmp = out_path + ".tmp"
    with open(tmp, "wb") as out:
        out.write(data)
    os.replace(tmp, out_path)
    return torrent_summary(lt, out_path)


def torrent_summary(lt, path):
    info = lt.torrent_info(path)
    return {
        "torrent": path,
        "info_hash": str(info.info_hashes().get_best()),
        "pieces": info.num_pieces(),
        "piece_size": info.piece_length(),
        "total_bytes": info.total_size(),
        "name": info.name(),
        "comment": info.comment(),
    }


# --- the engine process ------------------------------------------------------------------------------------------
def engine_source():
    """The engine program's source, written to the target next to its configuration."""
    try:
        return inspect.getsource(_swarm_engine)
    except (OSError, TypeError):
        with open(_swarm_engine.__file__, encoding="utf-8") as f:
            return f.read()


def paths(state_dir):
    return {
        "script": os.path.join(state_dir, SCRIPT_NAME),
        "config": os.path.join(state_dir, "swarm.json"),
        "status": os.path.join(state_dir, "status.json"),
        "stop": os.path.join(state_dir, "stop"),
        "pid": os.path.join(state_dir, "engine.pid"),
        "log": os.path.join(state_dir, "engine.log"),
    }


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def pid_alive(pid, script=None):
    """True if pid runs (and, given script, runs that program: a recycled pid does not count)."""
    if not pid:
        return False
    try:
        with open(f"/proc/{int(pid)}/cmdline", "rb") as f:
            cmdline = f.read().split(b"\0")
    except OSError:
        return False
    if script is None:
        return True
    return any(part.decode(errors="replace") == script for part in cmdline)


def has_systemd():
    return os.path.isdir("/run/systemd/system") and shutil.which("systemd-run") is not None


def wait_for_exit(pid, script, seconds):
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not pid_alive(pid, script):
            return True
        time.sleep(0.2)
    return not pid_alive(pid, script)


def kill(pid, script, grace):
    """SIGTERM (the engine stops cleanly), SIGKILL after grace seconds. Returns True if it was running."""
    if not pid_alive(pid, script):
        return False
    try:
        os.kill(int(pid), signal.SIGTERM)
    except ProcessLookupError:
        return False
    if not wait_for_exit(pid, script, grace):
        try:
            os.kill(int(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass
        wait_for_exit(pid, script, 5)
    return True
