import sys

from vllm_twin.cli import main

sys.exit(main())
