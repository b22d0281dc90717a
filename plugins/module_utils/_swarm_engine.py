# Copyright: contributors to jetson_thor.workshop
# SPDX-License-Identifier: Apache-2.0
#
# PRIVATE to the collection: the content swarm's engine process (docs/content.md, "Distribution").
#
# This file is also a program: jetson_thor.workshop.content_swarm writes its source to the unit (or the organizer)
# and runs it detached, with the unpacked libtorrent wheel on PYTHONPATH:
#   PYTHONPATH=<engine dir> python3 thor_content_swarm.py <config.json>
# Standard library only, apart from libtorrent (imported in main(), so the module can import the helpers below).
#
# One process per host: the organizer seeds (read-only: seed mode plus upload mode, it never writes), each unit
# downloads and keeps seeding to the other units until it is stopped (SIGTERM, the stop file) or its deadline. Peers
# come from the inventory (connect_peer) and an IP filter admits only them; no tracker, DHT, LSD, UPnP, NAT-PMP or
# uTP; the engine listens on the one fleet address it is given. A unit's torrent is added without resume data, so
# libtorrent checks the files already on disk piece by piece and fetches only the pieces that are missing or bad.
# The seed writes every unit's progress (bytes, rate, ETA), from the pieces each peer announces, to
# <progress_dir>/content-progress.json and .txt once a second.

from __future__ import annotations

import json
import math
import os
import signal
import sys
import time

MIN_PIECE = 256 * 1024
MAX_PIECE = 16 * 1024 * 1024
TARGET_PIECES = 8192
PROGRESS_JSON = "content-progress.json"
PROGRESS_TXT = "content-progress.txt"
STATUS_EVERY = 1.0
REDIAL_EVERY = 3.0
# libtorrent's error codes (libtorrent_category) for a connection it closes because neither end wants anything: 37
# upload_upload_connection, 38 uninteresting_upload_peer. Stable since libtorrent 0.16.
UPLOAD_ONLY_ERRORS = (37, 38)
RATE_WINDOW = 10.0


def piece_size_for(total_bytes):
    """A power of two between 256 KiB and 16 MiB giving at most about 8192 pieces (134 GB -> 16 MiB, 50 MB -> 256 KiB):
    few pieces keep the .torrent and the per-piece bookkeeping small, big files move in big reads."""
    want = max(1, math.ceil(total_bytes / TARGET_PIECES))
    size = MIN_PIECE
    while size < want and size < MAX_PIECE:
        size *= 2
    return size


def human_bytes(value):
    value = float(value or 0)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"


def human_eta(seconds):
    if seconds is None:
        return "-"
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


def write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=1, sort_keys=True)
    os.replace(tmp, path)


