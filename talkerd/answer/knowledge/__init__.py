"""Venue knowledge: the visitor's question matched against the venue's curated entries and facts.

A confident match is answered with the curated text at once; a weaker one hands the matched facts to
the language model; a venue question that matches nothing gets the persona's honest "I don't know";
small talk goes to the language model. ``matcher`` holds the decision, ``index`` the retrieval,
``cues`` the small-talk and venue-cue tables, ``text`` the normalisation and stemming, ``semantic``
the sentence embeddings that match by meaning, ``parts`` the cutting of a question into its parts.
"""
import logging

from .matcher import Match, MatchKind, VenueKnowledge

log = logging.getLogger(__name__)


def load_knowledge(config) -> VenueKnowledge:
    """The venue knowledge of a ``config.Config``, with its embedding engine when ``knowledge.semantic``."""
    embedder = None
    if config.knowledge.semantic:
        from ...errors import ConfigError, EngineError
        from .semantic import EngineEmbedder

        try:
            embedder = EngineEmbedder.open(config.engines, config.knowledge.embedding_engine)
        except (ConfigError, EngineError) as exc:  # the curated answers must not depend on the encoder
            log.warning("knowledge: matching by words only: %s", exc.message, extra={"stage": "knowledge"})
    return VenueKnowledge(config.venue, config.knowledge, config.persona.unknown_answer, embedder)


__all__ = ["Match", "MatchKind", "VenueKnowledge", "load_knowledge"]
