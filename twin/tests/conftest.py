"""pytest fixtures of the twin's tests; the helpers themselves live in twin_support.py (importable by the tests)."""

from twin_support import device, hub, module_dir

__all__ = ["device", "hub", "module_dir"]
