"""Measuring the product: latency against its floor and a sequential baseline, lip sync, and the soak."""


def named(question: str, heard: str) -> str:
    """The question a bench speaks, in place of what the (Korean) development recogniser made of it; an
    utterance in which it heard nothing stays empty, as it would on a kiosk (no question, no turn)."""
    return question if heard.strip() else heard
