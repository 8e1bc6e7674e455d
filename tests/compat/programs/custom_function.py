# A custom autograd.Function (the Legendre polynomial P3 = (5x^3 - 3x)/2 with its own backward), used in a fit,
# and a look at the backward graph through grad_fn.next_functions.
import math

import torch


class LegendreP3(torch.autograd.Function):
    @staticmethod
    def forward(ctx, input):
        ctx.save_for_backward(input)
        return 0.5 * (5 * input ** 3 - 3 * input)

    @staticmethod
    def backward(ctx, grad_output):
        (input,) = ctx.saved_tensors
        return grad_output * 1.5 * (5 * input ** 2 - 1)


def main():
    x = torch.linspace(-math.pi, math.pi, 2000, dtype=torch.float64)
    y = torch.sin(x)
    a, b, c, d = (torch.full((), v, dtype=torch.float64, requires_grad=True) for v in (0.0, -1.0, 0.0, 0.3))
    lr = 5e-6
    losses = []
    for t in range(1000):
        y_pred = a + b * LegendreP3.apply(c + d * x)
        loss = (y_pred - y).pow(2).sum()
        if t % 250 == 249:
            losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            for p in (a, b, c, d):
                p -= lr * p.grad
                p.grad = None
    loss = (a + b * LegendreP3.apply(c + d * x) - y).pow(2).sum()        # a fresh graph to look at
    names = []
    node = loss.grad_fn
    while node is not None and node.next_functions:
        names.append(node.name())
        node = node.next_functions[0][0]
    check = torch.autograd.gradcheck(LegendreP3.apply, (torch.randn(5, dtype=torch.float64, requires_grad=True),))
    print(f"Result: y = {a.item():.4f} + {b.item():.4f} * P3({c.item():.4f} + {d.item():.4f} x)", names)
    return {"losses": losses, "params": [a.item(), b.item(), c.item(), d.item()], "gradcheck": bool(check),
            "graph": names[:3]}
