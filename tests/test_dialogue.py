"""The dialogue stage on real llama.cpp with the SmolLM2 GGUF from its package."""
from __future__ import annotations

import pytest

from talkerd.answer.clauses import ClauseSplitter, split_text, stream_clauses
from talkerd.answer.dialogue import Dialogue

from .conftest import MODELS


@pytest.fixture(scope="module")
def dialogue(default_config):
    llm = default_config.llm.model_copy(update={"model": MODELS / "smollm2-135m-instruct-q4_1.gguf", "max_answer_tokens": 40})
    d = Dialogue.load(llm, default_config.persona, default_config.venue)
    yield d
    d.close()


def test_persona_prefix_is_evaluated_once_and_reused(dialogue):
    dialogue.reset()
    first = "".join(dialogue.answer("Hello! Who are you?", record=False))
    stats_first = dialogue.last_stats
    second = "".join(dialogue.answer("Can you recommend a good book for a rainy day?", record=False))
    stats_second = dialogue.last_stats
    assert first and second
    system_tokens = len(dialogue._llm.tokenize(dialogue._system.encode()))
    question_tokens = len(dialogue._llm.tokenize(b"Can you recommend a good book for a rainy day?"))
    assert system_tokens > 40
    # Turn 2 re-evaluates about the question (plus chat markup), not the persona prefix.
    assert stats_second.evaluated_tokens < question_tokens + 12
    assert stats_second.evaluated_tokens < stats_second.prompt_tokens - system_tokens + 12
    assert stats_first.evaluated_tokens >= system_tokens


def test_answers_stream_in_pieces_and_respect_the_token_cap(dialogue):
    pieces = list(dialogue.answer("Tell me a long story about a dragon.", record=False, max_tokens=12))
    assert len(pieces) > 3
    assert dialogue.last_stats.completion_tokens <= 12


def test_history_is_bounded_in_tokens(dialogue):
    dialogue.reset()
    for question in ["Hi there!", "What is your name?", "How are you today?", "Do you like books?", "Tell me a joke."]:
        "".join(dialogue.answer(question, max_tokens=30))
    kept = sum(e.tokens for e in dialogue._history)
    assert 0 < kept <= dialogue._config.history_tokens
    messages = dialogue.messages("next")
    assert messages[0]["role"] == "system" and messages[-1]["content"] == "next"


def test_timeout_cuts_the_answer_short(default_config):
    llm = default_config.llm.model_copy(update={"model": MODELS / "smollm2-135m-instruct-q4_1.gguf", "timeout_s": 0.001})
    d = Dialogue.load(llm, default_config.persona, default_config.venue)
    try:
        text = "".join(d.answer("Tell me everything about the history of printing."))
        assert d.last_stats.timed_out
        assert len(text.split()) <= 3
    finally:
        d.close()


def test_facts_come_after_the_fixed_prefix(dialogue):
    messages = dialogue.messages("When do you open?", ("We open at 9.",))
    assert "We open at 9." not in messages[0]["content"]
    assert "We open at 9." in messages[-1]["content"]


def test_missing_model_file_is_reported(default_config, tmp_path):
    from talkerd.errors import ComponentUnavailable

    llm = default_config.llm.model_copy(update={"model": tmp_path / "nope.gguf"})
    with pytest.raises(ComponentUnavailable, match="llm.model"):
        Dialogue.load(llm, default_config.persona, default_config.venue)


def test_a_corrupt_gguf_is_reported(default_config, tmp_path):
    from talkerd.errors import ComponentUnavailable

    bad = tmp_path / "bad.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    llm = default_config.llm.model_copy(update={"model": bad})
    with pytest.raises(ComponentUnavailable, match="could not load"):
        Dialogue.load(llm, default_config.persona, default_config.venue)


def test_first_clause_is_cut_early_and_later_ones_at_sentences():
    splitter = ClauseSplitter()
    out = []
    for piece in ["Well", ", we", " open", " at", " nine,", " and", " on", " Sundays", " at", " ten.", " See you", " soon!"]:
        out += splitter.feed(piece)
    rest = splitter.flush()
    assert out[0] == "Well, we open at nine,"
    assert out[1] == "and on Sundays at ten."
    assert rest == "See you soon!"


def test_markdown_is_not_spoken():
    assert list(stream_clauses(["**Hello** there. ", "`ok`"])) == ["Hello there.", "ok"]
    assert split_text("One. Two.") == ["One.", "Two."]


def test_llama_context_is_one_threads_at_a_time(dialogue):
    """An answer holds llama.cpp's context from its first piece to its end: a prefill from another
    thread leaves the context alone, and another thread's answer waits for this one to finish."""
    import threading

    dialogue.reset()
    first = dialogue.answer("Tell me a long story about a dragon.", record=False, max_tokens=20)
    next(first)  # suspended mid-answer, holding the context
    held = tuple(dialogue._llm.input_ids[: dialogue._llm.n_tokens])
    order: list[str] = []

    def other_thread() -> None:
        dialogue.prefill()
        order.append("prefill returned")
        order.append("second: " + "".join(dialogue.answer("Hello!", record=False, max_tokens=4)))

    worker = threading.Thread(target=other_thread)
    worker.start()
    while not order:  # the prefill returns without waiting for the answer
        worker.join(0.01)
    assert tuple(dialogue._llm.input_ids[: dialogue._llm.n_tokens]) == held
    worker.join(0.5)
    assert worker.is_alive() and order == ["prefill returned"], "the second answer did not wait for the first"
    "".join(first)  # finishing the first answer lets the second one in
    worker.join(60)
    assert not worker.is_alive() and order[1].startswith("second: ")


def test_an_answer_that_cannot_have_the_context_in_time_is_an_error(default_config):
    import threading

    from talkerd.errors import ComponentUnavailable

    llm = default_config.llm.model_copy(update={"model": MODELS / "smollm2-135m-instruct-q4_1.gguf", "timeout_s": 3.0})
    d = Dialogue.load(llm, default_config.persona, default_config.venue)
    try:
        held = d.answer("Tell me a long story about a dragon.", record=False, max_tokens=30)
        next(held)
        failed: list[Exception] = []

        def other_thread() -> None:
            try:
                list(d.answer("Where is the exit?", record=False))
            except ComponentUnavailable as exc:
                failed.append(exc)

        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join(30)
        assert failed and failed[0].code == "llm_busy" and "another thread" in failed[0].message
        held.close()  # closing the open answer gives the context back
        worker = threading.Thread(target=other_thread)
        worker.start()
        worker.join(30)
        assert not worker.is_alive() and len(failed) == 1
    finally:
        d.close()
