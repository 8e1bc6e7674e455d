"""What the browser test (tests/labs/test_browser.py) expects to see in each lab after "Run All".

One row per notebook in labs/, keyed by file name. A lab without a row fails the browser test.

    "08_chips.ipynb": dict(
        # CSS selectors that must be in the page, with the minimum number of matches
        selectors={".widget-slider": 1, ".widget-html svg g.node": 3, ".js-plotly-plot .trace": 2},
        # the lab's visual moment: the widget (its aisys-* class, and which one when there are several)
        # that the test photographs before and after moving a control inside it; its labels must be at
        # least MIN_LABEL_PX high on screen
        moment=dict(widget=".aisys-systolic-animator", nth=0),
        # one control INSIDE the moment to move, then `changed` (inside the moment) must change:
        control=dict(slider=0, presses=2),      # focus its 1st slider's handle, press ArrowRight twice
        # control=dict(button="Step"),          # or click the first button whose text contains "Step"
        # control=dict(toggle="naive"),         # or click the toggle button (ToggleButtons) labelled "naive"
        # control=dict(dropdown=0, option="WS"),# or pick an option (by label) in its 1st dropdown
        # control=dict(checkbox=0),             # or tick its 1st checkbox
        changed=".widget-html svg",             # selector (or list) inside the moment whose HTML must change
        # optional: more widgets to photograph (and check for legible labels), e.g. one per layer of the tour
        shots=[dict(widget=".aisys-roofline-plot")],
        # optional: texts that must appear in some output, e.g. ["PASS exercise 8.2"]
        texts=["PASS exercise 8.2"],
    ),

Every aisys widget carries a CSS class named after it (``aisys-pass-stepper``, ``aisys-memory-timeline`` …:
``self.add_class(...)`` in its ``__init__``); a new widget adds one the same way.

Useful selectors (JupyterLab 4, ipywidgets 8, plotly >= 6):
  .widget-slider, .widget-button, .widget-dropdown, .widget-checkbox, .widget-html,
  .widget-html svg g.node / g.edge (graphviz), .js-plotly-plot, .js-plotly-plot .trace,
  .js-plotly-plot .scatterlayer .trace, .js-plotly-plot .barlayer .trace, .js-plotly-plot .gtitle
"""
from __future__ import annotations

CONTROL_KINDS = ("slider", "button", "toggle", "dropdown", "checkbox")
# The smallest on-screen height (CSS px) of a label in a photographed widget: graphviz's 10 pt labels drawn at
# natural size are 13 px; squeezed into a half-width pane they fell to 3-6 px, which nobody can read.
MIN_LABEL_PX = 9.0


def widget_spec(spec) -> dict:
    """``".aisys-x"`` or ``{"widget": ".aisys-x", "nth": 1}`` → the dict form."""
    return {"widget": spec, "nth": 0} if isinstance(spec, str) else {"nth": 0, **spec}


