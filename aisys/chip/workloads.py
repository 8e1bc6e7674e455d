"""Reference workloads as layer records: ResNet-18 and the six apps of the TPU v1 paper (typed from the
published architectures: aisys has no ResNet model to trace; LeNet, which it has, is traced from
``aisys.models.LeNet`` by ``aisys.models.lenet_layers``).

``tpu_v1_apps()`` gives, per app of Jouppi et al. (ISCA 2017, Table 1), the published operational
intensity (TPU ops — multiply-accumulates — per weight byte; equal to the batch size for the MLPs
and LSTMs, where each weight is used once per example) together with a representative layer built
from the same batch size, so the simulator can recompute where each app sits on the roofline.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..framework.shapes import conv_output_size
from .layers import Conv, Gemm


def resnet18_layers(batch: int = 1, image: int = 224) -> list:
    """Every conv and the FC of ResNet-18 (He et al., 2016) on ``image`` x ``image`` RGB inputs:
    20 convolutions (incl. the three 1x1 stride-2 shortcuts) and one 512 -> 1000 GEMM."""
    layers = [Conv("conv1", image, image, 3, 64, 7, stride=2, padding=3, batch=batch)]
    size = conv_output_size(image, 7, 2, 3)
    size = conv_output_size(size, 3, 2, 1)          # 3x3 stride-2 max pool
    cin = 64
    for stage, cout in enumerate((64, 128, 256, 512), start=1):
        for block in range(2):
            stride = 2 if (stage > 1 and block == 0) else 1
            out = conv_output_size(size, 3, stride, 1)
            layers.append(Conv(f"layer{stage}.{block}.conv1", size, size, cin, cout, 3, stride=stride, padding=1,
                               batch=batch))
            layers.append(Conv(f"layer{stage}.{block}.conv2", out, out, cout, cout, 3, padding=1, batch=batch))
            if stride == 2:
                layers.append(Conv(f"layer{stage}.{block}.downsample", size, size, cin, cout, 1, stride=2,
                                   batch=batch))
            size, cin = out, cout
    layers.append(Gemm("fc", batch, 1000, 512))
    return layers


@dataclass(frozen=True)
class TpuApp:
    """One of the TPU v1 paper's six production apps (Table 1)."""
    name: str
    kind: str                   # MLP / LSTM / CNN
    weights: int                # parameters
    batch: int
    macs_per_weight_byte: int   # the paper's "TPU Ops / Weight Byte"
    layer: object               # a representative layer with the app's reuse


def tpu_v1_apps() -> list:
    """The six apps of Jouppi et al. 2017 (Table 1) with their published ops per weight byte.

    Representative layers: the MLPs and LSTMs are matrix-vector products over a batch (each
    weight used ``batch`` times); the CNNs are convolutions, whose weights are reused at every
    output pixel as well. The layer sizes are our own choice; the intensities are the paper's.
    """
    return [
        TpuApp("MLP0", "MLP", 20_000_000, 200, 200, Gemm("MLP0 fc", 200, 2048, 2048)),
        TpuApp("MLP1", "MLP", 5_000_000, 168, 168, Gemm("MLP1 fc", 168, 1024, 1024)),
        TpuApp("LSTM0", "LSTM", 52_000_000, 64, 64, Gemm("LSTM0 gates", 64, 4 * 1024, 2 * 1024)),
        TpuApp("LSTM1", "LSTM", 34_000_000, 96, 96, Gemm("LSTM1 gates", 96, 4 * 768, 2 * 768)),
        # a conv reuses each weight at every output pixel of every image: batch x OH x OW MAC per weight byte;
        # 8 x 19 x 19 = 2888 is CNN0's published figure, 32 x 8 x 8 = 2048 is near CNN1's 1750
        TpuApp("CNN0", "CNN", 8_000_000, 8, 2888, Conv("CNN0 conv", 19, 19, 128, 128, 3, padding=1, batch=8)),
        TpuApp("CNN1", "CNN", 100_000_000, 32, 1750, Conv("CNN1 conv", 8, 8, 256, 256, 3, padding=1, batch=32)),
    ]
