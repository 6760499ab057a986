"""The avatar on screen: avatars (drawn default, portrait), frame sinks and the render loop."""
from __future__ import annotations

from .avatar import DefaultAvatar
from .base import Avatar
from .loop import LoopStats, MouthSample, MouthSource, RenderLoop, RestSource, TrackSource
from .motion import IdleMotion, MouthSmoother
from .portrait import PortraitAvatar, load_description
from .readback import OpeningRecorder, mouth_opening
from .sinks import DisplayChoice, DisplayMode, DisplayModeError, NullSink, Sink, VideoSink, WindowSink, open_sink

__all__ = [
    "Avatar", "DefaultAvatar", "PortraitAvatar", "load_description", "make_avatar", "hex_colour",
    "IdleMotion", "MouthSmoother", "MouthSample", "MouthSource", "RestSource", "TrackSource", "RenderLoop", "LoopStats",
    "OpeningRecorder", "mouth_opening", "Sink", "NullSink", "VideoSink", "WindowSink", "open_sink", "DisplayChoice", "DisplayMode", "DisplayModeError",
]


def hex_colour(value: str) -> tuple[int, int, int]:
    """'#rrggbb' → a BGR triple."""
    value = value.lstrip("#")
    r, g, b = (int(value[i : i + 2], 16) for i in (0, 2, 4))
    return (b, g, r)


def _default(render_cfg) -> Avatar:
    return DefaultAvatar(render_cfg.width, render_cfg.height, seed=render_cfg.seed,
                         background=hex_colour(render_cfg.background))


def _portrait(render_cfg) -> Avatar:
    from ..errors import ConfigError

    if render_cfg.portrait is None:
        raise ConfigError('render.portrait: required when render.avatar is "portrait"')
    return PortraitAvatar(render_cfg.portrait, render_cfg.width, render_cfg.height, seed=render_cfg.seed,
                          background=hex_colour(render_cfg.background))


_AVATARS = {"default": _default, "portrait": _portrait}


def make_avatar(render_cfg) -> Avatar:
    """The avatar the config asks for (``render.avatar``); ``ConfigError`` for a bad portrait."""
    return _AVATARS[render_cfg.avatar](render_cfg)