EXPECTATIONS: dict[str, dict] = {
    # The fixture notebook the test suite uses to prove the browser machinery (tests/labs/fixtures/).
    "demo_lab.ipynb": dict(
        selectors={".widget-slider": 1, ".widget-html svg g.node": 3, ".js-plotly-plot .barlayer .trace": 1},
        moment=".jupyter-widgets.widget-vbox",
        control=dict(slider=0, presses=2),
        changed=[".widget-html svg", ".js-plotly-plot .gtitle"],
        texts=["PASS exercise 90.1", "3 ops, 3 nodes drawn"],
    ),
    # Lab 00, the tour: GraphView (SVG), PassStepper (slider over every pass), LoopNestView (slider over the fused
    # kernel's schedule steps), MemoryTimeline and UtilizationView (plotly). Moving the stepper's slider to the fusion
    # pass redraws its graph and header; one shot per layer.
    "00_tour.ipynb": dict(
        selectors={".widget-html svg g.node": 12, ".widget-slider": 2, ".js-plotly-plot": 2},
        moment=".aisys-pass-stepper",
        control=dict(slider=0, presses=5),  # from fold_conv_bn (no change) to fuse: the fused kernels appear
        changed=".widget-html",
        shots=[".aisys-graph-view", ".aisys-loop-nest-view", ".aisys-memory-timeline", ".aisys-utilization-view"],
        texts=["the graph computes what eager code computed: True", "compiled output equals eager: True",
               "the scheduled loop nest computes the fused kernel's result: True", "the tuned loops compute a @ b: True"],
    ),
    # Lab 01: LayoutView grids (SVG cells + memory strip), Play buttons, BitView bit buttons + format dropdown.
    "01_tensors.ipynb": dict(
        selectors={".widget-toggle-buttons": 3, ".widget-play": 3, ".widget-html svg rect": 48,
                   ".widget-button": 16, ".widget-dropdown": 1},
        moment=".aisys-layout-view",        # the 4×4 matrix in four layouts
        control=dict(slider=0, presses=2),  # its address slider: two more cells light up
        changed=".widget-html svg",
        shots=[".aisys-bit-view"],
        texts=["PASS exercise 1.1", "PASS exercise 1.2", "PASS exercise 1.3",
               "memory order: [0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15]"],
    ),
    # Lab 02: TapePlayer on the course example (7 tape nodes), its mode toggle and Play; the slider scrubs the
    # reverse sweep, so red adjoint edges appear in the SVG.
    "02_autodiff.ipynb": dict(
        selectors={".widget-slider": 1, ".widget-play": 1, ".widget-toggle-buttons": 1,
                   ".widget-html svg g.node": 7, ".widget-html svg g.edge": 6},
        moment=".aisys-tape-player",
        control=dict(slider=0, presses=2),  # the TapePlayer's step slider: two more reverse steps
        changed=".widget-html svg",
        texts=["PASS exercise 2.1", "PASS exercise 2.2", "PASS exercise 2.3",
               "reverse mode: 1 sweep, 3 local rules applied for a 1×1000 Jacobian"],
    ),
    # Lab 05: MemoryTimeline plotly figures (buffer bars + live-bytes curve), planner buttons, the
    # in-place checkbox and the checkpoint slider of the training-graph timeline.
    "05_memory.ipynb": dict(
        selectors={".widget-toggle-buttons": 3, ".js-plotly-plot": 3, ".js-plotly-plot .barlayer .trace": 3,
                   ".widget-checkbox": 1, ".widget-slider": 1},
        moment=".aisys-memory-timeline",   # LeNet's training step: Tetris with tensors
        control=dict(toggle="naive"),      # the naive planner: the packed rectangles stack into a tower
        changed=".js-plotly-plot .barlayer",
        texts=["PASS exercise 5.1", "PASS exercise 5.2", "PASS exercise 5.3",
               "same result as the interpreter: True"],
    ),
    # Lab 06: Im2colView (three sliders, SVG input grid + im2col matrix), KernelCompare (layer dropdown, SVG bars
    # per algorithm), ThreadGridView (kernel toggle, sliders, SVG grids). Picking the 3×3 stride-2 layer redraws
    # the algorithm bars (Winograd drops out).
    "06_kernels.ipynb": dict(
        selectors={".aisys-im2col-view": 1, ".aisys-kernel-compare": 1, ".aisys-thread-grid-view": 1,
                   ".widget-html svg rect": 200, ".widget-dropdown": 1, ".widget-slider": 5},
        moment=".aisys-kernel-compare",   # multiplications fall from direct to F(4×4,3×3) while the error grows
        control=dict(dropdown=0, option="3×3 stride 2"),   # its layer picker: Winograd's bars drop out
        changed=".widget-html svg",
        shots=[".aisys-im2col-view", ".aisys-thread-grid-view"],
        texts=["PASS exercise 6.1", "PASS exercise 6.2", "PASS exercise 6.3",
               "global loads: naive 1024, tiled 256 (4x fewer, the tile factor T = 4)"],
    ),
    # Lab 08: RooflinePlot (DRAM bandwidth slider + plotly), two SystolicAnimators (Play + cycle slider + SVG
    # grid of PEs), UtilizationView (window range slider, plotly timeline + share bars, PE heatmap SVG).
    "08_chips.ipynb": dict(
        selectors={".widget-play": 2, ".widget-html svg g.pe": 18, ".js-plotly-plot": 3,
                   ".js-plotly-plot .barlayer .trace": 3, ".widget-html svg rect.pe-heat": 256},
        moment=".aisys-systolic-animator",  # the lecture's 3x3 wavefront
        control=dict(slider=0, presses=2),  # its cycle slider: the wavefront moves two cycles on
        changed=".widget-html svg",
        shots=[".aisys-roofline-plot", ".aisys-utilization-view"],
        texts=["PASS exercise 8.1", "PASS exercise 8.2", "PASS exercise 8.3",
               "MACs per cycle: 1, 3, 6, 7, 6, 3, 1"],
    ),
    # Lab 04: the PassStepper (slider + Play, before/after graphviz panes, metric strip) on the ResNet block.
    "04_graph_passes.ipynb": dict(
        selectors={".widget-slider": 1, ".widget-play": 1, ".widget-html svg g.node": 8,
                   ".widget-toggle-buttons": 1, ".widget-checkbox": 1},
        moment=".aisys-pass-stepper",
        control=dict(slider=0, presses=2),  # two passes further: fold_conv_bn → simplify, panes and strip redraw
        changed=".widget-html svg",
        texts=["PASS exercise 4.1", "PASS exercise 4.2", "PASS exercise 4.3", "PASS exercise 4.4",
               "same outputs as the converted model: True"],
    ),
    # Lab 03: GraphView toggles (tape forward/backward, direction), CaptureCompare's dropdown flips the RNN
    # cell's input sign: the traced pane turns red, the eager tape loses its branch.
    "03_graph_capture.ipynb": dict(
        selectors={".widget-toggle-buttons": 3, ".widget-dropdown": 1, ".widget-checkbox": 2,
                   ".widget-html svg g.node": 40},
        moment=".aisys-capture-compare",
        control=dict(dropdown=0, option="-prev_h"),
        changed=".widget-html svg",
        texts=["PASS exercise 3.1", "PASS exercise 3.2", "PASS exercise 3.3", "branch baked at <cell>:7",
               "scripted right"],
    ),
    # Lab 09: QuantHistogram (clip slider + plotly histogram), SensitivityScan and ChipPayoff (toggle buttons +
    # plotly), PruningView (layer dropdown + heatmap). Moving the clip threshold two steps redraws its caption
    # (scale, clipped share, MSE, KL, accuracy) and the threshold line.
    "09_compression.ipynb": dict(
        selectors={".widget-slider": 1, ".js-plotly-plot": 4, ".widget-toggle-buttons": 2, ".widget-dropdown": 1,
                   ".js-plotly-plot .barlayer .trace": 2},
        moment=".aisys-quant-histogram",   # drag the clip threshold: error and accuracy follow
        control=dict(slider=0, presses=2),
        changed=".widget-html",
        shots=[".aisys-chip-payoff"],
        texts=["PASS exercise 9.1", "PASS exercise 9.2", "PASS exercise 9.3",
               "integer-only outputs equal the simulation bit for bit: True"],
    ),
    # Lab 10: CollectiveAnimator (Play + step slider, SVG ranks with chunk cells and message arrows), TopologyView
    # (dropdown over three topologies, links coloured by utilization), TimelineView (measured MPI run above the
    # simulated one, plotly). Two steps on the animator's slider redraw its SVG.
    "10_collectives.ipynb": dict(
        selectors={".widget-play": 1, ".widget-html svg rect.cell": 16, ".widget-html svg line.msg": 4,
                   ".widget-dropdown": 1, ".widget-html svg line.link": 8, ".js-plotly-plot": 1},
        moment=".aisys-collective-animator",   # the ring's chunks travelling, step by step
        control=dict(slider=0, presses=2),
        changed=".widget-html svg",
        shots=[".aisys-topology-view", ".aisys-timeline-view"],
        texts=["PASS exercise 10.1", "PASS exercise 10.2", "PASS exercise 10.3",
               "our ring equals MPICH's MPI_Allreduce on both ranks: True"],
    ),
    # Lab 11: TimelineView of the real data-parallel run over the simulated one, MemoryStack (N_d slider + stacked
    # bars), the pipeline-bubble TimelineView (micro-batch slider). Moving the MemoryStack slider restacks the bars.
    "11_parallel_training.ipynb": dict(
        selectors={".js-plotly-plot": 3, ".js-plotly-plot .barlayer .trace": 6, ".widget-slider": 2},
        moment=".aisys-memory-stack",          # ZeRO stages stacked per device; the slider changes N_d
        control=dict(slider=0, presses=2),
        changed=".js-plotly-plot .barlayer",
        shots=[dict(widget=".aisys-timeline-view", nth=0)],
        texts=["PASS exercise 11.1", "PASS exercise 11.2", "PASS exercise 11.3",
               "2 MPI ranks end with the parameters of one process on the whole batch (rel. error < 1e-12): True",
               "2-stage pipeline on MPI, gradients equal one device: True"],
    ),
    # Lab 12: StackView first (six layer cards with buttons, throughput plot), RooflinePlot (bandwidth slider),
    # BatchTimeline (run toggle, plotly Gantt + batch lane), KVCacheView (step slider over a 64-block SVG pool).
    "12_capstone.ipynb": dict(
        selectors={".widget-html svg rect.kv-block": 64, ".js-plotly-plot": 3, ".widget-slider": 2,
                   ".widget-toggle-buttons": 1, ".widget-button": 6, ".js-plotly-plot .barlayer .trace": 2},
        moment=".aisys-stack-view",        # the stack, card by card, from TinyGPT down to the chip
        control=dict(button="UtilizationView"),  # the chip card opens the simulated chip's timeline below the cards
        changed=".widget-html",
        texts=["PASS exercise 12.1", "PASS exercise 12.2", "PASS exercise 12.3",
               "same tokens with and without the cache: True",
               "every request got exactly the tokens generate() gives it alone: True"],
    ),
    # Lab 07: LoopNestView (step slider, highlighted pseudocode) twice, CacheHeatmap (level buttons, SVG cells) twice,
    # ScheduleExplorer (tile sliders, order dropdown, heat map + nest), TuningCurve (SVG). Two presses on the
    # explorer's tile-i slider (1 -> 4 rows per tile) re-simulate: its heat map turns from red towards green.
    "07_loops.ipynb": dict(
        selectors={".widget-slider": 4, ".widget-dropdown": 1, ".widget-html svg rect.heat": 200,
                   ".widget-html svg circle.trial": 20},
        moment=".aisys-schedule-explorer",
        control=dict(slider=0, presses=2),
        changed=".widget-html svg",
        shots=[".aisys-cache-heatmap", ".aisys-tuning-curve", ".aisys-loop-nest-view"],
        texts=["PASS exercise 7.1", "PASS exercise 7.2", "PASS exercise 7.3",
               "tuned loop: vector instructions True ; naive loop: vector instructions False"],
    ),
    # Lab 13: PlacementView (placement buttons, gang-size slider, model dropdown, SVG of 128 GPUs) twice (the library's
    # rules, then with the learner's), ClusterTimeline (policy dropdown, colour buttons, plotly bars) on the small
    # scenario and on six policies, PolicyCompare (metric dropdown, CDFs, bars). The gang-size slider re-places the gang.
    "13_cluster.ipynb": dict(
        selectors={".widget-html svg rect.gpu": 256, ".js-plotly-plot": 3, ".js-plotly-plot .barlayer .trace": 2,
                   ".widget-dropdown": 4, ".widget-slider": 2},
        moment=".aisys-placement-view",    # a gang placed on four racks, its all-reduce ring on the links
        control=dict(slider=0, presses=2),  # the first PlacementView's gang size: 8 -> 10 GPUs, new GPUs light up
        changed=".widget-html svg",
        shots=[".aisys-policy-compare"],
        texts=["PASS exercise 13.1", "PASS exercise 13.2", "PASS exercise 13.3", "Tiresias: mean JCT"],
    ),
}


