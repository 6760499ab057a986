"""The local language model: persona, bounded history, streamed answers sized for speech.

Input: a question, and for a weak knowledge match the facts it matched. Output: a stream of text
pieces, cut by the spoken-length policy (spoken_length.py). The system prompt (persona + fixed
instructions) comes first and never changes; everything that varies (history, facts, question) comes
after it. The prompt is rendered with the model's own chat template and tokenised here, so the tokens
llama.cpp evaluates are known exactly and the prompt cache (prompt_cache.py) can keep the persona and
the history evaluated across turns. The history is one visitor's conversation: ``reset`` forgets it,
and an answer still being generated for the visitor before is then never remembered.
"""
from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from ..config import LlmConfig, PersonaConfig, VenueConfig
from ..errors import ComponentUnavailable
from .prompt_cache import PromptCache, Reuse, common_prefix
from .spoken_length import SpeechCaps, SpokenLength, StopReason

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
    reuse: Reuse | None = None
    """How the prompt cache made the evaluated tokens reusable for this prompt."""
    stopped: StopReason | None = None
    """Why the spoken-length policy ended the answer (none: the model ended it)."""


def system_prompt(persona: PersonaConfig, venue: VenueConfig, llm: LlmConfig) -> str:
    return (
        f"You are {persona.name}, {persona.role} at {venue.name}. "
        f"You speak to visitors out loud, {persona.style}. {llm.instructions}"
    )


