"""Jobs and the model classes they train.

A :class:`Job` is what a user submits: a tenant, a submit time, a gang of GPUs that must start
together, a model class and a *duration* — the seconds it runs when its gang is packed on the
cluster's reference GPU type. Everything else about its speed (another GPU type, a worse placement,
an elastic resize) is derived from the model class by the cost model (``aisys.cluster.cost``).

Model classes carry what the cost model needs: parameters (the all-reduce moves their fp32 gradients,
4 bytes each, as PyTorch DDP does by default), training FLOPs per iteration per GPU, arithmetic
intensity (FLOPs per byte of device-memory traffic: the roofline's x axis) and device memory per GPU.

==========  ===========  ===============================  =========  ==========================================
model       parameters   FLOPs / iteration / GPU          intensity  source of parameters and FLOPs
==========  ===========  ===============================  =========  ==========================================
resnet50    25.6 M       3·2·3.8 G/image x 64 images      120        He et al., CVPR 2016, Table 1 (3.8 GFLOPs)
vgg16       138 M        3·2·15.5 G/image x 32 images     200        Simonyan & Zisserman, ICLR 2015 (15.5 G MACs)
bert_base   110 M        6·params x 32·128 tokens         150        Devlin et al., NAACL 2019; 6·N·tokens rule
bert_large  340 M        6·params x 32·128 tokens         150        Devlin et al., NAACL 2019
lstm_lm     66 M         6·params x 20·35 tokens          10         Zaremba et al., 2014 ("large" PTB LSTM)
gpt_1p3b    1.3 B        6·params x 8·2048 tokens         250        Brown et al., 2020 (GPT-3 XL size)
==========  ===========  ===============================  =========  ==========================================

Training FLOPs are 3x the forward pass (backward ≈ 2x forward), 2 FLOPs per multiply-accumulate; the
6·N·tokens rule is Kaplan et al. (2020). Intensities and memory needs are stated assumptions (an LSTM
at small batch is memory-bound, a large transformer is not); ``gpt_1p3b`` needs 36 GB per GPU (16 bytes
per parameter for mixed-precision Adam, Rajbhandari et al. 2020, plus activations), so it fits an A100
but not a 32 GB V100 — the job that "fits only one GPU type".
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["ModelClass", "MODELS", "Job"]


@dataclass(frozen=True)
class ModelClass:
    name: str
    params: float
    step_flops: float
    intensity: float
    mem_gb: float
    source: str = ""

    @property
    def grad_bytes(self) -> float:
        """Bytes one data-parallel all-reduce moves per iteration (fp32 gradients)."""
        return 4.0 * self.params

    @property
    def checkpoint_bytes(self) -> float:
        """Bytes a checkpoint writes: fp32 weights and Adam's two moments, 12 per parameter."""
        return 12.0 * self.params


MODELS: dict[str, ModelClass] = {m.name: m for m in [
    ModelClass("resnet50", 25.6e6, 3 * 2 * 3.8e9 * 64, 120.0, 12.0, "He et al., CVPR 2016, Table 1"),
    ModelClass("vgg16", 138e6, 3 * 2 * 15.5e9 * 32, 200.0, 14.0, "Simonyan & Zisserman, ICLR 2015"),
    ModelClass("bert_base", 110e6, 6 * 110e6 * 32 * 128, 150.0, 12.0, "Devlin et al., NAACL 2019"),
    ModelClass("bert_large", 340e6, 6 * 340e6 * 32 * 128, 150.0, 24.0, "Devlin et al., NAACL 2019"),
    ModelClass("lstm_lm", 66e6, 6 * 66e6 * 20 * 35, 10.0, 4.0, "Zaremba et al., 2014"),
    ModelClass("gpt_1p3b", 1.3e9, 6 * 1.3e9 * 8 * 2048, 250.0, 36.0, "Brown et al., 2020 (GPT-3 XL)"),
]}


