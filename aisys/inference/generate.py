"""Autoregressive generation in two phases: *prefill* runs the whole prompt through the model once and fills
the KV cache; *decode* then feeds one token per step, reading everything earlier from the cache.

``generate(model, prompt_ids, max_new_tokens)`` works with any causal language model whose
``model(ids (N, L))`` returns logits (N, L, vocab); with ``use_cache=True`` the model must also take a
``kv_cache=`` argument and have ``kv_spec()`` (TinyGPT does; ``aisys.models.gpt`` documents the protocol).
``use_cache=False`` re-runs the whole sequence every step, the baseline the cache is measured against: both
give the same logits at every step (up to float rounding) and so the same tokens.
"""
from __future__ import annotations

import numpy as np

from ..framework.tensor import Tensor, no_grad
from .kv_cache import KVCache, KVSpec
from .sampling import Sampler

__all__ = ["generate", "check_lengths"]


def _ids(prompt_ids) -> tuple[np.ndarray, bool]:
    data = prompt_ids._data if isinstance(prompt_ids, Tensor) else prompt_ids
    try:
        arr = np.asarray(data)
    except Exception:
        raise TypeError(f"generate: prompt_ids must be token ids (a list, numpy array or Tensor), got "
                        f"{type(prompt_ids).__name__}") from None
    if arr.ndim not in (1, 2) or arr.dtype.kind not in "iu":
        raise TypeError(f"generate: prompt_ids must be integer token ids of shape (L,) or (batch, L), got "
                        f"{arr.dtype} {arr.shape}")
    single = arr.ndim == 1
    return np.array(arr.reshape(1, -1) if single else arr, np.int64), single


def check_lengths(model, prompt_len: int, max_new_tokens, where: str = "generate") -> None:
    """The errors a request gets before anything runs: no prompt, no new tokens, or more than the context."""
    if prompt_len < 1:
        raise ValueError(f"{where}: the prompt is empty; give at least one token")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, (int, np.integer)) or max_new_tokens < 1:
        raise ValueError(f"{where}: max_new_tokens={max_new_tokens!r} must be an int >= 1")
    context = getattr(model, "block_size", None)
    if context is not None:
        if prompt_len > context:
            raise ValueError(f"{where}: the prompt has {prompt_len} tokens, longer than the model's context of "
                             f"{context} (block_size); keep its last {context} tokens")
        if prompt_len + max_new_tokens > context:
            raise ValueError(f"{where}: prompt ({prompt_len} tokens) + max_new_tokens ({max_new_tokens}) = "
                             f"{prompt_len + max_new_tokens} exceeds the model's context of {context} (block_size); "
                             f"ask for at most {context - prompt_len} new tokens")


def generate(model, prompt_ids, max_new_tokens: int, *, use_cache: bool = True, temperature: float = 0.0,
             top_k: int | None = None, top_p: float | None = None, seed: int = 0, stop_tokens=(),
             kv_dtype="float32", return_logits: bool = False):
    """Append up to ``max_new_tokens`` tokens to the prompt; returns the ids (same rank as ``prompt_ids``).

    ``temperature=0`` is greedy; otherwise temperature / ``top_k`` / ``top_p`` sampling with a generator
    seeded by ``seed``. Generation stops early when every row has produced one of ``stop_tokens`` (a row
    that stopped repeats its stop token while the others go on). With ``return_logits=True`` returns
    ``(ids, logits)``, logits (batch, steps, vocab) float32: the distribution each new token came from.
    """
    ids, single = _ids(prompt_ids)
    N, L = ids.shape
    check_lengths(model, L, max_new_tokens)
    sampler = Sampler(temperature, top_k, top_p, seed)
    stops = np.array(sorted({int(t) for t in stop_tokens}), np.int64)
    was_training = getattr(model, "training", False)
    if hasattr(model, "eval"):
        model.eval()
    out, logits_seen = [ids], []
    done = np.zeros(N, bool)
    try:
        with no_grad():
            if use_cache:
                cache = KVCache(KVSpec.of(model), batch=N, max_seq=L + max_new_tokens, dtype=kv_dtype)
                step_input = ids
            for _ in range(max_new_tokens):
                if use_cache:
                    logits = _last(model(Tensor(step_input), kv_cache=cache))
                else:
                    logits = _last(model(Tensor(np.concatenate(out, 1))))
                logits_seen.append(logits)
                nxt = sampler(logits)
                if stops.size:
                    nxt = np.where(done, out[-1][:, -1], nxt)
                    done |= np.isin(nxt, stops)
                step_input = nxt.reshape(N, 1)
                out.append(step_input)
                if stops.size and done.all():
                    break
    finally:
        if hasattr(model, "train"):
            model.train(was_training)
    result = np.concatenate(out, 1)
    result = result[0] if single else result
    if not return_logits:
        return result
    logits = np.stack(logits_seen, 1).astype(np.float32)
    return result, (logits[0] if single else logits)


def _last(logits) -> np.ndarray:
    out = logits[0] if isinstance(logits, tuple) else logits
    return (out._data if isinstance(out, Tensor) else np.asarray(out))[:, -1]
