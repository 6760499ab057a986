"""The sections of who the avatar is and how it answers: persona, venue knowledge, matching, the LLM,
the conversation with one visitor."""
from __future__ import annotations

from pydantic import Field, ValidationInfo, field_validator

from .base import ConfigPath, Section, Text, TextList, no_blank_items


class PersonaConfig(Section):
    name: Text = Field(min_length=1)
    """The avatar's name, used in its self-introduction and the LLM's system prompt."""
    role: Text = Field(default="the information assistant", min_length=1)
    """What the avatar is at the venue, as a phrase ("the welcome assistant")."""
    style: Text = Field(default="friendly, warm and brief", min_length=1)
    """How it speaks: a short phrase given to the LLM."""
    greeting: str = ""
    """Spoken once when the daemon is ready, or, with ``conversation.greet``, to open each visitor's
    conversation instead; empty for none."""
    unknown_answer: Text = Field(
        default="I'm sorry, I don't know that. Please ask a member of staff.", min_length=1
    )
    """Said for a venue question that the venue knowledge does not answer."""
    apology: Text = Field(default="Sorry, I lost my train of thought. Could you ask me again?", min_length=1)
    """Said when the LLM fails or times out."""


class VenueEntry(Section):
    topic: Text = Field(min_length=1)
    """A short name for what the entry answers ("opening hours")."""
    questions: TextList = Field(min_length=1)
    """Ways visitors ask about it; matched against the visitor's question."""
    answer: Text = Field(min_length=1)
    """The curated answer, spoken as written when the match is confident."""
    keywords: TextList = []
    """Extra words that point at this entry (product names, words visitors use). A keyword of several
    words ("book club") matches only as that phrase."""