class Dialogue:
    """One llama.cpp model and the conversation history. ``reset`` and ``set_persona`` may come from
    another thread. llama.cpp's context is one thread's at a time: an answer holds it from its first
    piece until it is finished or closed, and anything else that evaluates waits for it (a measuring
    tool answering beside the pipeline made llama_decode fail)."""

    def __init__(self, llm, config: LlmConfig, system: str) -> None:
        self._llm = llm
        self._config = config
        self._system = system
        self._history: deque[Exchange] = deque()
        self._lock = threading.Lock()
        """Guards the history, the conversation count and the system prompt."""
        self._context = threading.RLock()
        """Held while llama.cpp's context is in use (re-entrant: an answer left open on the brain
        thread must not block that thread's own next step)."""
        self._conversation = 0
        """Counts resets: an answer begun before one is not remembered after it."""
        self._formatter, self._stop = _chat_formatter(llm)
        self._cache = PromptCache(llm)
        self._prefix_of: tuple[str, tuple[int, ...]] | None = None
        self._cached_conversation = 0
        """The conversation whose tokens llama.cpp's context holds."""
        self._prefilled: tuple | None = None
        """(conversation, system, history) last prefilled: nothing to do until one changes."""
        self.last_stats: AnswerStats | None = None
        self.last_prompt: tuple[int, ...] = ()
        """The tokens of the last prompt given to llama.cpp."""

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
        """Evaluate (and save) the fixed system prompt once so no visitor pays for it."""
        for _ in self.answer("Hello", record=False, max_tokens=1):
            pass

    def fill_context(self) -> None:
        """Evaluate a whole context of text: the most memory the model takes (the memory probe)."""
        text = (FILLER + " ").encode() * (self._config.n_ctx // 20 + 1)
        with self._context:
            self._llm.reset()  # from position 0: the next turn restores the saved persona state
            self._llm.eval(self._llm.tokenize(text, add_bos=False)[: self._config.n_ctx - 8])

    def reset(self) -> None:
        """The conversation ended: forget its history (and any answer still being generated for it)."""
        with self._lock:
            self._history.clear()
            self._conversation += 1

    def set_persona(self, persona: PersonaConfig, venue: VenueConfig) -> None:
        """A reloaded persona: a new fixed prefix (evaluated once on the next turn) and no history."""
        system = system_prompt(persona, venue, self._config)
        with self._lock:
            self._system = system
        self.reset()

    def messages(self, question: str, facts: tuple[str, ...] = ()) -> list[dict[str, str]]:
        with self._lock:
            history = tuple(self._history)
        return self._messages(self._system, history, question, facts)

    @staticmethod
    def _messages(system: str, history: tuple[Exchange, ...], question: str, facts: tuple[str, ...]) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": system}]
        for exchange in history:
            messages.append({"role": "user", "content": exchange.question})
            messages.append({"role": "assistant", "content": exchange.answer})
        content = question
        if facts:
            content = "Facts:\n" + "\n".join(f"- {fact}" for fact in facts) + f"\n\nQuestion: {question}"
        messages.append({"role": "user", "content": content})
        return messages

    def prompt_tokens(self, messages: list[dict[str, str]]) -> list[int]:
        """The tokens llama.cpp is given for ``messages`` (the model's chat template, then its tokenizer)."""
        rendered = self._formatter(messages=messages)
        return self._llm.tokenize(rendered.prompt.encode("utf-8"), add_bos=not rendered.added_special, special=True)

    def detokenize(self, tokens) -> str:
        return self._llm.detokenize(list(tokens), special=True).decode("utf-8", errors="replace")

    def evaluated_text(self) -> str:
        """What llama.cpp's context holds now (prompt and answer), read back from the model's input ids."""
        return self.detokenize(self._llm.input_ids[: self._llm.n_tokens])

    def _prefix(self, system: str) -> tuple[int, ...]:
        """The persona part of every prompt."""
        if self._prefix_of is None or self._prefix_of[0] != system:
            self._prefix_of = (system, self._shared_part(system, ()))
        return self._prefix_of[1]

    def _shared_part(self, system: str, history: tuple[Exchange, ...]) -> tuple[int, ...]:
        """What every next prompt on this history begins with: what two with different questions share."""
        one = self.prompt_tokens(self._messages(system, history, "Where is the exit?", ()))
        two = self.prompt_tokens(self._messages(system, history, "Hello", ()))
        return tuple(one[: common_prefix(one, two)])

    def _prepare(self, tokens, conversation: int, system: str) -> Reuse:
        """Make llama.cpp's context begin with as much of ``tokens`` as it can. Shifting reuses tokens
        evaluated while attending to what was dropped: only within one visitor's conversation; a new
        visitor reuses the persona prefix alone."""
        reuse = self._cache.prepare(tokens, self._prefix(system), allow_shift=conversation == self._cached_conversation)
        self._cached_conversation = conversation
        return reuse

    def prefill(self) -> None:
        """Evaluate the history ahead of the next question (the pipeline calls it while the answer is
        being spoken), so the next turn evaluates its question only: the shift of a trimmed exchange
        and the end of the last answer are paid here, not after the visitor's question. While another
        thread's answer holds the context it does nothing (the next turn prepares itself)."""
        if not self._context.acquire(blocking=False):
            log.info("the LLM is answering on another thread; the history is evaluated with the next question")
            return
        try:
            with self._lock:
                conversation, history, system = self._conversation, tuple(self._history), self._system
            key = (conversation, system, history)
            if key == self._prefilled:
                return
            tokens = self._shared_part(system, history)
            self._prepare(tokens, conversation, system)
            self._cache.evaluate(tokens)
            self._prefilled = key
        finally:
            self._context.release()

    def answer(
        self,
        question: str,
        facts: tuple[str, ...] = (),
        *,
        cancelled: Callable[[], bool] = lambda: False,
        record: bool = True,
        max_tokens: int | None = None,
    ) -> Iterator[str]:
        """Stream the answer's text pieces, sized for speech. Stops early when cancelled or at the timeout.
        Waits for another thread's answer to finish first, within the same timeout."""
        deadline = time.monotonic() + self._config.timeout_s
        if not self._context.acquire(timeout=self._config.timeout_s):
            raise ComponentUnavailable(f"llm: busy answering on another thread for {self._config.timeout_s:g} s",
                                       code="llm_busy")
        try:
            yield from self._answer(question, facts, cancelled, record, max_tokens, deadline)
        finally:
            self._context.release()

    def _answer(self, question, facts, cancelled, record, max_tokens, deadline) -> Iterator[str]:
        import llama_cpp

        llama_cpp.llama_synchronize(self._llm._ctx.ctx)  # counters of work still queued go to the turn before
        llama_cpp.llama_perf_context_reset(self._llm._ctx.ctx)
        with self._lock:
            conversation, history, system = self._conversation, tuple(self._history), self._system
        prompt = self.prompt_tokens(self._messages(system, history, question, facts))
        reuse = self._prepare(prompt, conversation, system)
        self._prefilled = None
        self.last_prompt = tuple(prompt)
        stream = self._llm.create_completion(
            prompt, stream=True, stop=self._stop,
            max_tokens=max_tokens or self._config.max_answer_tokens,
            temperature=self._config.temperature,
        )
        spoken = SpokenLength(SpeechCaps.from_config(self._config))
        timed_out = False
        try:
            for chunk in stream:
                if cancelled():
                    break
                text = spoken.feed(chunk["choices"][0]["text"])
                if text:
                    yield text
                if spoken.stopped is not None:
                    break  # generation stops here: no token is made that would not be spoken
                if time.monotonic() > deadline:
                    timed_out = True
                    log.warning("the LLM did not finish within %.1f s; answer cut short", self._config.timeout_s)
                    break
            else:
                rest = spoken.finish()
                if rest:
                    yield rest
        finally:
            stream.close()
        perf = llama_cpp.llama_perf_context(self._llm._ctx.ctx)
        self.last_stats = AnswerStats(
            prompt_tokens=len(prompt),
            evaluated_tokens=int(perf.n_p_eval),
            completion_tokens=int(perf.n_eval),
            timed_out=timed_out,
            reuse=reuse,
            stopped=spoken.stopped,
        )
        text = spoken.released.strip()
        if record and text and not timed_out and not cancelled():
            self._remember(conversation, question, text)

    def _remember(self, conversation: int, question: str, answer: str) -> None:
        tokens = len(self._llm.tokenize(f"{question}\n{answer}".encode()))
        with self._lock:
            if conversation != self._conversation:
                return  # the visitor who asked has gone; the next one must not inherit this exchange
            self._history.append(Exchange(question, answer, tokens))
            # Whole exchanges go, oldest first; the prompt cache shifts them out of llama.cpp's context.
            while self._history and sum(e.tokens for e in self._history) > self._config.history_tokens:
                self._history.popleft()

    def close(self) -> None:
        self._llm.close()


def _chat_formatter(llm):
    """The model's own chat template (ChatML when the GGUF has none) and its stop strings."""
    from llama_cpp import llama_chat_format

    eos_id, bos_id = llm.token_eos(), llm.token_bos()
    eos = llm._model.token_get_text(eos_id) if eos_id != -1 else ""
    bos = llm._model.token_get_text(bos_id) if bos_id != -1 else ""
    template = llm.metadata.get("tokenizer.chat_template", llama_chat_format.CHATML_CHAT_TEMPLATE)
    formatter = llama_chat_format.Jinja2ChatFormatter(template=template, eos_token=eos, bos_token=bos)
    return formatter, [eos] if eos else []
