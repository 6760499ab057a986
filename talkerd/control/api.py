"""The control methods the daemon answers on its socket, each with a pydantic model of its params.

A request's params are parsed here once, at the edge: an unknown or ill-typed parameter is
``bad_request`` naming the field, and nothing starts. The methods then use typed values only.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..audio import read_wav_mono
from ..errors import ComponentUnavailable, RequestError
from ..messages import Turn, TurnSource
from ..ota.daemon_side import engines_status, reload_engines
from .diagnose import diagnosis
from .server import Streaming
from ..speak.playout import DEFAULT_OUTPUT_RATE as OUTPUT_RATE



class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NoParams(Params):
    """Methods that take no parameters."""


class WaitParams(Params):
    wait: bool = True
    """Reply once the answer has been spoken (true), or at once with the turn id (false)."""
    timeout: float = Field(default=60.0, gt=0, le=600)
    """Seconds to wait for the answer when ``wait`` is true."""


class TextParams(WaitParams):
    text: str = Field(min_length=1, max_length=2000, pattern=r"\S")
    """The question (``ask``) or the text to speak (``say``)."""


class PlayParams(WaitParams):
    path: str = Field(min_length=1)
    """A 16-bit PCM WAV file the daemon can read."""


def parse_params(model: type[Params], params: dict) -> Params:
    """``params`` as ``model``, or ``RequestError`` naming the first field that is wrong."""
    try:
        return model.model_validate(params)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "params"
        raise RequestError(f"params.{field}: {error['msg']}") from None


class ControlApi:
    """The methods, on the daemon they control (its pipeline, status and reload)."""

    def __init__(self, daemon) -> None:
        self._daemon = daemon
        self._methods: dict[str, tuple[type[Params], Callable]] = {
            "status": (NoParams, lambda p: daemon.status()),
            "ask": (TextParams, self.ask),
            "say": (TextParams, self.say),
            "play": (PlayParams, self.play),
            "reload": (NoParams, self.reload),
            "mute": (NoParams, lambda p: self._pipeline().set_muted(True)),
            "unmute": (NoParams, lambda p: self._pipeline().set_muted(False)),
            "cancel": (NoParams, lambda p: self._pipeline().cancel()),
            "conversation.end": (NoParams, lambda p: self._pipeline().end_conversation()),
            "engines": (NoParams, lambda p: {**daemon.parts.engine_board(), "release": engines_status(daemon)}),
            "engines.reload": (NoParams, lambda p: reload_engines(daemon)),
            "memory": (NoParams, lambda p: daemon.status()["memory"]),
            "watch": (NoParams, self.watch),
            "diagnose": (NoParams, lambda p: diagnosis(daemon)),
        }

    RESTRICTED = frozenset({"ask", "say", "play", "reload", "mute", "unmute", "cancel", "conversation.end", "engines.reload",
                            "diagnose"})
    """Methods that change what the kiosk does or says, or hand out its configuration (``diagnose``):
    refused to peers outside the socket's group."""

    def handlers(self) -> dict[str, Callable[[dict], object]]:
        """Method name → handler of raw params, for the control server."""
        return {name: self._handler(model, method) for name, (model, method) in self._methods.items()}

    @staticmethod
    def _handler(model: type[Params], method: Callable) -> Callable[[dict], object]:
        return lambda params: method(parse_params(model, params))

    def _pipeline(self):
        pipeline = self._daemon.pipeline
        if pipeline is None:
            raise ComponentUnavailable("still loading models; try again in a few seconds", code="not_ready")
        return pipeline

    def ask(self, params: TextParams) -> dict:
        return self._reply(self._pipeline().ask(params.text, TurnSource.TYPED), params)

    def say(self, params: TextParams) -> dict:
        return self._reply(self._pipeline().say(params.text), params)

    def play(self, params: PlayParams) -> dict:
        pipeline = self._pipeline()
        audio = read_wav_mono(Path(params.path), OUTPUT_RATE)  # BadAudio (bad_audio) for what cannot be played
        return self._reply(pipeline.play(audio, OUTPUT_RATE, params.path), params)

    def watch(self, params: NoParams) -> Streaming:
        """Every event from now on, until the client leaves (``talkerctl watch``)."""
        subscription = self._daemon.events.subscribe()

        def next_event(timeout: float) -> dict | None:
            event = subscription.next(timeout)
            return None if event is None else event.to_dict()

        return Streaming({"watching": True}, next_event, subscription.close)

    def reload(self, params: NoParams) -> dict:
        self._daemon.reload()
        return {"reloaded": True}

    @staticmethod
    def _reply(turn: Turn, params: WaitParams) -> dict:
        if params.wait:
            turn.done.wait(params.timeout)
        route = turn.route
        return {"turn_id": turn.id, "route": route.value if route is not None else None, "answer": turn.answer,
                "latency_ms": turn.latencies_ms(), "done": turn.done.is_set()}
