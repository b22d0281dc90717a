"""thor-twin: the simulated parts of a twin Jetson AGX Thor unit (Python 3 stdlib only).

Everything in this package is a simulation of NVIDIA software; see docs/twin.md.
"""