class VenueConfig(Section):
    name: str = Field(min_length=1)
    """The venue's name."""
    facts: TextList = []
    """Short fact lines handed to the LLM when a question matches an entry only weakly."""
    entries: list[VenueEntry] = []
    """Curated answers: the venue's frequently asked questions."""
    synonyms: dict[str, list[str]] = {}
    """Word or phrase → words and phrases that mean the same to visitors here ("toilet": ["loo",
    "rest room"]). Inflections (open, opens, opening) need no synonyms."""
    aliases: TextList = []
    """What visitors call the venue itself ("the shop", its name). Every question is about the venue,
    so these words point at no entry and are left out of matching."""

    @field_validator("synonyms")
    @classmethod
    def _one_meaning_per_phrase(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        owner: dict[str, str] = {}
        for key, phrases in value.items():
            for phrase in (key, *no_blank_items(phrases)):
                folded = " ".join(phrase.lower().split())
                if not folded:
                    raise ValueError("a blank word is listed")
                if owner.setdefault(folded, key) != key:
                    raise ValueError(f"{phrase!r} is listed under both {owner[folded]!r} and {key!r}")
        return value


class KnowledgeConfig(Section):
    confident_score: float = Field(default=0.62, gt=0.0, le=1.0)
    """A match at least this good is answered with the curated answer, without the LLM. Above 0.6, a
    question with half or more of its weight in words the knowledge has never seen is never confident."""
    weak_score: float = Field(default=0.40, gt=0.0, le=1.0)
    """A venue match at least this good (but not confident) is handed to the LLM with its facts."""

    @field_validator("weak_score")
    @classmethod
    def _weak_below_confident(cls, value: float, info: ValidationInfo) -> float:
        confident = info.data.get("confident_score")
        if confident is not None and value > confident:
            raise ValueError(f"must not exceed knowledge.confident_score ({confident})")
        return value
    facts_for_llm: int = Field(default=3, ge=1, le=20)
    """How many matched facts and entries the LLM sees for a weak match."""
    venue_cues: list[str] = []
    """Extra words that mark a question as being about the venue (besides the built-in table and the
    entries' topics and keywords), so that it gets the honest "I don't know" rather than chat."""
    max_words: int = Field(default=60, ge=4, le=1000)
    """Only the first this many words of a question are matched (bounds the work on very long input)."""
    ambiguity_margin: float = Field(default=0.06, ge=0.0, le=1.0)
    """A confident entry is answered alone only when it scores at least this much above the best entry
    of another topic on the words or on the meaning; closer than that, both entries are answered
    briefly (the first sentence of each). Only with ``semantic``: the words alone keep their ranking."""
    semantic: bool = False
    """Match by meaning as well as by words: the question and the entries' questions and fact lines as
    sentence embeddings (the ``embedding_engine``); a document scores the better of its lexical score
    and the score of its cosine similarity (``semantic_floor``, ``semantic_confident``)."""
    embedding_engine: str = Field(default="minilm-l6", min_length=1)
    """With ``semantic``: the sentence-embedding engine (a folder under ``engines.dir``)."""
    semantic_floor: float = Field(default=0.4, ge=-1.0, lt=1.0)
    """With ``semantic``: a cosine similarity at or below this counts as no similarity at all (score 0)."""
    semantic_confident: float = Field(default=0.65, gt=-1.0, le=1.0)
    """With ``semantic``: the cosine similarity that scores ``confident_score``; between the floor and
    here the meaning's score rises linearly (and on above it, up to 1)."""

    semantic_veto: float = Field(default=0.3, gt=0.0, le=1.0)
    """With ``semantic``: below this cosine similarity the words' score of a document is scaled down in
    proportion (words that match a text of quite another meaning, like "back" in "at the back of the
    ground floor" for "bring something back", are weak evidence)."""

    @field_validator("semantic_confident")
    @classmethod
    def _confident_above_floor(cls, value: float, info: ValidationInfo) -> float:
        floor = info.data.get("semantic_floor")
        if floor is not None and value <= floor:
            raise ValueError(f"must be above knowledge.semantic_floor ({floor})")
        return value



class LlmConfig(Section):
    model: ConfigPath
    """The GGUF file."""
    n_ctx: int = Field(default=2048, ge=256, le=131072)
    """Context length in tokens; ``memory.policy = "shrink"`` may lower it to fit the budget."""
    n_threads: int = Field(default=2, ge=1, le=64)
    """CPU threads for llama.cpp."""
    n_gpu_layers: int = Field(default=0, ge=-1)
    """Layers offloaded to the GPU (-1: all); 0 on a machine without CUDA."""
    max_answer_tokens: int = Field(default=80, ge=8, le=1024)
    """Cap on the length of one answer."""
    max_sentences: int = Field(default=2, ge=1, le=20)
    """An answer ends after this many sentences (a kiosk answer is heard, not read)."""
    max_speech_s: float = Field(default=10.0, gt=0, le=120)
    """An answer ends at the last sentence end within this many seconds of speech."""
    speech_words_per_s: float = Field(default=3.2, gt=0.5, le=6.0)
    """The voice's speaking rate, to turn ``max_speech_s`` into words. Measured: Piper's en_US
    joe-medium at ``tts.length_scale = 1`` speaks 3.4 words a second, 3.2 with the silences between
    clauses; scale it by 1 / ``length_scale`` for a slower voice."""
    history_tokens: int = Field(default=384, ge=0)
    """Earlier turns kept in the prompt, at most this many tokens."""
    temperature: float = Field(default=0.0, ge=0.0, le=2.0)
    """Sampling temperature; 0 is deterministic."""
    timeout_s: float = Field(default=10.0, gt=0, le=120)
    """An answer not finished in this time is cut short with the persona's apology."""
    instructions: str = (
        "Answer in one or two short spoken sentences. Use only the facts given. "
        "If the facts do not answer the question, say you don't know."
    )
    """Fixed instructions after the persona in the system prompt."""


class ConversationConfig(Section):
    idle_end_s: float = Field(default=45.0, gt=0, le=3600)
    """The conversation with the visitor in front of the kiosk ends after this many seconds without
    speech or a typed question; what was said is forgotten, never carried to the next visitor."""
    greet: bool = False
    """Open every new conversation with ``persona.greeting`` (when it is not empty)."""

