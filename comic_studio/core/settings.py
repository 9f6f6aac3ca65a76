"""Application settings (not project data): folders, defaults for new projects, theme, autosave,
recent files and the window layout. Pure Python — the UI reads and writes them, the CLI could too.

Stored as ``settings.json`` in the config folder: the ``COMIC_STUDIO_CONFIG_DIR`` environment
variable when set (tests, portable installs), else platformdirs' ``user_config_dir("comic-studio")``.
A damaged settings file must never stop the app from starting: it is set aside as
``settings.json.bad`` and defaults are used, with the reason returned to show the user.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from comic_studio.core.atomic import atomic_write_bytes
from comic_studio.core.errors import ComicStudioError
from comic_studio.core.model import ReadingDirection
from comic_studio.core.safe_read import UnsafeInputError, parse_json, read_bytes

CONFIG_DIR_ENV = "COMIC_STUDIO_CONFIG_DIR"
STATE_DIR_ENV = "COMIC_STUDIO_STATE_DIR"
BANK_DIR_ENV = "COMIC_STUDIO_BANK_DIR"
LORA_LIBRARY_ENV = "COMIC_STUDIO_LORA_DIR"
SETTINGS_FILE = "settings.json"
MAX_RECENT_FILES = 10
MAX_SETTINGS_BYTES = 4 * 1024 * 1024
"""A settings file is a few kB; a bigger one is not ours (or is damaged)."""
MAX_AUTOSAVE_MINUTES = 120

Theme = Literal["system", "light", "dark"]
Device = Literal["auto", "cuda", "mps", "cpu"]
Precision = Literal["auto", "float32", "float16", "bfloat16"]
MemoryMode = Literal["auto", "gpu", "model-offload", "sequential-offload"]
RenderOn = Literal["local", "cluster"]


class SettingsError(ComicStudioError):
    """The settings file could not be written."""


class AppSettings(BaseModel):
    """Everything the app remembers between runs. Unknown keys (from a newer version) are
    ignored rather than refused, so downgrading never loses the whole file."""

    model_config = ConfigDict(extra="ignore", validate_assignment=True)

    projects_folder: str = ""
    """Where Open/Save dialogs start; empty → the user's documents folder."""
    models_folder: str = ""
    """Where the engine keeps downloaded model weights; empty → the app's data folder."""
    external_models_folder: str = ""
    """An existing ComfyUI / Automatic1111 models folder whose checkpoints may be reused."""
    default_page_preset: Annotated[str, Field(min_length=1, max_length=100)] = "us-comic"
    reading_direction: ReadingDirection = ReadingDirection.LTR
    theme: Theme = "system"
    autosave_minutes: Annotated[int, Field(ge=0, le=MAX_AUTOSAVE_MINUTES)] = 5
    """0 turns the periodic autosave off (risky operations still write a recovery file)."""
    recent_files: list[str] = Field(default_factory=list)
    llm_model: Annotated[str, Field(max_length=4_000)] = ""
    """The llama parser's GGUF: a file path or a catalogue id (empty → $COMIC_STUDIO_LLAMA_MODEL)."""
    openai_base_url: Annotated[str, Field(max_length=2_000)] = ""
    """The openai parser's server, e.g. http://127.0.0.1:11434/v1 (Ollama). No API key is stored:
    a key is read from $COMIC_STUDIO_OPENAI_API_KEY only."""
    openai_model: Annotated[str, Field(max_length=500)] = ""
    device: Device = "auto"
    """Where generation models run (the engine's EngineSettings.device)."""
    dtype: Precision = "auto"
    """Model precision: ``auto`` = float16 on a GPU (with the fp16-fixed SDXL VAE), float32 on the CPU."""
    memory_mode: MemoryMode = "auto"
    """``auto``: chosen per backend from the GPU's memory; ``gpu``: everything resident;
    ``model-offload`` / ``sequential-offload`` for small GPUs."""
    allow_pickled_weights: bool = False
    """Read pickled model files (.bin/.ckpt/.pt, with weights_only=True). The user's choice only: a
    project cannot turn it on (``generation.models.pickle_policy``)."""
    pose_clip_model: Annotated[str, Field(max_length=4_000)] = "openclip-vit-h-14"
    """The OpenCLIP model of the "openclip" pose matching: a catalogue id (kind ``openclip``) or a
    weights file path."""
    render_on: RenderOn = "local"
    """Where renders run: ``local`` (this machine's engine) or ``cluster`` (a Ray cluster at
    :attr:`cluster_address`; ``generation.cluster``)."""
    cluster_address: Annotated[str, Field(max_length=500)] = ""
    """The Ray cluster's address (``ray://host:10001``, ``host:6379``), reached over an SSH tunnel or
    a VPN: never an open port on the internet."""
    cluster_workers: Annotated[int, Field(ge=0, le=64)] = 0
    """Workers to start there: 0 = one per GPU of the cluster (a CPU-only cluster needs a count)."""
    window_geometry: str = ""
    """QMainWindow.saveGeometry() as base64 (opaque to the core)."""
    window_state: str = ""
    """QMainWindow.saveState() as base64: dock and toolbar layout."""

    @field_validator("recent_files")
    @classmethod
    def _cap_recent(cls, value: list[str]) -> list[str]:
        unique: list[str] = []
        for item in value:
            if item and item not in unique:
                unique.append(item)
        return unique[:MAX_RECENT_FILES]

    def add_recent(self, path: str | Path) -> None:
        """Put ``path`` first in the recent files (absolute, no duplicates, at most 10)."""
        entry = str(Path(path).absolute())
        self.recent_files = [entry] + [p for p in self.recent_files if p != entry]

    def remove_recent(self, path: str | Path) -> None:
        entry = str(Path(path).absolute())
        self.recent_files = [p for p in self.recent_files if p != entry]

    def effective_projects_folder(self) -> Path:
        if self.projects_folder:
            return Path(self.projects_folder).expanduser()
        from platformdirs import user_documents_dir  # noqa: PLC0415 — only when needed

        return Path(user_documents_dir())

    def effective_models_folder(self) -> Path:
        if self.models_folder:
            return Path(self.models_folder).expanduser()
        from platformdirs import user_data_dir  # noqa: PLC0415

        return Path(user_data_dir("comic-studio")) / "models"


