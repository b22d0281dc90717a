"""thor-twin: inspect and steer the simulated parts of a twin Thor unit. State is printed as JSON."""

import argparse
import json
import os
import sys

from . import boot, images, memd, state

USAGE = """thor-twin fault list | get KEY | set KEY=VALUE... | clear [KEY...]
thor-twin memory show | stick GIB | cache GIB
thor-twin state
(internal: thor-twin boot | memd | images load|status)"""


def _dump(data):
    print(json.dumps(data, indent=1, sort_keys=True))


def _need_root():
    if os.geteuid() != 0:
        raise PermissionError("thor-twin: changing the twin needs root (use sudo)")


def fault(args, paths):
    if args.action == "list":
        _dump(state.load_faults(paths))
        return 0
    if args.action == "get":
        if len(args.items) != 1 or args.items[0] not in state.DEFAULT_FAULTS:
            raise ValueError(f"fault get takes one of: {', '.join(state.DEFAULT_FAULTS)}")
        _dump(state.load_faults(paths)[args.items[0]])
        return 0
    if args.action == "set" and not args.items:
        raise ValueError("fault set takes KEY=VALUE...")
    if args.action == "set":
        changes = dict(state.parse_assignment(a) for a in args.items)
    else:
        unknown = set(args.items) - state.DEFAULT_FAULTS.keys()
        if unknown:
            raise ValueError(f"unknown fault knob(s) {', '.join(sorted(unknown))}")
        changes = {k: state.DEFAULT_FAULTS[k] for k in (args.items or state.DEFAULT_FAULTS)}
    _need_root()
    with state.locked(paths):
        faults = {**state.load_faults(paths), **changes}
        state.save_faults(paths, faults)
        if {"l4t_release", "l4t_revision"} & changes.keys():
            boot.render_l4t(paths, faults)
    memd.tick(paths)
    _dump(changes)
    return 0


def memory(args, paths):
    if args.action == "show":
        model = state.read_json(paths.memory) or memd.tick(paths)
        _dump({**model, **{k + "_gib": round(v / state.GIB, 2) for k, v in model.items()}})
        return 0
    if len(args.items) != 1:
        raise ValueError(f"memory {args.action} takes GIB")
    gib = state.convert("memory_stuck_gib", args.items[0])
    _need_root()
    with state.locked(paths):
        if args.action == "stick":
            faults = state.load_faults(paths)
            faults["memory_stuck_gib"] += gib
            state.save_faults(paths, faults)
        else:  # cache: as if GIB of files had just been read (dropped by vm.drop_caches)
            runtime = {**memd.new_runtime(), **state.read_json(paths.runtime, {})}
            runtime["page_cache_bytes"] += int(gib * state.GIB)
            state.write_json(paths.runtime, runtime)
    _dump(memd.tick(paths))
    return 0


def load_images(args, paths, **kw):
    """thor-twin images load|status. While dockerd_hang holds dockerd stopped, every docker command would hang:
    say so instead. The first `load` of a boot (thor-twin-images.service) marks <run>/images.done, and memd
    wedges dockerd only after that mark, so a unit that boots with dockerd_hang still gets its images."""
    if state.load_faults(paths)["dockerd_hang"] and os.path.exists(paths.images_done):
        print("not checking the images: the dockerd_hang fault knob is set (docker would hang)")
        return 0
    try:
        return 1 if images.load_all(check_only=args.action == "status", **kw) else 0
    finally:
        if args.action == "load" and os.geteuid() == 0:
            os.makedirs(paths.run, exist_ok=True)
            with open(paths.images_done, "w", encoding="ascii"):
                pass


def parser():
    p = argparse.ArgumentParser(prog="thor-twin", usage=USAGE, description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    f = sub.add_parser("fault")
    f.add_argument("action", choices=("list", "get", "set", "clear"))
    f.add_argument("items", nargs="*")
    m = sub.add_parser("memory")
    m.add_argument("action", choices=("show", "stick", "cache"))
    m.add_argument("items", nargs="*")
    sub.add_parser("state")
    sub.add_parser("boot")
    sub.add_parser("memd")
    i = sub.add_parser("images")
    i.add_argument("action", choices=("load", "status"))
    return p


def main(argv=None, paths=None):
    args = parser().parse_args(argv)
    paths = paths or state.Paths()
    try:
        if args.command == "fault":
            return fault(args, paths)
        if args.command == "memory":
            return memory(args, paths)
        if args.command == "state":
            _dump({"faults": state.load_faults(paths), "runtime": state.read_json(paths.runtime),
                   "memory": state.read_json(paths.memory), "simulated": True})
            return 0
        if args.command == "boot":
            boot.boot(paths)
            return 0
        if args.command == "memd":
            memd.run(paths)
            return 0
        return load_images(args, paths)
    except (ValueError, PermissionError) as e:
        print(f"thor-twin: {e}", file=sys.stderr)
        return 2
