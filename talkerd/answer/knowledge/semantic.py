"""Sentences → unit vectors, so that questions match the venue's entries and facts by meaning.

``SentenceEmbedder`` is the seam: anything with ``embed(texts) -> float32 array [n, dim]`` whose rows
have unit length (so a dot product is the cosine similarity). ``EngineEmbedder`` is the real one: the
sentence encoder all-MiniLM-L6-v2 run as the project's engine ``minilm-l6`` (ONNX Runtime here,
TensorRT on the kiosk) behind its WordPiece tokenizer. ``SemanticIndex`` holds the embeddings of the
venue's texts, computed once when the knowledge is loaded (and again when it is reloaded).
"""
from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from ...errors import EngineError

log = logging.getLogger(__name__)

class SentenceEmbedder(Protocol):
    """Texts → one L2-normalised float32 row per text."""

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """An array [len(texts), dim]; every row has length 1."""
        ...


class WordPieceTokenizer:
    """The model's own tokenizer (``tokenizers``, from its tokenizer.json): texts → padded id and mask
    arrays, cut at ``max_tokens`` (the encoder was trained on at most 256)."""

    def __init__(self, tokenizer_json: str, max_tokens: int = 256) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_str(tokenizer_json)
        self._tokenizer.enable_truncation(max_tokens)
        # To the batch's longest text: the shipped tokenizer.json pads every text to 128 tokens.
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]", length=None)

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.asarray([e.ids for e in encodings], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encodings], dtype=np.int64)
        return ids, mask


class EngineEmbedder:
    """The sentence encoder as an engine: tokenise, run in batches the engine's profile accepts."""

    def __init__(self, engine, tokenizer: WordPieceTokenizer) -> None:
        self._engine = engine
        self._tokenizer = tokenizer
        spec = engine.manifest.input("input_ids")
        self._max_batch = spec.max[0]
        self._dim = int(engine.metadata.get("dim", "0"))

    @classmethod
    def open(cls, engines_cfg, name: str) -> "EngineEmbedder":
        """Load engine ``name`` and the tokenizer provisioned beside its ONNX (the manifest's
        ``metadata.tokenizer``, written at setup); ``EngineError`` if either is missing."""
        from ...engines import open_engine

        engine = open_engine(engines_cfg, name)
        if "tokenizer" not in engine.metadata:
            engine.close()
            raise EngineError(f"engine {name}: its manifest names no tokenizer (metadata.tokenizer)")
        path = Path(engines_cfg.build_dir) / name / engine.metadata["tokenizer"]
        try:
            tokenizer_json = path.read_text(encoding="utf-8")
        except OSError as exc:
            engine.close()
            raise EngineError(f"engine {name}: cannot read its tokenizer {path}: {exc.strerror or exc} "
                              "(provision it with python tools/prepare_engines.py)") from None
        max_tokens = engine.manifest.input("input_ids").max[1]
        return cls(engine, WordPieceTokenizer(tokenizer_json, max_tokens))

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim), dtype=np.float32)
        rows = []
        for start in range(0, len(texts), self._max_batch):
            ids, mask = self._tokenizer.encode(texts[start : start + self._max_batch])
            rows.append(self._engine.run({"input_ids": ids, "attention_mask": mask})["embedding"])
        return np.concatenate(rows).astype(np.float32, copy=False)

    @property
    def engines(self) -> tuple:
        """Its inference engine, for the health board."""
        return (self._engine,)

    def close(self) -> None:
        self._engine.close()


class SemanticIndex:
    """The venue's documents (an entry: its curated questions; a fact line: itself) as unit vectors,
    embedded once; ``similarities`` gives a question's cosine to each document (its closest text)."""

    def __init__(self, embedder: SentenceEmbedder, documents: Sequence[Sequence[str]]) -> None:
        self._embedder = embedder
        texts = [text for document in documents for text in document]
        self._owner = np.asarray([i for i, document in enumerate(documents) for _ in document], dtype=np.int64)
        self._count = len(documents)
        self._vectors = embedder.embed(texts) if texts else None
        log.debug("semantic index: %d texts of %d documents embedded", len(texts), len(documents))

    def similarities(self, question: str) -> np.ndarray:
        """For every document, in order, the highest cosine between ``question`` and one of its texts
        (-1 for a document without texts)."""
        best = np.full(self._count, -1.0, dtype=np.float32)
        if self._vectors is not None:
            np.maximum.at(best, self._owner, self._vectors @ self._embedder.embed([question])[0])
        return best

    def closest(self, vector: np.ndarray) -> float:
        """The highest cosine between an embedded question (a unit vector) and any of the texts
        (-1 without texts)."""
        return -1.0 if self._vectors is None else float((self._vectors @ vector).max())
