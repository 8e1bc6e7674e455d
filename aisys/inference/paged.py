"""Paged KV memory (Kwon et al., "Efficient Memory Management for Large Language Model Serving with
PagedAttention", SOSP 2023 — vLLM).

A contiguous cache must reserve room for the longest sequence a request *might* reach, and most of that
room stays empty. Paging cuts the cache into fixed-size **blocks** of ``block_size`` tokens, like an
operating system cuts memory into pages: each sequence has a **block table** (logical block i → physical
block), blocks are taken from a free list only when a token needs one, and the only waste is the unfilled
tail of each sequence's last block (< block_size tokens). Sequences can **share** blocks: a forked sequence
(parallel sampling, beam search, a shared system prompt) points at its parent's blocks, each with a
reference count, and a shared block is copied only when one of them writes into it (**copy-on-write**).

:class:`PagedKVCache` stores keys and values of every layer as pools of blocks
(n_layer, num_blocks, n_kv_head, block_size, head_dim). It is also a cache a model can run on (``begin`` /
``attend``, see ``aisys.models.gpt``): an engine ``schedule``s segments — one per sequence, the tokens it
brings this step (a whole prompt, or one decode token) — and the model runs all of them as one flat batch
of tokens. The projections and MLP see every token together; attention runs per sequence over its own
blocks (Orca's *selective batching*).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..framework.tensor import Tensor
from .kv_cache import KVSpec, kv_dtype

__all__ = ["OutOfBlocks", "BlockAllocator", "PagedKVCache", "KVUsage", "SwappedSequence"]


class OutOfBlocks(RuntimeError):
    """Not enough free KV blocks; nothing was allocated. ``needed`` and ``free`` say by how much."""

    def __init__(self, message: str, needed: int, free: int):
        super().__init__(message)
        self.needed, self.free = needed, free


class BlockAllocator:
    """A free list of block ids and a reference count per block. Blocks are handed out lowest id first."""

    def __init__(self, num_blocks: int):
        if isinstance(num_blocks, bool) or not isinstance(num_blocks, (int, np.integer)) or num_blocks < 1:
            raise ValueError(f"BlockAllocator: num_blocks={num_blocks!r} must be a positive int")
        self.num_blocks = int(num_blocks)
        self.ref = np.zeros(self.num_blocks, np.int64)
        self._free = list(range(self.num_blocks - 1, -1, -1))

    @property
    def free_count(self) -> int:
        return len(self._free)

    @property
    def used_count(self) -> int:
        return self.num_blocks - len(self._free)

    def allocate(self) -> int:
        if not self._free:
            raise OutOfBlocks(f"no free KV block (all {self.num_blocks} in use)", 1, 0)
        b = self._free.pop()
        self.ref[b] = 1
        return b

    def share(self, block: int) -> None:
        if self.ref[block] < 1:
            raise ValueError(f"block {block} is free; only a block in use can be shared")
        self.ref[block] += 1

    def release(self, block: int) -> None:
        if self.ref[block] < 1:
            raise ValueError(f"block {block} is already free (released twice?)")
        self.ref[block] -= 1
        if self.ref[block] == 0:
            self._free.append(block)


@dataclass(frozen=True)
class KVUsage:
    """A snapshot of the paged cache: physical blocks in use, tokens they hold, bytes allocated vs filled.
    Shared blocks count once. ``wasted_bytes`` is the unfilled tail of partly filled blocks."""
    blocks_used: int
    blocks_total: int
    tokens: int
    bytes_allocated: int
    bytes_used: int

    @property
    def wasted_bytes(self) -> int:
        return self.bytes_allocated - self.bytes_used

    @property
    def waste(self) -> float:
        return self.wasted_bytes / self.bytes_allocated if self.bytes_allocated else 0.0


@dataclass
class SwappedSequence:
    """A sequence's KV blocks copied out to host memory (preemption by swapping)."""
    length: int
    k: np.ndarray           # (n_layer, blocks, n_kv_head, block_size, head_dim)
    v: np.ndarray

    @property
    def nbytes(self) -> int:
        return self.k.nbytes + self.v.nbytes


