"""The checks of a plugin's own noise on its way into a batch: ``sample()``'s tensors, ``_transform_uniform``, the first batch.

A plugin's sampler is code renyicert did not write; before its noise reaches a
model batch it must be a finite tensor of the buffer's shape, dtype and device
(:func:`check_noise`), an elementwise transform of uniforms must be elementwise
and finite at both ends of ``(0, 1]`` (:func:`check_transform`), and the first
batch it fills must hold no NaN or inf (:func:`checking_first_batch`).
"""

from __future__ import annotations

from typing import Any

from ..mechanism import Mechanism

__all__ = ["check_noise", "check_transform", "checking_first_batch"]


def check_noise(noise: Any, buffer: Any, mechanism: Mechanism) -> None:
    """Refuse noise from a mechanism's ``sample()`` that is not a finite tensor of the buffer's shape, dtype and device.

    ``buffer.add_`` would broadcast a ``(1, *shape)`` or 0-d draw (every copy of a
    batch the same noise: inflated radii) and cast an integer one.
    """
    import torch

    where = f"{mechanism.label}.sample({tuple(buffer.shape)}, dtype={buffer.dtype}) returned"
    if not isinstance(noise, torch.Tensor):
        raise TypeError(f"{where} {type(noise).__name__}, expected a torch.Tensor")
    if tuple(noise.shape) != tuple(buffer.shape):
        raise ValueError(
            f"{where} shape {tuple(noise.shape)}, expected {tuple(buffer.shape)} (one independent draw per copy)"
        )
    if noise.dtype != buffer.dtype or noise.device != buffer.device:
        raise ValueError(f"{where} {noise.dtype} on {noise.device}, expected {buffer.dtype} on {buffer.device}")
    if not bool(torch.isfinite(noise).all()):
        raise ValueError(
            f"{where} non-finite noise ({int((~torch.isfinite(noise)).sum())} of {noise.numel()} values are NaN or inf)"
        )


def checking_first_batch(fill: Any, buffer: Any, mechanism: Mechanism, hook: str) -> Any:
    """``fill``, refusing non-finite noisy copies in its first batch (the inputs are finite, so the plugin's ``hook`` made them)."""
    import torch

    first = [True]

    def fill_checked(row_input: Any, row_sample: Any) -> None:
        fill(row_input, row_sample)
        if first[0]:
            first[0] = False
            bad = ~torch.isfinite(buffer)
            if bool(bad.any()):
                raise ValueError(
                    f"{mechanism.label}.{hook} gave non-finite noise ({int(bad.sum())} of {buffer.numel()} values in the first batch)"
                )

    return fill_checked


def check_transform(mechanism: Any) -> None:
    """Refuse a ``_transform_uniform`` that does not map float32 uniforms in ``(0, 1]`` elementwise to finite float32 noise.

    Probed at the extremes the fused sampler produces (``2^-33`` and ``1``) and in between.
    """
    import torch

    u = torch.tensor([[2.0**-33, 1e-7, 0.25, 0.5, 0.75, 1.0 - 2.0**-24, 1.0]], dtype=torch.float32)
    where = f"{getattr(mechanism, 'label', type(mechanism).__name__)}._transform_uniform(u)"
    out = mechanism._eval_transform_uniform(u)
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"{where} returned {type(out).__name__}, expected a torch.Tensor")
    if tuple(out.shape) != tuple(u.shape) or not out.dtype.is_floating_point:
        raise ValueError(
            f"{where} returned shape {tuple(out.shape)} {out.dtype} for u of shape {tuple(u.shape)} float32; it must work elementwise"
        )
    if not bool(torch.isfinite(out).all()):
        raise ValueError(
            f"{where} is not finite at u = {u[~torch.isfinite(out)].tolist()} (u is in (0, 1], both ends included)"
        )
