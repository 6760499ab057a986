"""Answering: a question → its route and the text to speak."""
