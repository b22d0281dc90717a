"""vLLM's log format: `LEVEL MM-DD hh:mm:ss [file:line] msg` on stdout, process prefixes, tqdm lines.

File and line are those of the real vLLM 0.10.1.1 call site (see vllm-ground-truth.md §0, §3), passed as `site`.
"""

import os
import sys
import time

CYAN, RESET = "\033[1;36m", "\033[0;0m"
LEVELS = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


class PrefixWriter:
    """What vLLM's decorate_logs does to stdout/stderr: every line starts with `(NAME pid=PID) `."""

    def __init__(self, raw, prefix):
        self.raw, self.prefix, self.start = raw, prefix, True

    def write(self, text):
        if not text:
            return 0
        out = []
        parts = text.split("\n")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if last and not part:
                break
            if self.start:
                out.append(self.prefix)
            out.append(part if last else part + "\n")
            self.start = not last
        self.raw.write("".join(out))
        self.raw.flush()
        return len(text)

    def flush(self):
        self.raw.flush()

    def __getattr__(self, name):
        return getattr(self.raw, name)


def decorate(name):
    """Prefix this process's stdout and stderr lines, as vLLM's APIServer and EngineCore_0 do."""
    prefix = f"{CYAN}({name} pid={os.getpid()}){RESET} "
    sys.stdout = PrefixWriter(sys.__stdout__, prefix)
    sys.stderr = PrefixWriter(sys.__stderr__, prefix)


def _threshold():
    return LEVELS.get(os.environ.get("VLLM_LOGGING_LEVEL", "INFO").upper(), 20)


def log(level, site, msg, *args):
    """One vLLM logger record; multi-line messages continue with CRLF + the header, as NewLineFormatter does."""
    if LEVELS[level] < _threshold():
        return
    if args:
        msg = msg % args
    header = f"{os.environ.get('VLLM_LOGGING_PREFIX', '')}{level} {time.strftime('%m-%d %H:%M:%S')} [{site}] "
    sys.stdout.write(header + msg.replace("\n", "\r\n" + header) + "\n")
    sys.stdout.flush()


def info(site, msg, *args):
    log("INFO", site, msg, *args)


def warning(site, msg, *args):
    log("WARNING", site, msg, *args)


def uvicorn(msg):
    """uvicorn's default format: `INFO:` padded to 9 characters, on stderr."""
    sys.stderr.write(f"INFO:     {msg}\n")


def uvicorn_error(msg):
    """uvicorn's ERROR level (`ERROR:` padded to 9 characters), on stderr; later lines as given."""
    sys.stderr.write(f"ERROR:    {msg}\n")


def _clock(seconds):
    seconds = int(seconds)
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def _rate(n, elapsed):
    if n == 0 or elapsed <= 0:
        return "?it/s"
    rate = n / elapsed
    return f"{1 / rate:.2f}s/it" if rate < 1 else f"{rate:5.2f}it/s"


def tqdm_line(desc, n, total, elapsed, bar=False):
    """One tqdm refresh. `bar=False` is vLLM's weight-loading bar_format, `bar=True` tqdm's default bar."""
    remaining = "?" if n == 0 else _clock(elapsed / n * (total - n))
    stats = f"[{_clock(elapsed)}<{remaining}, {_rate(n, elapsed)}]"
    if bar:
        filled = int(10 * n / total)
        return f"\r{desc}: {100 * n / total:3.0f}%|{'█' * filled}{' ' * (10 - filled)}| {n}/{total} {stats}"
    return f"\r{desc}: {100 * n / total:3.0f}% Completed | {n}/{total} {stats}\n"
