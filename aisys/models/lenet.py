"""LeNet: the convolutional network of LeCun et al. (1998), "Gradient-based learning applied to document
recognition": conv → pool → conv → pool → three fully connected layers.

LeNet-5 proper has 5×5 kernels on 32×32 inputs (28×28 MNIST digits padded by 2), 6 and 16 feature maps,
and 120-84-10 fully connected units. ``image_size=8`` keeps the shape of the network but uses 3×3
kernels with padding, so it also runs on the native 8×8 UCI digits.
"""
from __future__ import annotations

from ..framework import nn
from ..framework.shapes import conv_output_size
from .mlp import activation_layer

__all__ = ["LeNet"]


class LeNet(nn.Module):
    """``LeNet(in_channels=1, num_classes=10, image_size=28)``; layer names conv1, conv2, fc1, fc2, fc3.

    ``pool='max'`` and ``activation='relu'`` are the modern defaults; ``pool='avg', activation='tanh'`` is
    closer to the 1998 network (whose subsampling layers also had trainable scales).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28, pool: str = "max",
                 activation: str = "relu", channels: tuple[int, int] = (6, 16), hidden: tuple[int, int] = (120, 84)):
        super().__init__()
        if pool not in ("max", "avg"):
            raise ValueError(f"LeNet: pool={pool!r} must be 'max' or 'avg'")
        if image_size < 8:
            raise ValueError(f"LeNet: image_size={image_size} is too small; it needs at least 8×8 inputs")
        k = 5 if image_size >= 16 else 3
        p1 = k // 2 if image_size < 32 else 0          # 28×28 -> padded like MNIST-into-32×32; 32×32 unpadded
        p2 = 0 if k == 5 else 1
        s = conv_output_size(image_size, k, padding=p1, op="LeNet") // 2
        s = conv_output_size(s, k, padding=p2, op="LeNet") // 2
        if s < 1:
            raise ValueError(f"LeNet: image_size={image_size} leaves no pixels after two conv+pool stages")
        c1, c2 = channels
        Pool = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
        self.image_size = image_size
        self.conv1 = nn.Conv2d(in_channels, c1, k, padding=p1)
        self.act1 = activation_layer(activation)
        self.pool1 = Pool(2)
        self.conv2 = nn.Conv2d(c1, c2, k, padding=p2)
        self.act2 = activation_layer(activation)
        self.pool2 = Pool(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(c2 * s * s, hidden[0])
        self.act3 = activation_layer(activation)
        self.fc2 = nn.Linear(hidden[0], hidden[1])
        self.act4 = activation_layer(activation)
        self.fc3 = nn.Linear(hidden[1], num_classes)

    def features(self, x):
        """The two conv+pool stages: (N, C, H, W) -> (N, c2, s, s)."""
        x = self.pool1(self.act1(self.conv1(x)))
        return self.pool2(self.act2(self.conv2(x)))

    def forward(self, x):
        x = self.flatten(self.features(x))
        x = self.act3(self.fc1(x))
        x = self.act4(self.fc2(x))
        return self.fc3(x)
