# The same cubic fit with autograd: tensors that require grad, backward(), and updates under no_grad.
import math

import numpy as np
import torch


def main():
    x = torch.linspace(-math.pi, math.pi, 2000)
    y = torch.sin(x)
    rng = np.random.default_rng(1)
    a, b, c, d = (torch.tensor(float(v), requires_grad=True) for v in rng.standard_normal(4))
    learning_rate = 1e-6
    losses = []
    for t in range(2000):
        y_pred = a + b * x + c * x ** 2 + d * x ** 3
        loss = (y_pred - y).pow(2).sum()
        if t % 500 == 499:
            losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            a -= learning_rate * a.grad
            b -= learning_rate * b.grad
            c -= learning_rate * c.grad
            d -= learning_rate * d.grad
            a.grad = None
            b.grad = None
            c.grad = None
            d.grad = None
    print(f"Result: y = {a.item():.4f} + {b.item():.4f} x + {c.item():.4f} x^2 + {d.item():.4f} x^3")
    return {"losses": losses, "coefficients": [a.item(), b.item(), c.item(), d.item()]}
