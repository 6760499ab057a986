"""What the LLM says on questions the venue's knowledge does not cover, and whether any of it is made
up: the guarded answers of the real answerer, read by an oracle of its own.

Input: questions (a labelled set's), the answerer (knowledge, safety, the LLM and the grounding guard).
Output: per question the route, whether the guard cut a clause, what was spoken, and the words of it
that nothing the venue or the persona says (nor the question) supports. The oracle is independent of the
guard's own claim rules (``answer.claims``), so it checks them rather than repeating them: digit runs,
and capitalised words inside a sentence.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..messages import Route

LLM_ROUTES = (Route.FACTS, Route.SMALLTALK)


def unsupported(text: str, support: str) -> list[str]:
    """Digit runs and capitalised words inside a sentence of ``text`` that do not occur in ``support``."""
    support_digits = set(re.findall(r"\d+", support))
    support_words = set(re.findall(r"[a-z]+", support.lower()))
    missing = [d for d in re.findall(r"\d+", text) if d not in support_digits]
    for sentence in re.split(r"(?<=[.!?])\s+", text):
        for word in re.findall(r"(?<=\s)[A-Z][a-z]+", sentence):
            if word.lower() not in support_words and word != "I":
                missing.append(word)
    return missing


@dataclass(frozen=True)
class Answered:
    question: str
    route: str
    blocked: tuple[str, ...]
    """The guard's reason for each clause it stopped."""
    spoken: str
    unsupported: tuple[str, ...]

    @property
    def through_llm(self) -> bool:
        return self.route in {route.value for route in LLM_ROUTES}


def answer_all(answerer, questions: list[str], support: str) -> list[Answered]:
    """Each question answered by ``answerer`` (``Answerer``) with nothing kept in its history."""
    found = []
    for question in questions:
        blocks = []
        reply = answerer.reply(question, record=False, on_block=blocks.append)
        clauses = list(reply.clauses())
        missing = [word for clause in clauses for word in unsupported(clause, f"{support} {question}")]
        found.append(Answered(question, reply.route.value, tuple(f"{b.reason.value}: {b.detail}" for b in blocks),
                              " ".join(clauses), tuple(missing)))
    return found
