"""Open WebUI twin: a simulated stand-in for open-webui 0.12.4 (see server.py for what it reproduces)."""

VERSION = "0.12.4"
