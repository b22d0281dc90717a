"""`open-webui serve [--host H] [--port P]` and `open-webui --version`, as open-webui 0.12.4's CLI (open_webui/__init__.py).

Like the real `serve`, a missing WEBUI_SECRET_KEY is read from (or generated into) .webui_secret_key in the working
directory; in the image that is /app/backend, outside the data volume, so a recreated container gets a new key unless
WEBUI_SECRET_KEY is given (the real image's start.sh behaves the same).
"""

from __future__ import annotations

import argparse
import base64
import os
import secrets
import signal
import sys
from pathlib import Path

from . import VERSION
from .server import serve


def main(argv=None):
    parser = argparse.ArgumentParser(prog="open-webui")
    parser.add_argument("--version", action="store_true")
    sub = parser.add_subparsers(dest="command")
    serve_parser = sub.add_parser("serve")
    serve_parser.add_argument("--host", default="0.0.0.0")
    serve_parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args(argv)
    if args.version:
        print(f"Open WebUI version: v{VERSION} (twin, simulated)")
        return 0
    if args.command != "serve":
        parser.print_help()
        return 2
    if os.environ.get("WEBUI_SECRET_KEY") is None:
        key_file = Path.cwd() / ".webui_secret_key"
        print("Loading WEBUI_SECRET_KEY from file, not provided as an environment variable.")
        if not key_file.exists():
            print(f"Generating a new secret key and saving it to {key_file}")
            key_file.write_bytes(base64.b64encode(secrets.token_bytes(12)))
        print(f"Loading WEBUI_SECRET_KEY from {key_file}")
        os.environ["WEBUI_SECRET_KEY"] = key_file.read_text()
    data_dir = os.environ.get("DATA_DIR", str(Path(__file__).resolve().parent / "data"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.stdout.reconfigure(line_buffering=True)
    serve(dict(os.environ), args.host, args.port, data_dir)
    return 0