def _finite(value, what: str, where: str, *, minimum: float | None = None, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{where}: {what} must be a finite number, got {value!r}")
    if minimum is not None and (value <= minimum if strict else value < minimum):
        rel = ">" if strict else ">="
        raise ValueError(f"{where}: {what} must be {rel} {minimum:g}, got {value!r}")
    return float(value)


def _count(value, what: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer() or value < 1:
        raise ValueError(f"{where}: {what} must be a positive whole number, got {value!r}")
    return int(value)


@dataclass(frozen=True)
class Job:
    """A training job (a gang of ``num_gpus`` GPUs that start and stop together).

    ``duration``: seconds on the cluster's reference GPU type with the gang packed; ``estimate``: what the
    user told the scheduler (EASY backfilling reads it; default: the duration, a perfect estimate);
    ``gpu_types``: the GPU types the job accepts (default: every type with enough memory for its model);
    ``max_gpus``: an elastic job may grow into idle GPUs up to this many and give them back when others
    wait; ``cpus_per_gpu`` / ``mem_gb_per_gpu``: host resources per GPU (DRF shares them).
    """
    id: int
    submit_time: float
    num_gpus: int
    duration: float
    tenant: str = "default"
    model: str = "resnet50"
    gpu_types: tuple[str, ...] | None = None
    max_gpus: int | None = None
    cpus_per_gpu: float = 4.0
    mem_gb_per_gpu: float = 24.0
    estimate: float | None = None

    def __post_init__(self):
        where = f"Job(id={self.id!r})"
        if isinstance(self.id, bool) or not isinstance(self.id, int):
            raise ValueError(f"{where}: id must be an int (it names the job in reports and traces)")
        set_ = object.__setattr__
        set_(self, "submit_time", _finite(self.submit_time, "submit_time (seconds)", where, minimum=0.0))
        set_(self, "num_gpus", _count(self.num_gpus, "num_gpus", where))
        set_(self, "duration", _finite(self.duration, "duration (seconds)", where, minimum=0.0, strict=True))
        if not isinstance(self.tenant, str) or not self.tenant:
            raise ValueError(f"{where}: tenant must be a non-empty string, got {self.tenant!r}")
        if self.model not in MODELS:
            raise ValueError(f"{where}: unknown model {self.model!r}; use one of {', '.join(MODELS)}")
        if self.gpu_types is not None:
            types = (self.gpu_types,) if isinstance(self.gpu_types, str) else tuple(self.gpu_types)
            if not types or not all(isinstance(t, str) and t for t in types):
                raise ValueError(f"{where}: gpu_types must name at least one GPU type, e.g. ('A100',); "
                                 f"got {self.gpu_types!r}")
            set_(self, "gpu_types", types)
        if self.max_gpus is not None:
            set_(self, "max_gpus", _count(self.max_gpus, "max_gpus", where))
            if self.max_gpus < self.num_gpus:
                raise ValueError(f"{where}: max_gpus {self.max_gpus} is below num_gpus {self.num_gpus}; an "
                                 f"elastic job grows from its requested gang up to max_gpus")
        set_(self, "cpus_per_gpu", _finite(self.cpus_per_gpu, "cpus_per_gpu", where, minimum=0.0))
        set_(self, "mem_gb_per_gpu", _finite(self.mem_gb_per_gpu, "mem_gb_per_gpu", where, minimum=0.0))
        if self.estimate is not None:
            set_(self, "estimate", _finite(self.estimate, "estimate (seconds)", where, minimum=0.0, strict=True))

    @property
    def model_class(self) -> ModelClass:
        return MODELS[self.model]

    @property
    def runtime_estimate(self) -> float:
        return self.duration if self.estimate is None else self.estimate

    @property
    def elastic(self) -> bool:
        return self.max_gpus is not None and self.max_gpus > self.num_gpus

    @property
    def gpu_seconds(self) -> float:
        """The work the job asks for, in reference GPU-seconds."""
        return self.num_gpus * self.duration
