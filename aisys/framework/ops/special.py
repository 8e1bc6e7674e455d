"""The special functions as registry ops: ``erf`` (its numpy reference: :mod:`aisys.framework.erf`)."""
from __future__ import annotations

import math

from .. import scalar as S
from ..erf import erf_np
from ..registry import FusionKind as K, defop, vector
from ..tensor import apply, as_tensor
from ._common import elementwise_cost, same_spec

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)


def _erf_vjp(g, out, x):
    return (g * (-(x * x)).exp() * _TWO_OVER_SQRT_PI,)


defop("erf", infer=same_spec("erf", float_only=True), ref=erf_np, fusion=K.ELEMENTWISE, cost=elementwise_cost(20),
      scalar=S.erf, chip=vector("erf"),
      vjp=_erf_vjp, jvp=lambda t, out, x: _erf_vjp(t[0], out, x)[0], saved=(0,), torch_name="torch.erf",
      doc="The error function (2/√π)∫₀ˣ exp(−t²) dt: Cody's rational approximations, within 4 ulp in float64. "
          "Its derivative is (2/√π)·exp(−x²).")


def erf(x):
    return apply("erf", as_tensor(x))
