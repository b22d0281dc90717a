"""tegrastats (SIMULATED), JetPack 7 line format, fed by the twin's memory model."""

import random
import sys
import time

from . import power, state

MB = 1 << 20
USAGE = "Usage: tegrastats [--interval <millisec>] [--logfile <filename>] [--stop]  (thor-twin: simulated)"


def line(model, pinned, mode_name, now=None, rng=random):
    """One tegrastats line: RAM used/totalMB (lfb NxSMB) SWAP 0/0MB ... gpu@..C ... VDD_GPU ..."""
    stamp = time.strftime("%m-%d-%Y %H:%M:%S", time.localtime(now))
    used = (model["total"] - model["free"] - model["buffers"] - model["cached"]) // MB
    busy = model["allocated"] > 0
    freq = power.CLOCKS.get(mode_name, power.CLOCKS["120W"])[0] // 1000 if pinned else 972
    cpus = ",".join(f"{rng.randint(0, 4) + (20 if busy else 0)}%@{freq}" for _ in range(power.CPUS))
    gpu_mw = (31000 if busy else 4200) + rng.randint(0, 900)
    cpu_mw = 6400 + rng.randint(0, 600)
    temp = (58.0 if busy else 44.0) + rng.random() * 2
    return (f"{stamp} RAM {used}/{model['total'] // MB}MB (lfb {min(512, model['free'] // (4 * MB))}x4MB) "
            f"SWAP 0/0MB (cached 0MB) CPU [{cpus}] "
            f"cpu@{temp - 2:.3f}C tj@{temp + 1:.3f}C soc012@{temp - 3:.3f}C gpu@{temp:.3f}C soc345@{temp:.3f}C "
            f"VDD_GPU {gpu_mw}mW/{gpu_mw}mW/{gpu_mw}mW VDD_CPU_SOC_MSS {cpu_mw}mW/{cpu_mw}mW/{cpu_mw}mW "
            f"VIN_SYS_5V0 5200mW/5200mW/5200mW VIN {gpu_mw + cpu_mw + 9000}mW/{gpu_mw + cpu_mw + 9000}mW/"
            f"{gpu_mw + cpu_mw + 9000}mW")


def main(argv, paths=None):
    paths = paths or state.Paths()
    interval, logfile = 1000, None
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("--interval", "--logfile") and args:
            value = args.pop(0)
            if arg == "--interval":
                try:
                    interval = max(10, int(value))
                except ValueError:
                    print(USAGE, file=sys.stderr)
                    return 1
            else:
                logfile = value
        elif arg in ("--stop", "--readall", "--verbose"):
            if arg == "--stop":
                return 0
        else:
            print(USAGE, file=sys.stderr)
            return 0 if arg in ("-h", "--help") else 1
    out = open(logfile, "a", encoding="utf-8") if logfile else sys.stdout
    try:
        while True:
            model = state.read_json(paths.memory)  # written by thor-twin-memd
            _, name = power.current_mode(state.load_faults(paths))
            print(line(model, power.clocks_read(paths)["pinned"], name), file=out, flush=True)
            time.sleep(interval / 1000)
    except (KeyboardInterrupt, BrokenPipeError):
        return 0
