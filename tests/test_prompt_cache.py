"""The prompt cache on real llama.cpp (SmolLM2): the persona is never evaluated twice, and a trimmed
history costs only the new question."""
from __future__ import annotations

import pytest

from talkerd.answer.dialogue import Dialogue
from talkerd.answer.prompt_cache import Reuse, common_prefix, dropped_span

from .conftest import MODELS


@pytest.fixture(scope="module")
def dialogue(default_config):
    llm = default_config.llm.model_copy(update={"model": MODELS / "smollm2-135m-instruct-q4_1.gguf",
                                                "history_tokens": 50, "max_answer_tokens": 24, "n_ctx": 512})
    d = Dialogue.load(llm, default_config.persona, default_config.venue)
    d.warm_up()
    yield d
    d.close()


def prefix_of(dialogue: Dialogue) -> tuple[int, ...]:
    return dialogue._prefix(dialogue._system)


def overwrite_context(dialogue: Dialogue) -> None:
    """What the memory probe (``fill_context``) does to llama.cpp's context, on a few tokens only."""
    dialogue._llm.reset()
    dialogue._llm.eval(dialogue._llm.tokenize(b"Nothing about the persona is left in here.", add_bos=False))


def cached_tokens(dialogue: Dialogue) -> list[int]:
    return [int(t) for t in dialogue._llm.input_ids[: dialogue._llm.n_tokens]]


def test_the_persona_is_restored_not_evaluated_again_after_the_context_was_filled(dialogue):
    dialogue.reset()
    overwrite_context(dialogue)
    "".join(dialogue.answer("Do you sell maps?", record=False))
    stats, prefix = dialogue.last_stats, prefix_of(dialogue)
    assert stats.reuse is Reuse.RESTORED
    assert len(prefix) > 40
    assert stats.evaluated_tokens <= stats.prompt_tokens - len(prefix)
    assert cached_tokens(dialogue)[: len(dialogue.last_prompt)] == list(dialogue.last_prompt)


def test_a_trimmed_history_is_shifted_out_and_only_the_question_is_evaluated(dialogue):
    dialogue.reset()
    questions = ["Hello, who are you?", "Do you sell maps?", "Is there a café?", "Can I bring my dog?", "Where is fiction?"]
    shifted = []
    for question in questions:
        "".join(dialogue.answer(question))
        stats = dialogue.last_stats
        if stats.reuse is Reuse.SHIFTED:
            shifted.append(stats)
            # The oldest exchange had gone from the prompt ...
            assert questions[0] not in dialogue.detokenize(dialogue.last_prompt)
        # ... and what llama.cpp's context holds is exactly this prompt, then the answer.
        assert cached_tokens(dialogue)[: len(dialogue.last_prompt)] == list(dialogue.last_prompt)
    assert shifted, "the history never needed trimming: lower history_tokens"
    question_tokens = max(len(dialogue._llm.tokenize(q.encode(), add_bos=False)) for q in questions)
    for stats in shifted:
        # The new question (with its chat markup and the last answer's end), not the whole history.
        assert stats.evaluated_tokens <= question_tokens + 12
        assert stats.prompt_tokens - len(prefix_of(dialogue)) > 2 * (question_tokens + 12)


def test_an_answer_on_a_shifted_cache_reads_like_one_evaluated_from_scratch(dialogue):
    dialogue.reset()
    for question in ["Hello, who are you?", "Do you sell maps?", "Is there a café?", "Can I bring my dog?"]:
        "".join(dialogue.answer(question))
    shifted = "".join(dialogue.answer("Where can I find books about cooking?", record=False))
    assert dialogue.last_stats.reuse is Reuse.SHIFTED
    overwrite_context(dialogue)  # forget every evaluated token but the saved persona
    fresh = "".join(dialogue.answer("Where can I find books about cooking?", record=False))
    assert dialogue.last_stats.reuse is Reuse.RESTORED
    assert shifted.split()[:4] == fresh.split()[:4]


def test_dropped_span_finds_what_was_removed_after_the_common_prefix():
    cached = [1, 2, 3, 10, 11, 12, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]
    prompt = [1, 2, 3, 20, 21, 22, 23, 24, 25, 26, 27, 28, 40, 41]
    start = common_prefix(cached, prompt)
    assert start == 3
    assert dropped_span(cached, prompt, start) == (6, 9)
    assert dropped_span(cached, [1, 2, 3, 50, 51], start) is None  # nothing of the cache is left to keep


def test_prefill_evaluates_the_history_ahead_so_the_next_turn_evaluates_its_question_only(dialogue):
    dialogue.reset()
    questions = ["Hello, who are you?", "Do you sell maps?", "Is there a café?", "Can I bring my dog?", "Where is fiction?"]
    for question in questions[:-1]:
        "".join(dialogue.answer(question))
        dialogue.prefill()  # what the pipeline's brain does while the answer is spoken
    assert questions[0] not in dialogue.evaluated_text()  # the trimmed exchange was shifted out ahead
    "".join(dialogue.answer(questions[-1]))
    stats = dialogue.last_stats
    question_tokens = len(dialogue._llm.tokenize(questions[-1].encode(), add_bos=False))
    assert stats.reuse is Reuse.PREFIX
    assert stats.evaluated_tokens <= question_tokens + 6  # its markup: "<|im_start|>user\n", "<|im_end|>\n…"
    assert stats.prompt_tokens - len(prefix_of(dialogue)) > 4 * (question_tokens + 6)
