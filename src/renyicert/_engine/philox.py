"""Philox-4x32-10 in torch integer ops: the same numbers as Triton's ``tl.randint4x``.

Philox (Salmon et al. 2011) is counter-based: the draw at counter ``c`` under
key ``k`` is a pure function of ``(k, c)``.  Written with int64 tensors holding
32-bit values, it runs eagerly anywhere and ``torch.compile`` fuses it into one
vectorised loop; because it reproduces ``tl.randint4x(seed, offset)`` bit for
bit, the CPU and the CUDA (Triton) samplers draw the very same noise.

The 32x32-bit products are formed in int64: the product of two values below
``2**32`` may pass ``2**63`` and wrap, but wrapping keeps the low 64 bits, and
the high word is recovered as ``(p >> 32) & 0xFFFFFFFF`` either way.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MASK32", "philox4x32", "randint4x"]

MASK32 = 0xFFFFFFFF
_ROUND_A = 0xD2511F53
_ROUND_B = 0xCD9E8D57
_KEY_A = 0x9E3779B9
_KEY_B = 0xBB67AE85


def philox4x32(c0: Any, c1: Any, c2: Any, c3: Any, k0: Any, k1: Any, rounds: int = 10) -> tuple[Any, Any, Any, Any]:
    """``rounds`` rounds of Philox-4x32 on int64 tensors holding uint32 values (as ``triton.language.random.philox_impl``)."""
    for _ in range(rounds):
        product_a = c0 * _ROUND_A
        product_b = c2 * _ROUND_B
        c0, c1, c2, c3 = (
            ((product_b >> 32) & MASK32) ^ c1 ^ k0,
            product_b & MASK32,
            ((product_a >> 32) & MASK32) ^ c3 ^ k1,
            product_a & MASK32,
        )
        k0 = (k0 + _KEY_A) & MASK32
        k1 = (k1 + _KEY_B) & MASK32
    return c0, c1, c2, c3


def randint4x(seed: Any, offset: Any, rounds: int = 10) -> tuple[Any, Any, Any, Any]:
    """Four uint32 draws (as int64 tensors) per int64 ``offset`` under the int64 ``seed``, as ``tl.randint4x``.

    Examples
    --------
    >>> import torch
    >>> from renyicert._engine.philox import randint4x
    >>> first = randint4x(torch.tensor(42), torch.arange(3))
    >>> [int(v) for v in first[0]] == [int(v) for v in randint4x(torch.tensor(42), torch.arange(3))[0]]
    True
    """
    zero = offset * 0
    return philox4x32(
        offset & MASK32, (offset >> 32) & MASK32, zero, zero, seed & MASK32, (seed >> 32) & MASK32, rounds
    )
