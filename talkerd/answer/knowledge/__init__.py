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


def _open_embedder(config):
    """The sentence encoder ``knowledge.semantic`` asks for, and why not when it cannot run: ``(embedder,
    None)``, ``(None, reason)``, or ``(None, None)`` when matching by meaning is off. The curated answers
    must not depend on the encoder, so an engine that fails leaves matching by words."""
    if not config.knowledge.semantic:
        return None, None
    from ...errors import ConfigError, EngineError
    from .semantic import EngineEmbedder

    try:
        return EngineEmbedder.open(config.engines, config.knowledge.embedding_engine), None
    except (ConfigError, EngineError) as exc:
        return None, exc.message


def open_knowledge(config) -> tuple[VenueKnowledge, str | None]:
    """The venue knowledge of a ``config.Config``, with its embedding engine when ``knowledge.semantic``,
    and why it matches by words only when that engine cannot run (None otherwise)."""
    embedder, why_not = _open_embedder(config)
    try:
        return VenueKnowledge(config.venue, config.knowledge, config.persona.unknown_answer, embedder), why_not
    except BaseException:
        if embedder is not None:
            embedder.close()
        raise


def load_knowledge(config) -> VenueKnowledge:
    """``open_knowledge``, saying in the log when it matches by words only."""
    knowledge, why_not = open_knowledge(config)
    if why_not is not None:
        log.warning("knowledge: matching by words only: %s", why_not, extra={"stage": "knowledge"})
    return knowledge


__all__ = ["Match", "MatchKind", "VenueKnowledge", "load_knowledge", "open_knowledge"]
