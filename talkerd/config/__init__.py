"""The daemon's configuration: frozen pydantic models read from a TOML file.

One module per part of the kiosk holds its sections (``answering``, ``safety``, ``stages``,
``operations``; what they share in ``base``); this module assembles them into ``Config`` and reads it.

Relative paths are resolved against the directory of the config file, so a config and its models can
move together. ``load_config`` turns every problem into a ``ConfigError`` that names the file, the
field and what was expected; ``check_resources`` additionally checks that every file named exists.
"""
from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from ..errors import ConfigError
from ..tomlfile import read_toml, validation_error
from .answering import ConversationConfig, KnowledgeConfig, LlmConfig, PersonaConfig, VenueConfig, VenueEntry
from .base import ConfigPath, Section
from .operations import ControlConfig, EnginesConfig, MemoryConfig, MetricsConfig
from .safety import (
    DEFAULT_BLOCKED_TOPICS, DEFAULT_BLOCKED_WORDS, DEFAULT_SAFETY_INTENTS, SAFETY_PLACEHOLDERS, GuardConfig, SafetyConfig,
    SafetyIntent,
)
from .stages import (
    SUPPORTED_CAPTURE_RATES, SUPPORTED_OUTPUT_RATES, AsrConfig, AudioConfig, EndpointerConfig, FaceConfig, RenderConfig,
    TtsConfig,
)

__all__ = [
    "DEFAULT_BLOCKED_TOPICS", "DEFAULT_BLOCKED_WORDS", "DEFAULT_SAFETY_INTENTS", "SAFETY_PLACEHOLDERS",
    "SUPPORTED_CAPTURE_RATES", "SUPPORTED_OUTPUT_RATES", "AsrConfig", "AudioConfig", "Config", "ConfigPath",
    "ControlConfig", "ConversationConfig", "EndpointerConfig", "EnginesConfig", "FaceConfig", "GuardConfig",
    "KnowledgeConfig", "LlmConfig", "MemoryConfig", "MetricsConfig", "PersonaConfig", "RenderConfig", "SafetyConfig",
    "SafetyIntent", "Section", "TtsConfig", "VenueConfig", "VenueEntry", "check_resources", "load_config",
    "parse_config",
]


class Config(Section):
    persona: PersonaConfig
    """Who the avatar is."""
    venue: VenueConfig
    """What it knows about the venue."""
    knowledge: KnowledgeConfig = KnowledgeConfig()
    """How questions are matched against the venue knowledge."""
    safety: SafetyConfig = SafetyConfig()
    """Emergencies, answered before anything else."""
    guard: GuardConfig = GuardConfig()
    """What the LLM may say."""
    audio: AudioConfig = AudioConfig()
    """Microphone and speaker."""
    endpointer: EndpointerConfig = EndpointerConfig()
    """Finding where an utterance ends."""
    asr: AsrConfig
    """Speech recognition."""
    llm: LlmConfig
    """The local language model."""
    conversation: ConversationConfig = ConversationConfig()
    """One conversation per visitor."""
    tts: TtsConfig
    """Text to speech."""
    face: FaceConfig = FaceConfig()
    """Mouth shapes."""
    engines: EnginesConfig
    """Inference engines."""
    render: RenderConfig = RenderConfig()
    """The avatar on screen."""
    memory: MemoryConfig = MemoryConfig()
    """The memory budget."""
    control: ControlConfig = ControlConfig()
    """The local control socket."""
    metrics: MetricsConfig = MetricsConfig()
    """Fleet metrics for Prometheus (node_exporter's textfile collector)."""


def parse_config(data: dict, *, source: str = "<config>", base_dir: Path | None = None) -> Config:
    """Validate an already-parsed TOML document."""
    try:
        return Config.model_validate(data, context={"base_dir": base_dir})
    except ValidationError as exc:
        raise validation_error(exc, source) from None


def load_config(path: str | os.PathLike) -> Config:
    """Read and validate a config file; raise ``ConfigError`` naming the file and field on any problem."""
    path = Path(path)
    data = read_toml(path, "config file")
    return parse_config(data, source=str(path), base_dir=path.resolve().parent)


def check_resources(config: Config, *, source: str = "<config>") -> None:
    """Raise ``ConfigError`` naming every field whose file does not exist."""
    from ..registry import named_files

    missing = [f"{source}: {field}: no such file: {path}" for field, path in named_files(config).items() if not path.exists()]
    if config.render.avatar == "portrait" and config.render.portrait is None:
        missing.append(f"{source}: render.portrait: required when render.avatar is \"portrait\"")
    if config.knowledge.weak_score > config.knowledge.confident_score:
        missing.append(f"{source}: knowledge.weak_score: must not exceed knowledge.confident_score")
    if missing:
        raise ConfigError("\n".join(missing))
