"""aisys.chip — a simulated AI accelerator (AI 芯片), the lowest layer of the stack.

    import aisys.chip as chip
    chip.systolic_gemm(100, 37, 19, rows=32, cols=32, dataflow="os")      # closed form, SCALE-Sim exact
    chip.run_systolic(A, B, rows=3, cols=3)                               # cycle-level array (numba)
    res = chip.simulate_layers(aisys.models.lenet_layers(), "davinci")    # tiles, DMA, stalls, trace
    res.summary(); res.trace().save("lenet.json")                         # open in ui.perfetto.dev
    chip.layer_roofline(layer, "tpu_v1"); chip.energy_breakdown(res)

Pieces: ``config`` (presets), ``systolic`` (analytic model), ``cube`` (block MAC), ``functional``
(cycle-level array), ``vector`` (vector/scalar costs), ``tiling`` (GEMM tiles, buffer capacity),
``layers`` (layer records), ``program`` (tile instructions), ``lowering`` (layers -> tile programs),
``from_graph`` (graphs -> layers, as the op registry says), ``eventsim`` (event-driven run, bandwidth),
``roofline``, ``energy``, ``workloads`` (ResNet-18, the TPU v1 apps; LeNet traced from its model is
``aisys.models.lenet_layers``), ``comparison`` (several graphs side by side: what int8 and pruning buy).
Importing this package never loads numba.
"""
from .config import (ChipConfig, MatrixUnit, VectorUnit, Buffer, Dram, Route, PRESETS, preset)
from .systolic import (DATAFLOW_NAMES, MODES, MatrixReport, SystolicReport, systolic_gemm, systolic_conv, os_compute_cycles,
                       elapsed_cycles, fold_geometry, conv_gemm_dims, conv_output_size, scalesim_conv_gemm_dims,
                       compare_modes)
from .cube import cube_gemm, mma_count, matrix_gemm
from .functional import IDLE, LOAD, MAC, PASS, SystolicRun, run_systolic
from .vector import (VectorCost, elementwise_cost, pool_cost, softmax_cost, layernorm_cost, scalar_cycles)
from .tiling import CapacityError, TilePlan, plan_gemm_tiles
from .layers import Gemm, Conv, Elementwise, Pool, Softmax, LayerNorm
from .program import Instruction, Program
from .eventsim import ProgramResult, UnitStats, simulate, bandwidth_demand, bandwidth_for_zero_stalls
from .lowering import lower_layers, simulate_layer, simulate_layers
from .from_graph import graph_to_layers, lower_graph
from .estimate import AnalyticEstimate, SimulationTooLarge, count_instructions, estimate_layers
from .roofline import (RooflinePoint, roofline_point, op_flops_bytes, classify_op, layer_roofline, layers_roofline,
                       tpu_v1_paper_points)
from .energy import EnergyTable, EnergyBreakdown, horowitz_45nm, energy_breakdown, mac_pj
from .workloads import TpuApp, resnet18_layers, tpu_v1_apps
from .comparison import ChipRun, Comparison, compare_graphs

Systolic = systolic_gemm   # the curriculum's capability name

__all__ = [name for name in dir() if not name.startswith("_")]