class PagedKVCache:
    """Keys and values in ``num_blocks`` blocks of ``block_size`` tokens, shared out by block tables."""

    def __init__(self, spec, num_blocks: int, block_size: int = 16, dtype="float32"):
        self.spec = KVSpec.of(spec)
        if isinstance(block_size, bool) or not isinstance(block_size, (int, np.integer)) or block_size < 1:
            raise ValueError(f"PagedKVCache: block_size={block_size!r} must be a positive int (tokens per block)")
        self.allocator = BlockAllocator(num_blocks)
        self.block_size, self.num_blocks = int(block_size), int(num_blocks)
        self.dtype = kv_dtype(dtype)
        s = self.spec
        shape = (s.n_layer, self.num_blocks, s.n_kv_head, self.block_size, s.head_dim)
        self.k = np.zeros(shape, self.dtype)
        self.v = np.zeros(shape, self.dtype)
        self.tables: dict = {}          # sequence id -> list of physical block ids
        self.lengths: dict = {}         # sequence id -> tokens stored
        self._segments: list = []       # (sequence id, first position, new tokens) of the scheduled model call

    # ---- sizes ----------------------------------------------------------------------------------------
    @property
    def block_bytes(self) -> int:
        """Keys + values of one block across all layers."""
        return self.spec.bytes_per_token(self.dtype) * self.block_size

    @property
    def nbytes(self) -> int:
        return self.k.nbytes + self.v.nbytes

    @property
    def free_blocks(self) -> int:
        return self.allocator.free_count

    def blocks_for(self, tokens: int) -> int:
        """Blocks that ``tokens`` tokens occupy: ceil(tokens / block_size)."""
        return -(-int(tokens) // self.block_size)

    # ---- sequences ------------------------------------------------------------------------------------
    def _known(self, seq) -> None:
        if seq not in self.tables:
            raise KeyError(f"sequence {seq!r} is not in the KV cache (add it first)")

    def add(self, seq) -> None:
        """A new, empty sequence."""
        if seq in self.tables:
            raise ValueError(f"sequence {seq!r} is already in the KV cache")
        self.tables[seq], self.lengths[seq] = [], 0

    def fork(self, parent, child) -> None:
        """``child`` starts as a copy of ``parent`` that shares all its blocks (no KV is copied)."""
        self._known(parent)
        if child in self.tables:
            raise ValueError(f"sequence {child!r} is already in the KV cache")
        for b in self.tables[parent]:
            self.allocator.share(b)
        self.tables[child], self.lengths[child] = list(self.tables[parent]), self.lengths[parent]

    def free(self, seq) -> None:
        """Drop a sequence: each of its blocks loses a reference; unshared ones return to the free list."""
        self._known(seq)
        for b in self.tables.pop(seq):
            self.allocator.release(b)
        del self.lengths[seq]

    def blocks_needed(self, seq, new_tokens: int) -> int:
        """Free blocks that appending ``new_tokens`` to ``seq`` would take (including a copy-on-write copy of
        a shared, partly filled last block)."""
        self._known(seq)
        n, table = self.lengths[seq], self.tables[seq]
        fresh = self.blocks_for(n + new_tokens) - len(table)
        cow = 1 if new_tokens > 0 and n % self.block_size and self.allocator.ref[table[-1]] > 1 else 0
        return fresh + cow

    def reserve(self, seq, new_tokens: int) -> None:
        """Make room for ``new_tokens`` more tokens of ``seq``: all blocks or none (raises OutOfBlocks)."""
        need = self.blocks_needed(seq, new_tokens)
        if need > self.allocator.free_count:
            raise OutOfBlocks(f"sequence {seq!r} needs {need} more KV blocks for {new_tokens} tokens; "
                              f"{self.allocator.free_count} of {self.num_blocks} are free", need,
                              self.allocator.free_count)
        table, n = self.tables[seq], self.lengths[seq]
        if new_tokens > 0 and n % self.block_size and self.allocator.ref[table[-1]] > 1:
            self._copy_on_write(seq)
        while len(table) < self.blocks_for(n + new_tokens):
            table.append(self.allocator.allocate())

    def _copy_on_write(self, seq) -> None:
        table = self.tables[seq]
        old, new = table[-1], self.allocator.allocate()
        self.k[:, new] = self.k[:, old]
        self.v[:, new] = self.v[:, old]
        self.allocator.release(old)
        table[-1] = new

    def capacity(self, seq) -> int:
        """Tokens ``seq`` can hold in the blocks it has."""
        return len(self.tables[seq]) * self.block_size

    # ---- swapping (preemption) ------------------------------------------------------------------------
    def swap_out(self, seq) -> SwappedSequence:
        """Copy ``seq``'s keys and values out to host memory and free its blocks."""
        self._known(seq)
        table = self.tables[seq]
        saved = SwappedSequence(self.lengths[seq], self.k[:, table].copy(), self.v[:, table].copy())
        self.free(seq)
        return saved

    def swap_in(self, seq, saved: SwappedSequence) -> None:
        """Bring a swapped-out sequence back into fresh blocks (raises OutOfBlocks, changing nothing)."""
        need = saved.k.shape[1]
        if need > self.allocator.free_count:
            raise OutOfBlocks(f"swapping {seq!r} back in needs {need} blocks; {self.allocator.free_count} are free",
                              need, self.allocator.free_count)
        self.add(seq)
        table = [self.allocator.allocate() for _ in range(need)]
        self.k[:, table], self.v[:, table] = saved.k, saved.v
        self.tables[seq], self.lengths[seq] = table, saved.length

    # ---- accounting -----------------------------------------------------------------------------------
    def block_fill(self) -> dict:
        """Physical block → tokens it holds (a shared block holds what its fullest sharer wrote)."""
        fill: dict = {}
        for seq, table in self.tables.items():
            n = self.lengths[seq]
            for i, b in enumerate(table):
                fill[b] = max(fill.get(b, 0), min(self.block_size, max(0, n - i * self.block_size)))
        return fill

    def usage(self) -> KVUsage:
        fill = self.block_fill()
        per_token = self.spec.bytes_per_token(self.dtype)
        used = self.allocator.used_count
        tokens = sum(fill.values())
        return KVUsage(used, self.num_blocks, tokens, used * self.block_bytes, tokens * per_token)

    def check_invariants(self) -> None:
        """Raise AssertionError if the books disagree: every block in a table is in use with a reference per
        table entry, no free block is referenced, free + used = total, and each table covers its length."""
        refs = np.zeros(self.num_blocks, np.int64)
        for seq, table in self.tables.items():
            for b in table:
                refs[b] += 1
            assert len(table) >= self.blocks_for(self.lengths[seq]), f"sequence {seq!r}: table shorter than its tokens"
        assert np.array_equal(refs, self.allocator.ref), "reference counts differ from the block tables"
        free = self.allocator._free
        assert len(set(free)) == len(free), "a block is on the free list twice"
        assert all(refs[b] == 0 for b in free), "a free block is still in a block table"
        assert len(free) + int((refs > 0).sum()) == self.num_blocks, "blocks lost: free + used != total"

    # ---- the model-facing protocol (see aisys.models.gpt) ---------------------------------------------
    def schedule(self, segments) -> None:
        """Declare the next model call: ``[(seq, new_tokens), ...]`` in the order their tokens are
        concatenated. Each sequence must already have room (``reserve``)."""
        plan, start = [], 0
        for seq, n in segments:
            self._known(seq)
            if self.lengths[seq] + n > self.capacity(seq):
                raise ValueError(f"sequence {seq!r} has room for {self.capacity(seq) - self.lengths[seq]} more "
                                 f"tokens, not {n}: reserve() first")
            plan.append((seq, self.lengths[seq], int(n), start))
            start += int(n)
        self._segments = plan

    def begin(self, batch: int, new_tokens: int) -> np.ndarray:
        total = sum(n for _, _, n, _ in self._segments)
        if batch != 1 or new_tokens != total:
            raise ValueError(f"PagedKVCache runs one flat batch of the scheduled tokens: expected ids of shape "
                             f"(1, {total}), got ({batch}, {new_tokens})")
        for seq, first, n, _ in self._segments:
            self.lengths[seq] = first + n
        if not self._segments:
            return np.zeros(0, np.int64)
        return np.concatenate([np.arange(first, first + n, dtype=np.int64) for _, first, n, _ in self._segments])

    def attend(self, layer: int, q, k, v) -> Tensor:
        """Write the new keys and values into their blocks, then attend: every one-token (decode) segment in
        one ``paged_attention`` call reading through the block tables; a longer (prefill) segment gathers its
        blocks and runs the tiled kernel."""
        from ..kernels.attention import attention, paged_attention
        qd, kd, vd = (x._data if isinstance(x, Tensor) else np.asarray(x) for x in (q, k, v))
        bs, segs = self.block_size, self._segments
        if not segs:
            return Tensor._wrap(np.zeros(qd.shape, np.float32))
        pos = np.concatenate([np.arange(first, first + n) for _, first, n, _ in segs])
        blocks = np.concatenate([np.asarray(self.tables[seq], np.int64)[np.arange(first, first + n) // bs]
                                 for seq, first, n, _ in segs])
        self.k[layer, blocks, :, pos % bs, :] = kd[0].transpose(1, 0, 2)
        self.v[layer, blocks, :, pos % bs, :] = vd[0].transpose(1, 0, 2)
        out = np.empty(qd.shape, np.float32)
        decode = [sg for sg in segs if sg[2] == 1]
        if decode:
            rows = np.array([off for _, _, _, off in decode])
            width = max(len(self.tables[seq]) for seq, _, _, _ in decode)
            tables = np.zeros((len(decode), width), np.int64)
            for i, (seq, _, _, _) in enumerate(decode):
                tables[i, :len(self.tables[seq])] = self.tables[seq]
            lengths = np.array([first + 1 for _, first, _, _ in decode])
            res = paged_attention(qd[0][:, rows].transpose(1, 0, 2), self.k[layer], self.v[layer], tables, lengths)
            out[0][:, rows] = res.transpose(1, 0, 2)          # (seqs, heads, d) back to (heads, seqs, d)
        for seq, first, n, off in segs:
            if n == 1:
                continue
            total = first + n
            used = np.asarray(self.tables[seq][:self.blocks_for(total)], np.int64)
            keys = self.k[layer, used].transpose(1, 0, 2, 3).reshape(self.spec.n_kv_head, -1, self.spec.head_dim)
            vals = self.v[layer, used].transpose(1, 0, 2, 3).reshape(self.spec.n_kv_head, -1, self.spec.head_dim)
            out[0, :, off:off + n] = attention(qd[:, :, off:off + n], keys[None, :, :total], vals[None, :, :total],
                                               causal=True)[0]
        return Tensor._wrap(out)

    def __repr__(self) -> str:
        u = self.usage()
        return (f"PagedKVCache({self.num_blocks} blocks x {self.block_size} tokens, {len(self.tables)} sequences, "
                f"{u.blocks_used} blocks used, {u.tokens} tokens, waste {u.waste:.1%})")
