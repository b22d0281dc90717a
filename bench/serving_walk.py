#!/usr/bin/env python3
"""How long the workshop's five-stage walk takes on a twin fleet: playbooks/serve.yml once per stage, as organizers run it.

Brings up the twin fleet (FLEET_SIZE units, default 4), puts every stage's content on each unit (twin/content's HF
cache at 1/100000 and the tiktoken encodings, copied as the distribution leaves them), empties each unit's vLLM
compile cache, then walks gpt-oss-120b -> fp16 -> fp8 -> fp4 -> fp4_eagle3 twice with the default rollout waves:

  cold  every stage compiles its torch.compile graphs (the first start on a unit);
  warm  the same walk again: every stage loads its graphs from the cache, as after the pre-warm's distribution.

For each step it prints the wall time of `ansible-playbook playbooks/serve.yml -e vllm_stage=<stage>` and, from the
run's fleet summary, every unit's readiness and the start-up phases the serving role read from vLLM's log (slowest
unit shown). The vLLM twin runs at VLLM_TWIN_TIME_SCALE 1 (its Jetson Thor timing model): every start-up time is
SIMULATED Thor time reproduced on this machine, not a Thor measurement; the playbook's own time is this machine's.

    .venv/bin/python bench/serving_walk.py [--units 4] [--walks cold,warm] [--json out.json]   (as root, ~20 min)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV_BIN = ROOT / ".venv" / "bin"
WORK = ROOT / "build" / "bench" / "serving"
STAGES = ["gpt-oss-120b", "fp16", "fp8", "fp4", "fp4_eagle3"]
INVENTORY = ROOT / "inventories" / "sim"
LOG = WORK / "bench.log"


def env():
    return dict(os.environ, PATH=f"{VENV_BIN}:{os.environ['PATH']}", ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"))


def run(argv, extra_env=None, check=True):
    """Run a command with its output appended to the log; returns its exit status."""
    with open(LOG, "a") as log:
        log.write(f"\n$ {' '.join(map(str, argv))}\n")
        log.flush()
        rc = subprocess.run(list(map(str, argv)), stdout=log, stderr=subprocess.STDOUT, env={**env(), **(extra_env or {})},
                            cwd=ROOT).returncode
    if check and rc:
        sys.exit(f"{argv[:3]}... failed with {rc}; see {LOG}")
    return rc


def fleet_up(n):
    run(["make", "-C", ROOT, "--no-print-directory", "images"])
    run([VENV_BIN / "ansible-playbook", ROOT / "playbooks" / "sim" / "fleet_up.yml", "-e", f"twin_fleet_size={n}"])


def content(n, clear_cache=True):
    """Every stage's content on every unit (molecule/shared/serving_content.yml); no compile cache yet when a cold walk
    comes first (a warm walk alone keeps the cache an earlier walk left)."""
    limit = ",".join(f"thor-{i:02d}" for i in range(1, n + 1))
    run([VENV_BIN / "ansible-playbook", "-i", INVENTORY, "--limit", limit, ROOT / "molecule" / "shared" / "serving_content.yml",
         "-e", json.dumps({"serving_content_project": str(ROOT), "serving_content_dir": str(WORK / "unit-content")})])
    if clear_cache:
        run([VENV_BIN / "ansible", "-i", INVENTORY, "--limit", limit, "thor", "--become", "-m", "ansible.builtin.shell",
             "-a", "docker rm -f vllm >/dev/null 2>&1; rm -rf /home/workshop/data/vllm_cache"])


def step(walk, stage, n):
    limit = ",".join(f"thor-{i:02d}" for i in range(1, n + 1))
    reports = WORK / "reports" / f"{walk}-{stage}"
    reports.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    rc = run([VENV_BIN / "ansible-playbook", "-i", INVENTORY, "--limit", f"{limit},organizer", ROOT / "playbooks" / "serve.yml",
              "-e", f"vllm_stage={stage}"], extra_env={"JETSON_THOR_REPORT_DIR": str(reports)}, check=False)
    wall = time.monotonic() - start
    summary = json.loads((reports / "fleet-summary.json").read_text())
    units = [u for u in summary["units"] if u["unit"].startswith("thor-")]
    phases = [((u["details"] or {}).get("startup") or "") for u in units]
    return {
        "walk": walk,
        "stage": stage,
        "rc": rc,
        "wall_s": round(wall, 1),
        "ready": sum(1 for u in units if (u["details"] or {}).get("stage_ready") is True),
        "units": len(units),
        "statuses": sorted({u["status"] for u in units}),
        "startup": dict(zip((u["unit"] for u in units), phases, strict=True)),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=4)
    parser.add_argument("--walks", default="cold,warm")
    parser.add_argument("--json")
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("run as root: it brings up the twin fleet (Docker)")
    WORK.mkdir(parents=True, exist_ok=True)
    LOG.write_text("")
    fleet_up(args.units)
    content(args.units, clear_cache="cold" in args.walks.split(","))
    rows = []
    for walk in args.walks.split(","):
        for stage in STAGES:
            row = step(walk, stage, args.units)
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"units": args.units, "simulated": True, "rows": rows}, indent=2) + "\n")
    report(rows, args.units)


def report(rows, n):
    print(f"\nThe five-stage walk on {n} twin units (default rollout waves); start-up = the vLLM twin's SIMULATED Thor time")
    print(f"{'walk':>5} {'stage':>12} {'wall s':>7} {'ready':>6}  start-up of each unit (load, compile, graphs, total)")
    for walk in dict.fromkeys(r["walk"] for r in rows):
        mine = [r for r in rows if r["walk"] == walk]
        for r in mine:
            first = next(iter(r["startup"].values()), "")
            same = all(v == first for v in r["startup"].values())
            shown = first if same else "; ".join(f"{u}: {v}" for u, v in r["startup"].items())
            print(f"{walk:>5} {r['stage']:>12} {r['wall_s']:>7.1f} {r['ready']:>3}/{r['units']:<2}  {shown}")
        print(f"{walk:>5} {'all five':>12} {sum(r['wall_s'] for r in mine):>7.1f}")


if __name__ == "__main__":
    main()
