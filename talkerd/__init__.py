"""talkerd: an offline talking-avatar kiosk daemon."""

import os

__version__ = "0.1.0"

# llama.cpp's OpenMP worker threads spin while they wait by default. The pipeline's stages share a few
# cores (the LLM writes the next clause while the TTS speaks the last one), and a spinning thread that
# loses its core turns a 1-second answer into a 40-second one (measured on 2 cores). Passive waiting
# costs llama.cpp almost nothing on an idle machine. It must be set before libgomp loads, hence here;
# an explicit setting in the environment wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
