# The cubic as a Linear layer over (x, x^2, x^3): nn.Sequential, a loss module, an optimizer, zero_grad/step,
# then the same with a model class and SGD with momentum, and a learning-rate schedule.
import math

import numpy as np
import torch
from torch import nn


class Cubic(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.zeros(()))
        self.b = nn.Parameter(torch.zeros(()))
        self.c = nn.Parameter(torch.zeros(()))
        self.d = nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return self.a + self.b * x + self.c * x ** 2 + self.d * x ** 3

    def string(self):
        return f"y = {self.a.item():.3f} + {self.b.item():.3f} x + {self.c.item():.3f} x^2 + {self.d.item():.3f} x^3"


def main():
    x = torch.linspace(-math.pi, math.pi, 2000)
    y = torch.sin(x)
    p = torch.tensor([1, 2, 3])
    xx = x.unsqueeze(-1).pow(p)
    model = torch.nn.Sequential(torch.nn.Linear(3, 1), torch.nn.Flatten(0, 1))
    rng = np.random.default_rng(2)
    with torch.no_grad():
        model[0].weight.copy_(torch.from_numpy(rng.uniform(-0.5, 0.5, (1, 3)).astype(np.float32)))
        model[0].bias.fill_(0.1)
    loss_fn = torch.nn.MSELoss(reduction="sum")
    optimizer = torch.optim.RMSprop(model.parameters(), lr=1e-3)
    first = []
    for t in range(600):
        y_pred = model(xx)
        loss = loss_fn(y_pred, y)
        if t % 200 == 199:
            first.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    linear_layer = model[0]
    print(f"y = {linear_layer.bias.item():.3f} + {linear_layer.weight[:, 0].item():.3f} x + ...")

    cubic = Cubic()
    criterion = torch.nn.MSELoss(reduction="sum")
    optimizer = torch.optim.SGD(cubic.parameters(), lr=1e-6, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=100, gamma=0.5)
    second = []
    for t in range(400):
        loss = criterion(cubic(x), y)
        if t % 100 == 99:
            second.append(loss.item())
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()
    print(cubic.string(), scheduler.get_last_lr())
    return {"rmsprop": first, "sgd": second, "weights": model[0].weight.detach().numpy().tolist(),
            "lr": scheduler.get_last_lr()}
