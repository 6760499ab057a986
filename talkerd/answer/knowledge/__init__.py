"""Venue knowledge: the visitor's question matched against the venue's curated entries and facts.

A confident match is answered with the curated text at once; a weaker one hands the matched facts to
the language model; a venue question that matches nothing gets the persona's honest "I don't know";
small talk goes to the language model. ``matcher`` holds the decision, ``index`` the retrieval,
``cues`` the small-talk and venue-cue tables, ``text`` the normalisation and stemming.
"""
from .matcher import Match, MatchKind, VenueKnowledge

__all__ = ["Match", "MatchKind", "VenueKnowledge"]
