"""Listening: audio frames → speech started / a heard question."""
