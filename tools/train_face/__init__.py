"""Reproduces the face engine (engines/face-mouth) from Piper speech; run `python -m tools.train_face`."""
