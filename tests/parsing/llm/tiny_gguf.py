"""Write a tiny llama-architecture GGUF (random weights, ~0.5 MB) that llama-cpp-python loads.

The vocabulary is byte-level SentencePiece: <unk>, <s>, </s> and the 256 byte tokens, so any text
tokenises (SentencePiece falls back to bytes) and a JSON-schema grammar can always find a legal
next token. The metadata carries a small chat template so ``create_chat_completion`` exercises the
model's own template. The weights are random: the model writes nonsense, which is all the tests
need — they check mechanics (grammar, validation, windows, cancel, fallback), not content.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|{{ message['role'] }}|>\n{{ message['content'] }}\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)


def write_tiny_gguf(
    path: str | Path,
    *,
    seed: int = 0,
    n_embd: int = 64,
    n_layers: int = 2,
    n_head: int = 4,
    n_ff: int = 128,
    context_length: int = 4096,
    chat_template: str | None = CHAT_TEMPLATE,
    terse: bool = True,
) -> Path:
    """``terse`` biases the output layer so the model prefers closing quotes and brackets and
    otherwise writes letters: under a JSON-schema grammar it answers with the smallest valid
    document (one scene, one beat, a one-letter action) in a few hundred tokens, instead of
    filling every string to its maximum length with random bytes. Without a grammar the same
    bias makes it answer with stray brackets — invalid JSON, which the fallback tests need."""
    import gguf  # the test-only writer; the app never writes models

    path = Path(path)
    rng = np.random.default_rng(seed)
    tokens = [b"<unk>", b"<s>", b"</s>"] + [f"<0x{i:02X}>".encode() for i in range(256)]
    token_types = [gguf.TokenType.UNKNOWN, gguf.TokenType.CONTROL, gguf.TokenType.CONTROL] + [gguf.TokenType.BYTE] * 256
    n_vocab = len(tokens)

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("comic-studio-tiny-test")
    writer.add_context_length(context_length)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layers)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head)
    writer.add_rope_dimension_count(n_embd // n_head)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores([0.0] * n_vocab)
    writer.add_token_types(token_types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    if chat_template is not None:
        writer.add_chat_template(chat_template)

    def weight(*shape: int, scale: float = 0.02) -> np.ndarray:
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    embd = weight(n_vocab, n_embd)
    output = weight(n_vocab, n_embd)
    if terse:
        # Every embedding carries a large constant in dimension 0; the layers' small random
        # weights barely disturb it, so after the final RMS norm dimension 0 is ~sqrt(n_embd) for
        # every position and output.weight[:, 0] acts as a fixed per-token logit bias.
        embd[:, 0] = 1.0
        output[:, 0] = 0.0

        def byte_id(ch: str) -> int:
            return 3 + ord(ch)

        for ch in "abcdefghijklmnopqrstuvwxyz ":
            output[byte_id(ch), 0] = 0.5
        output[byte_id('"'), 0] = 1.2
        output[byte_id("}"), 0] = 1.0
        output[byte_id("]"), 0] = 1.1
    # numpy shapes are ggml shapes reversed: token_embd is ggml [n_embd, n_vocab].
    writer.add_tensor("token_embd.weight", embd)
    writer.add_tensor("output_norm.weight", np.ones(n_embd, dtype=np.float32))
    writer.add_tensor("output.weight", output)
    for i in range(n_layers):
        writer.add_tensor(f"blk.{i}.attn_norm.weight", np.ones(n_embd, dtype=np.float32))
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            writer.add_tensor(f"blk.{i}.{name}.weight", weight(n_embd, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_norm.weight", np.ones(n_embd, dtype=np.float32))
        writer.add_tensor(f"blk.{i}.ffn_gate.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_up.weight", weight(n_ff, n_embd))
        writer.add_tensor(f"blk.{i}.ffn_down.weight", weight(n_embd, n_ff))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
