"""LLM story parsers: ``llama`` (a local GGUF via llama-cpp-python) and ``openai`` (an
OpenAI-compatible server such as Ollama, LM Studio or llama.cpp's server).

Both send the same prompt and JSON schema (:mod:`.prompt`), split long stories into windows that
carry state forward (:mod:`.windows`), validate every answer strictly, and fall back to the rule
parser for a window the model cannot handle (:mod:`.fallback`). Importing this package imports
neither llama_cpp nor any HTTP client beyond the standard library; the parsers load lazily.
"""

from comic_studio.parsing.llm.catalogue import llm_entries, resolve_model
from comic_studio.parsing.llm.driver import WindowedLLMParser, WindowProgress
from comic_studio.parsing.llm.fallback import ContextOverflow, ModelUnavailable, WindowFailure, WindowTimeout
from comic_studio.parsing.llm.prompt import WindowOutput, build_messages, decode_window_output, window_schema

__all__ = [
    "ContextOverflow",
    "ModelUnavailable",
    "WindowFailure",
    "WindowOutput",
    "WindowProgress",
    "WindowTimeout",
    "WindowedLLMParser",
    "build_messages",
    "decode_window_output",
    "llm_entries",
    "resolve_model",
    "window_schema",
]
