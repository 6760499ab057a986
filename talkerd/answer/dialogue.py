"""The local language model: persona, bounded history, streamed answers.

Input: a question, and for a weak knowledge match the facts it matched. Output: a stream of text
pieces. The system prompt (persona + fixed instructions) comes first and never changes, so llama.cpp
reuses its evaluated KV cache on every turn; everything that varies (history, facts, question) comes
after it.
"""
from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..config import LlmConfig, PersonaConfig, VenueConfig
from ..errors import ComponentUnavailable

log = logging.getLogger(__name__)


FILLER = (
    "Welcome to Riverside Books, where you will find new fiction, travel guides, maps and a children's "
    "corner downstairs, while the café upstairs serves coffee, soup and cake until half an hour before we close."
)


@dataclass(frozen=True)
class Exchange:
    question: str
    answer: str
    tokens: int


@dataclass(frozen=True)
class AnswerStats:
    prompt_tokens: int
    """Tokens in the whole prompt."""
    evaluated_tokens: int
    """Prompt tokens llama.cpp really evaluated (the rest came from the cached prefix)."""
    completion_tokens: int
    timed_out: bool


def system_prompt(persona: PersonaConfig, venue: VenueConfig, llm: LlmConfig) -> str:
    return (
        f"You are {persona.name}, {persona.role} at {venue.name}. "
        f"You speak to visitors out loud, {persona.style}. {llm.instructions}"
    )


class Dialogue:
    """One llama.cpp model and the conversation history. Not thread-safe: one turn at a time."""

    def __init__(self, llm, config: LlmConfig, system: str) -> None:
        self._llm = llm
        self._config = config
        self._system = system
        self._history: deque[Exchange] = deque()
        self.last_stats: AnswerStats | None = None

    @staticmethod
    def load(config: LlmConfig, persona: PersonaConfig, venue: VenueConfig) -> "Dialogue":
        import llama_cpp

        if not config.model.is_file():
            raise ComponentUnavailable(f"llm.model: no such file: {config.model}")
        try:
            llm = llama_cpp.Llama(
                str(config.model),
                n_ctx=config.n_ctx,
                n_threads=config.n_threads,
                n_gpu_layers=config.n_gpu_layers,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:  # llama-cpp-python's errors for unloadable models
            raise ComponentUnavailable(f"llm.model: llama.cpp could not load {config.model}: {exc}") from exc
        return Dialogue(llm, config, system_prompt(persona, venue, config))

    def warm_up(self) -> None:
        """Evaluate the fixed system prompt once so the first visitor does not pay for it."""
        for _ in self.answer("Hello", record=False, max_tokens=1):
            pass

    def fill_context(self) -> None:
        """Evaluate a whole context of text: the most memory the model takes (the memory probe)."""
        text = (FILLER + " ").encode() * (self._config.n_ctx // 20 + 1)
        self._llm.reset()  # from position 0: the warmed-up prefix gives its place to the filler
        self._llm.eval(self._llm.tokenize(text, add_bos=False)[: self._config.n_ctx - 8])

    def reset(self) -> None:
        self._history.clear()

    def set_persona(self, persona: PersonaConfig, venue: VenueConfig) -> None:
        """A reloaded persona: a new fixed prefix (evaluated once on the next turn) and no history."""
        self._system = system_prompt(persona, venue, self._config)
        self.reset()

    def messages(self, question: str, facts: tuple[str, ...] = ()) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": self._system}]
        for exchange in self._history:
            messages.append({"role": "user", "content": exchange.question})
            messages.append({"role": "assistant", "content": exchange.answer})
        content = question
        if facts:
            content = "Facts:\n" + "\n".join(f"- {fact}" for fact in facts) + f"\n\nQuestion: {question}"
        messages.append({"role": "user", "content": content})
        return messages

    def answer(
        self,
        question: str,
        facts: tuple[str, ...] = (),
        *,
        cancelled: Callable[[], bool] = lambda: False,
        record: bool = True,
        max_tokens: int | None = None,
    ) -> Iterator[str]:
        """Stream the answer's text pieces. Stops early when cancelled or at the timeout."""
        import llama_cpp

        deadline = time.monotonic() + self._config.timeout_s
        llama_cpp.llama_perf_context_reset(self._llm._ctx.ctx)
        stream = self._llm.create_chat_completion(
            self.messages(question, facts),
            stream=True,
            max_tokens=max_tokens or self._config.max_answer_tokens,
            temperature=self._config.temperature,
        )
        pieces: list[str] = []
        timed_out = False
        try:
            for chunk in stream:
                if cancelled():
                    break
                piece = chunk["choices"][0]["delta"].get("content")
                if piece:
                    pieces.append(piece)
                    yield piece
                if time.monotonic() > deadline:
                    timed_out = True
                    log.warning("the LLM did not finish within %.1f s; answer cut short", self._config.timeout_s)
                    break
        finally:
            stream.close()
        perf = llama_cpp.llama_perf_context(self._llm._ctx.ctx)
        text = "".join(pieces).strip()
        self.last_stats = AnswerStats(
            prompt_tokens=len(self._llm.tokenize(self._prompt_text(question, facts).encode(), special=True)),
            evaluated_tokens=int(perf.n_p_eval),
            completion_tokens=int(perf.n_eval),
            timed_out=timed_out,
        )
        if record and text and not timed_out and not cancelled():
            self._remember(question, text)

    def _prompt_text(self, question: str, facts: tuple[str, ...]) -> str:
        return "\n".join(message["content"] for message in self.messages(question, facts))

    def _remember(self, question: str, answer: str) -> None:
        tokens = len(self._llm.tokenize(f"{question}\n{answer}".encode()))
        self._history.append(Exchange(question, answer, tokens))
        while self._history and sum(e.tokens for e in self._history) > self._config.history_tokens:
            self._history.popleft()

    def close(self) -> None:
        self._llm.close()