def write_text(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(tmp, path)


class RateMeter:
    """Bytes per second over the last RATE_WINDOW seconds, from (time, bytes) samples."""

    def __init__(self):
        self.samples = []

    def add(self, now, value):
        self.samples.append((now, value))
        while len(self.samples) > 2 and now - self.samples[0][0] > RATE_WINDOW:
            self.samples.pop(0)

    def rate(self):
        if len(self.samples) < 2:
            return 0.0
        (t0, v0), (t1, v1) = self.samples[0], self.samples[-1]
        return max(0.0, (v1 - v0) / (t1 - t0)) if t1 > t0 else 0.0


class FleetProgress:
    """The seed's view of every expected unit: how much of the content it announced (HAVE messages are sent only
    for pieces whose hash checked), at what rate, and when it will be done."""

    def __init__(self, expected, total, deadline):
        self.total = total
        self.deadline = deadline
        self.units = {
            name: {"name": name, "address": ip, "state": "waiting", "bytes": 0, "progress": 0.0, "rate": 0.0, "eta": None,
                   "connected": False, "done_at": None}
            for name, ip in expected
        }
        self.meters = {name: RateMeter() for name, _ip in expected}
        self.by_ip = {ip: name for name, ip in expected}
        self.started = time.time()
        self.last_change = time.time()

    def update(self, peers, now):
        """peers: {ip: (progress 0..1, is_seed)} as the seed sees them now."""
        for ip, name in self.by_ip.items():
            unit = self.units[name]
            seen = peers.get(ip)
            unit["connected"] = seen is not None
            if unit["state"] == "done":
                continue
            if seen is not None:
                progress = 1.0 if seen[1] else seen[0]
                have = round(progress * self.total)
                if have != unit["bytes"] or unit["state"] in ("waiting", "disconnected"):
                    self.last_change = now  # progress, or a unit that (re)connects: the stall clock starts again
                unit["bytes"] = max(unit["bytes"], have)
                unit["progress"] = round(unit["bytes"] / self.total, 4) if self.total else 1.0
                self.meters[name].add(now, unit["bytes"])
                unit["rate"] = round(self.meters[name].rate(), 1)
                left = self.total - unit["bytes"]
                unit["eta"] = round(left / unit["rate"], 1) if unit["rate"] > 0 else None
                if unit["bytes"] >= self.total:
                    unit.update(state="done", done_at=round(now - self.started, 1), eta=0, rate=0.0)
                    self.last_change = now
                else:
                    unit["state"] = "receiving"
            elif unit["state"] == "receiving":
                unit["state"] = "disconnected"

    def peer_left(self, ip, error_value, now):
        """A connection to a unit closed: libtorrent closes one between two complete peers at once ("upload to upload
        connection", or "uninteresting upload-only peer"), so a unit that completed from the other units is often never
        seen connected by the seed. That reason proves the unit is complete; any other leaves the unit as it was."""
        name = self.by_ip.get(ip)
        if name is None or error_value not in UPLOAD_ONLY_ERRORS or self.units[name]["state"] == "done":
            return
        self.units[name].update(state="done", bytes=self.total, progress=1.0, done_at=round(now - self.started, 1), eta=0,
                                rate=0.0)
        self.last_change = now

    def all_done(self):
        return all(u["state"] == "done" for u in self.units.values())

    def snapshot(self, now, state):
        return {
            "state": state,
            "updated": now,
            "elapsed": round(now - self.started, 1),
            "deadline_in": round(self.deadline - now, 1),
            "total_bytes": self.total,
            "last_change_ago": round(now - self.last_change, 1),
            "all_done": self.all_done(),
            "units": [self.units[name] for name in sorted(self.units)],
        }

    @staticmethod
    def render(snap):
        lines = [
            f"content distribution: {snap['state']}, {human_eta(snap['elapsed'])} elapsed, "
            f"{human_bytes(snap['total_bytes'])} per unit, deadline in {human_eta(max(0, snap['deadline_in']))}",
            f"{'unit':<12} {'state':<13} {'have':>11} {'of':>11} {'%':>6} {'rate/s':>11} {'eta':>8}",
        ]
        for u in snap["units"]:
            lines.append(
                f"{u['name']:<12} {u['state']:<13} {human_bytes(u['bytes']):>11} {human_bytes(snap['total_bytes']):>11} "
                f"{100 * u['progress']:>5.1f}% {human_bytes(u['rate']):>11} {human_eta(u['eta']):>8}"
            )
        done = sum(1 for u in snap["units"] if u["state"] == "done")
        stamp = time.strftime("%H:%M:%S", time.localtime(snap["updated"]))
        lines.append(f"{done} of {len(snap['units'])} units done (updated {stamp})")
        return "\n".join(lines) + "\n"


def session_settings(lt, config):
    """Closed-LAN settings: the high-performance seed preset, the maintainer's LAN advice (arvidn/libtorrent#5923),
    nothing that discovers or announces, TCP only, one listen address, every peer unchoked."""
    settings = lt.high_performance_seed()
    host = config["listen"].rsplit(":", 1)[0]
    settings.update({
        "listen_interfaces": config["listen"],
        "outgoing_interfaces": host,
        "enable_dht": False,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "enable_incoming_utp": False,
        "enable_outgoing_utp": False,
        "anonymous_mode": False,
        "user_agent": "jetson_thor.workshop content swarm",
        "alert_mask": lt.alert_category.status | lt.alert_category.error | lt.alert_category.storage
        | lt.alert_category.connect | lt.alert_category.peer,
        "connections_limit": 1000,
        "connection_speed": 200,
        "smooth_connects": False,
        "allow_multiple_connections_per_ip": True,
        "close_redundant_connections": False,
        "unchoke_slots_limit": -1,
        "seed_choking_algorithm": lt.seed_choking_algorithm_t.fastest_upload,
        "peer_connect_timeout": 5,
        "min_reconnect_time": 2,
        # Keep dialling a unit whose connections timed out (default: give up after 3 failures). Every address is a unit
        # of the inventory; at 60 units on a busy network a few attempts fail, and the seed must still meet each unit
        # again to see it complete (FleetProgress.peer_left). Retries back off by min_reconnect_time x failures.
        "max_failcount": 1000,
        "send_buffer_watermark": 8 * 1024 * 1024,
        "send_buffer_low_watermark": 1024 * 1024,
        "send_buffer_watermark_factor": 150,
        "max_out_request_queue": 1500,
        "max_allowed_in_request_queue": 2000,
        "request_queue_time": 3,
    })
    settings.update(config.get("settings") or {})
    return settings


class Engine:
    def __init__(self, lt, config):
        self.lt = lt
        self.config = config
        self.seed = config["role"] == "seed"
        self.stop_reason = None
        self.errors = []
        self.peer_events = []
        self.hash_failures = 0
        self.started = time.time()
        self.deadline = float(config["deadline"])
        self.session = lt.session(lt.session_params(session_settings(lt, config)))
        self.peers = [(p["name"], p["ip"], int(p["port"])) for p in config["peers"]]
        own_ip = config["listen"].rsplit(":", 1)[0]
        self.peers = [p for p in self.peers if p[1] != own_ip]
        ip_filter = lt.ip_filter()
        ip_filter.add_rule("0.0.0.0", "255.255.255.255", 1)
        for _name, ip, _port in self.peers:
            ip_filter.add_rule(ip, ip, 0)
        self.session.set_ip_filter(ip_filter)
        info = lt.torrent_info(config["torrent"])
        # The torrent's paths are <name>/<path in the content root>: each host keeps them under its own root.
        layout = info.layout()
        prefix = layout.name() + "/"
        renamed = {}
        self.content_bytes = 0
        for index in range(layout.num_files()):
            path = layout.file_path(index)
            if layout.file_flags(index) & layout.flag_pad_file:
                continue
            self.content_bytes += layout.file_size(index)
            if path.startswith(prefix):
                renamed[index] = path[len(prefix):]
        self.info = info
        params = lt.add_torrent_params()
        params.ti = info
        params.renamed_files = renamed
        params.save_path = config["save_path"]
        params.storage_mode = lt.storage_mode_t.storage_mode_sparse
        params.flags &= ~lt.torrent_flags.auto_managed
        params.flags &= ~lt.torrent_flags.paused
        if self.seed:
            # The organizer trusts its verified content root and never writes to it.
            params.flags |= lt.torrent_flags.seed_mode | lt.torrent_flags.upload_mode
            if config.get("super_seed"):
                params.flags |= lt.torrent_flags.super_seeding
        self.handle = self.session.add_torrent(params)
        self.progress = FleetProgress([(peer[0], peer[1]) for peer in self.peers if peer[0] in config.get("expected", [])],
                                      self.content_bytes, self.deadline) if self.seed else None
        self.done_at_start = None
        self.checked_at = None
        self.completed_at = None
        self.rate = RateMeter()

    def alerts(self):
        lt = self.lt
        for alert in self.session.pop_alerts():
            if isinstance(alert, lt.hash_failed_alert):
                self.hash_failures += 1
            elif isinstance(alert, (lt.peer_disconnected_alert, lt.peer_error_alert)):
                if self.progress is not None and isinstance(alert, lt.peer_disconnected_alert):
                    self.progress.peer_left(alert.ip[0], alert.error.value(), time.time())
                self.peer_events = ([*self.peer_events, f"{time.strftime('%H:%M:%S')} {alert.message()}"])[-8:]
            elif isinstance(alert, (lt.torrent_error_alert, lt.file_error_alert, lt.listen_failed_alert)):
                message = alert.message()
                if message not in self.errors:
                    self.errors.append(message)
                    self.errors = self.errors[-5:]
                if isinstance(alert, lt.listen_failed_alert):
                    self.stop_reason = f"cannot listen on {self.config['listen']}: {message}"

    def dial(self):
        connected = {p.ip[0] for p in self.handle.get_peer_info()}
        for _name, ip, port in self.peers:
            if ip not in connected:
                self.handle.connect_peer((ip, port))

    def status(self, now):
        lt = self.lt
        st = self.handle.status()
        checking = st.state in (lt.torrent_status.checking_files, lt.torrent_status.checking_resume_data)
        complete = (st.is_seeding or st.total_wanted_done >= st.total_wanted) and not checking
        if not checking and self.done_at_start is None:
            self.done_at_start = st.total_wanted_done
            self.checked_at = round(now - self.started, 1)
        if complete and self.completed_at is None:
            self.completed_at = round(now - self.started, 1)
        self.rate.add(now, st.total_payload_download)
        return {
            "role": self.config["role"],
            "name": self.config.get("name"),
            "pid": os.getpid(),
            "state": str(st.state).rsplit(".", 1)[-1],
            "checking": checking,
            "complete": complete,
            "progress": round(st.progress, 4),
            "total_bytes": st.total_wanted,
            "have_bytes": st.total_wanted_done,
            "have_at_start": self.done_at_start,
            "checked_after": self.checked_at,
            "completed_after": self.completed_at,
            "payload_download": st.total_payload_download,
            "payload_upload": st.total_payload_upload,
            "redundant_bytes": st.total_redundant_bytes,
            "failed_bytes": st.total_failed_bytes,
            "hash_failures": self.hash_failures,
            "rate_down": round(self.rate.rate(), 1),
            "peers": st.num_peers,
            "errors": self.errors,
            "peer_events": self.peer_events,
            "started": self.started,
            "elapsed": round(now - self.started, 1),
            "deadline": self.deadline,
            "stopped": self.stop_reason,
            "running": self.stop_reason is None,
        }

    def write(self, now, final=False):
        status = self.status(now)
        write_json(self.config["status_file"], status)
        if self.progress is not None:
            peers = {}
            for peer in self.handle.get_peer_info():
                peers[peer.ip[0]] = (peer.progress, bool(peer.flags & peer.seed))
            self.progress.update(peers, now)
            snap = self.progress.snapshot(now, "stopped: " + self.stop_reason if final and self.stop_reason else "running")
            directory = self.config["progress_dir"]
            write_json(os.path.join(directory, PROGRESS_JSON), snap)
            write_text(os.path.join(directory, PROGRESS_TXT), FleetProgress.render(snap))
        return status

    def run(self):
        stop_file = self.config.get("stop_file")
        last_dial = 0.0
        last_write = 0.0
        while self.stop_reason is None:
            now = time.time()
            self.alerts()
            if now >= self.deadline:
                self.stop_reason = "deadline reached"
            elif stop_file and os.path.exists(stop_file):
                self.stop_reason = "stop file"
            if now - last_dial >= REDIAL_EVERY:
                self.dial()
                last_dial = now
            if now - last_write >= STATUS_EVERY:
                self.write(now)
                last_write = now
            time.sleep(0.2)
        self.handle.pause()
        self.write(time.time(), final=True)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    with open(argv[0], encoding="utf-8") as f:
        config = json.load(f)
    import libtorrent as lt  # the unpacked wheel on PYTHONPATH; see content_swarm

    engine = Engine(lt, config)

    def _stop(signum, _frame):
        engine.stop_reason = f"signal {signal.Signals(signum).name}"

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    try:
        engine.run()
    finally:
        del engine.handle
        del engine.session  # waits for the disk threads: every received block is written when the process ends
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