def validate(name: str, row: dict) -> list[str]:
    """Problems with one row (the browser test reports them instead of failing obscurely)."""
    problems = []
    unknown = set(row) - {"selectors", "moment", "control", "changed", "shots", "texts"}
    if unknown:
        problems.append(f"unknown keys {sorted(unknown)}")
    selectors = row.get("selectors")
    if not isinstance(selectors, dict) or not selectors:
        problems.append("selectors must be a non-empty {css selector: minimum count} dict")
    elif not all(isinstance(k, str) and isinstance(v, int) and v >= 1 for k, v in selectors.items()):
        problems.append("selectors: every key is a CSS selector string, every value an int >= 1")
    for key, spec in [("moment", row.get("moment"))] + [("shots", x) for x in row.get("shots", [])]:
        spec = widget_spec(spec) if spec is not None else None
        if not (isinstance(spec, dict) and isinstance(spec.get("widget"), str) and spec["widget"]
                and isinstance(spec.get("nth"), int) and set(spec) <= {"widget", "nth"}):
            problems.append(f"{key} must be a widget selector or {{'widget': '.aisys-…', 'nth': k}} "
                            f"(the lab's visual moment is required), got {spec!r}")
    control = row.get("control")
    if not isinstance(control, dict) or sum(k in control for k in CONTROL_KINDS) != 1:
        problems.append(f"control must be a dict with exactly one of {CONTROL_KINDS}")
    changed = row.get("changed", "")
    if isinstance(changed, str):
        changed = [changed]
    if not changed or not all(isinstance(c, str) for c in changed):
        problems.append("changed must be a selector (or list of selectors) inside the moment whose HTML the "
                        "control changes ('' for the whole moment)")
    texts = row.get("texts", [])
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        problems.append("texts must be a list of strings")
    return [f"{name}: {p}" for p in problems]
