"""``aisys.nn.utils``: gradient clipping (torch.nn.utils names)."""
from __future__ import annotations

from ..tensor import Tensor, no_grad

__all__ = ["clip_grad_norm_"]


def clip_grad_norm_(parameters, max_norm: float, eps: float = 1e-6) -> Tensor:
    """Scale all gradients by min(1, max_norm / ‖g‖) where ‖g‖ is the L2 norm of all of them together
    (Pascanu et al. 2013). Written with ops and no Python branch on the norm, so a traced training step
    keeps the clipping for every value. Returns the norm before clipping."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    params = [p for p in parameters if p.grad is not None]
    if max_norm <= 0:
        raise ValueError(f"clip_grad_norm_: max_norm={max_norm} must be > 0")
    if not params:
        return Tensor(0.0)
    with no_grad():
        sq = None
        for p in params:
            s = (p.grad * p.grad).sum()
            sq = s if sq is None else sq + s
        total = sq.sqrt()
        coef = (max_norm / (total + eps)).clamp(max=1.0)
        for p in params:
            p.grad = p.grad * coef
    return total
