"""vLLM twin: an emulated `vllm serve` of vLLM 0.10.1.1 (nvcr.io/nvidia/vllm:25.09-py3).

Everything it reports about speed and time is a simulated model of Jetson Thor, not a measurement.
"""

UPSTREAM_VERSION = "0.10.1.1"
# The NGC build string plus a local-version marker that says this is the twin.
VERSION = UPSTREAM_VERSION + "+381074ae.nv25.09.twin"
SIMULATED_WARNING = "vLLM twin: simulated engine, timings are a model of Jetson Thor, not measurements"