def config_dir() -> Path:
    override = os.environ.get(CONFIG_DIR_ENV)
    if override:
        return Path(override)
    from platformdirs import user_config_dir  # noqa: PLC0415

    return Path(user_config_dir("comic-studio"))


def state_dir() -> Path:
    """Where the app keeps what it writes for itself (recovery files, session caches), not created
    here: ``$COMIC_STUDIO_STATE_DIR`` (tests, portable installs), else platformdirs'
    ``user_state_dir("comic-studio")``. On disk, never a RAM-backed temporary folder: a session
    cache can hold a copy of a big project."""
    override = os.environ.get(STATE_DIR_ENV)
    if override:
        return Path(override)
    from platformdirs import user_state_dir  # noqa: PLC0415

    return Path(user_state_dir("comic-studio"))


def character_lora_dir() -> Path:
    """Where characters' LoRAs are written for the jobs that apply them (``<sha256>.safetensors``,
    not created here): a cache beside the identity banks; the project holds the LoRAs themselves."""
    return bank_dir().parent / "character-loras"


def lora_library_dir() -> Path:
    """The user's LoRA library folder (``<sha256>.safetensors``, not created here): trained LoRAs too
    big for a project live here, named from the project by their hash. User data, not a cache —
    deleting it loses those LoRAs: ``$COMIC_STUDIO_LORA_DIR``, else platformdirs'
    ``user_data_dir("comic-studio")/loras``."""
    override = os.environ.get(LORA_LIBRARY_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_data_dir  # noqa: PLC0415

    return Path(user_data_dir("comic-studio")) / "loras"


def class_images_dir() -> Path:
    """Where the base models' class pictures for prior preservation are kept (one folder per base
    model, class prompt, size and seed; not created here): a cache beside the identity banks,
    shared by every character and project, since the same base model makes the same pictures."""
    return bank_dir().parent / "class-images"


def bank_dir() -> Path:
    """Where identity banks of consistent-character backends live (``<sha256>.safetensors``, not
    created here): ``$COMIC_STUDIO_BANK_DIR``, else the user cache folder. A cache, not project data:
    a project carries the banks that fit its asset limit, and bigger ones are rebuilt from the
    anchor's recorded request."""
    override = os.environ.get(BANK_DIR_ENV)
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir  # noqa: PLC0415

    return Path(user_cache_dir("comic-studio")) / "banks"


def settings_path() -> Path:
    return config_dir() / SETTINGS_FILE


def load_settings(path: str | Path | None = None) -> tuple[AppSettings, str]:
    """The saved settings and a problem description ("" when all was well).

    A missing file gives defaults silently. An unreadable or invalid one gives defaults and is
    renamed to ``*.bad`` so the next save does not destroy what the user may want to inspect.
    """
    target = Path(path) if path else settings_path()
    if not target.exists() and not target.is_symlink():
        return AppSettings(), ""
    try:
        raw = read_bytes(target, limit=MAX_SETTINGS_BYTES, what="settings file")
    except UnsafeInputError as exc:
        # Unreadable (permissions), not a regular file (a FIFO would hang the start) or far too
        # big: start with defaults and leave the file alone; its content was never looked at.
        return AppSettings(), f"{target}: cannot read the settings ({exc.problem}); using defaults"
    try:
        data = parse_json(raw, where=target, limit=MAX_SETTINGS_BYTES)
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        return AppSettings.model_validate(data), ""
    except (UnsafeInputError, ValueError, ValidationError) as exc:
        reason = exc.problem if isinstance(exc, UnsafeInputError) else str(exc).splitlines()[0]
        try:
            target.replace(target.with_name(target.name + ".bad"))
        except OSError:
            pass
        return (
            AppSettings(),
            f"{target}: settings were damaged ({reason}); using defaults (old file kept as {target.name}.bad)",
        )


def save_settings(settings: AppSettings, path: str | Path | None = None) -> Path:
    """Write atomically (temporary file + rename): a crash never leaves half a settings file."""
    target = Path(path) if path else settings_path()
    payload = settings.model_dump_json(indent=2).encode("utf-8")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(target, payload, "the settings")
    except OSError as exc:  # FileWriteError included: its strerror is the operating system's words
        raise SettingsError(f"{target}: cannot save the settings ({exc.strerror or exc})") from exc
    return target
