"""What the five runs of the content scenario did (molecule/content/molecule.yml), from their fleet summaries, the
organizer's content-distribution.json of each run and the units themselves."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

EPHEMERAL = Path(os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY", "/nonexistent"))
ROOT = "/home/workshop/data"
pytestmark = pytest.mark.skipif(not EPHEMERAL.is_dir(), reason="runs under molecule (converge writes the run reports)")


def summary(run):
    data = json.loads((EPHEMERAL / run / "fleet-summary.json").read_text())
    return {u["unit"]: u for u in data["units"]}


def report(run):
    return json.loads((EPHEMERAL / run / "content-distribution.json").read_text())


def manifest():
    return json.loads((EPHEMERAL / "content-root" / "manifest.json").read_text())


def recap(run):
    """PLAY RECAP counts per host from the run's output."""
    out = {}
    for line in (EPHEMERAL / f"{run}.log").read_text().splitlines():
        match = re.match(r"^(\S+)\s+:\s+(ok=.*)$", line)
        if match:
            out[match.group(1)] = dict(item.split("=", 1) for item in match.group(2).split())
    return out


def test_first_run_fills_three_units_and_refuses_the_short_one():
    units = summary("first")
    for name in ("thor-m1", "thor-m2", "thor-m3"):
        assert units[name]["status"] == "changed", units[name]
        assert report("first")["units"][name]["verified"] is True
    m4 = units["thor-m4"]
    assert m4["status"] == "failed"
    assert "not enough free disk" in m4["what_happened"] and "/home/workshop/data" in m4["what_happened"]
    assert "MiB free" in m4["what_happened"] and "needs" in m4["what_happened"]
    # never half-filled: nothing was written to its data root
    assert (EPHEMERAL / "m4-root-after-first.txt").read_text().strip() == ""


def test_second_run_changes_nothing():
    units = summary("again")
    for name in ("thor-m1", "thor-m2", "thor-m3"):
        assert units[name]["status"] == "converged", units[name]
    assert summary("again")["thor-m4"]["status"] == "failed"
    counts = recap("again")
    assert all(c["changed"] == "0" for c in counts.values()), counts
    assert not any(u["transferred"] for u in report("again")["units"].values())


def test_damaged_blobs_are_repaired_with_only_their_pieces():
    units = summary("repair")
    rep = report("repair")
    total = manifest()["total_bytes"]
    for name in ("thor-m1", "thor-m2"):
        assert units[name]["status"] == "changed", units[name]
        unit = rep["units"][name]
        assert unit["verified"] and unit["transferred"] and unit["complete"]
        blob, size = (EPHEMERAL / f"damage-{name}.txt").read_text().split()
        # only pieces of the damaged blob travel again: at most that blob (plus one piece of slack), far less than F
        assert 0 < unit["payload_download"] <= int(size) + 262144, (unit, size)
        assert unit["payload_download"] < total / 4
        print(f"{name}: {blob.rsplit('/', 1)[-1][:12]} ({size} B) damaged, {unit['payload_download']} B re-sent of F={total}")
    assert units["thor-m3"]["status"] == "converged"
    assert units["thor-m4"]["status"] == "unreachable"


def test_killed_transfer_fails_with_the_cause_then_resumes():
    m4 = summary("interrupt")["thor-m4"]
    assert m4["status"] == "failed"
    assert "transfer did not complete" in m4["what_happened"] and "not running" in m4["what_happened"], m4["what_happened"]
    killed = json.loads((EPHEMERAL / "m4-killed-status.json").read_text())
    resumed = report("resume")["units"]["thor-m4"]
    total = manifest()["total_bytes"]
    assert summary("resume")["thor-m4"]["status"] == "changed"
    assert resumed["verified"] and resumed["complete"]
    lost = resumed["bytes_needed_before"]  # what was not on disk when the run began
    beyond = resumed["payload_download"] - lost
    print(f"killed at {killed['have_bytes']} of {total} B; resume needed {lost} B, received {resumed['payload_download']} B "
          f"({beyond} B = {100 * beyond / total:.1f} % of F beyond what was lost); have_at_start {resumed['have_at_start']}")
    assert resumed["have_at_start"] >= killed["have_bytes"] * 0.9
    assert beyond <= 0.10 * total


def test_every_unit_holds_the_verified_content(host):
    data = manifest()
    stamp = json.loads(host.check_output(f"sudo cat {ROOT}/.thor-content/verified.json"))
    assert stamp["content_id"] == data["content_id"]
    for link in data["symlinks"][:20]:
        entry = host.file(f"{ROOT}/{link['path']}")
        assert entry.is_symlink and entry.linked_to.endswith(link["target"].rsplit("/", 1)[-1])
    # blobs are stored once: the regular files under models/ add up to what the manifest lists there
    regular = int(host.check_output(f"find {ROOT}/models -type f -printf '%s\\n' | awk '{{s+=$1}} END {{print s}}'"))
    assert regular == sum(f["size"] for f in data["files"] if f["path"].startswith("models/"))
    assert host.file(f"{ROOT}/vllm_cache/torch_compile_cache/rank_0_0/graph_1.py").is_file
    assert host.run("sudo docker image inspect thor-twin/content-test:1").rc == 0
    assert host.run("systemctl is-active thor-content-swarm").stdout.strip() != "active"
