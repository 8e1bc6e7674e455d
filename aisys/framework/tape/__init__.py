"""An explicit tape (Wengert list) for learning autodiff, as in ZOMI's AISystem course (05Framework/02AutoDiff).

aisys's own autograd keeps its tape implicit: every tensor remembers ``_ctx = (op, inputs, attrs)``. This
module writes the same tape out as a list of entries, numbered the way the lecture numbers them, so it can
be printed, swept by hand, and watched (``widgets.autodiff.TapePlayer``). For f = ln x₁ + x₁x₂ − sin x₂::

    v-1 = input x1       = 2
    v0  = input x2       = 5
    v1  = log(v-1)       = 0.693147
    v2  = mul(v-1, v0)   = 10
    v3  = sin(v0)        = -0.958924
    v4  = add(v1, v2)    = 10.6931
    v5  = sub(v4, v3)    = 11.6521     <- output

*Reverse mode* sweeps the list backwards once per output, turning each entry's adjoint v̄ᵢ = ∂y/∂vᵢ into
contributions to its inputs' adjoints with the op's vector-Jacobian product (:func:`local_vjp`). *Forward
mode* sweeps it forwards once per input direction, carrying a dual number ⟨vᵢ, v̇ᵢ⟩ per entry
(:func:`dual_apply`, :func:`local_jvp`). A Jacobian of ℝⁿ→ℝᵐ therefore costs n forward sweeps or m reverse
sweeps (:func:`jacobian`) — why training (m = 1 loss, n = millions of weights) uses reverse mode.

The package, one concept per module: ``record`` (the tape and each entry's local rules), ``sweeps``
(reverse and forward sweeps, Jacobians), ``dual`` (dual numbers, whose rules are the registry's JVPs),
``examples`` (the lecture's function, random expressions, the cube op). The functions are also the
references of lab 02's exercises: :func:`reverse_grad` (2.1),
:func:`dual_apply` (2.2) and :func:`cube_vjp` (2.3, plugged into the registry with :func:`temporary_op`).
"""
from .record import Entry, LEAF_OPS, Tape, format_value, local_jvp, local_vjp
from .sweeps import ForwardStep, ReverseStep, SweepCount, forward_sweep, jacobian, reverse_grad, reverse_sweep
from .dual import DUAL_OPS, Dual, dual_apply, jvp_dual
from .examples import (COURSE_GRAD, COURSE_POINT, COURSE_VALUE, central_differences, course_f, cube_vjp,
                       cube_with_vjp, random_expression, temporary_op)

__all__ = ["Entry", "Tape", "format_value", "local_vjp", "local_jvp", "reverse_grad", "ReverseStep", "reverse_sweep",
           "Dual", "DUAL_OPS", "dual_apply", "jvp_dual", "ForwardStep", "forward_sweep", "SweepCount", "jacobian",
           "course_f", "COURSE_POINT", "COURSE_VALUE", "COURSE_GRAD", "random_expression", "central_differences",
           "cube_vjp", "temporary_op", "cube_with_vjp"]
