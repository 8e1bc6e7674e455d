"""What the browser test (tests/labs/test_browser.py) expects to see in each lab after "Run All".

One row per notebook in labs/, keyed by file name. A lab without a row fails the browser test.

    "08_chips.ipynb": dict(
        # CSS selectors that must be in the page, with the minimum number of matches
        selectors={".widget-slider": 1, ".widget-html svg g.node": 3, ".js-plotly-plot .trace": 2},
        # one control to move, then `changed` must change:
        control=dict(slider=0, presses=2),      # focus the 1st slider's handle, press ArrowRight twice
        # control=dict(button="Step"),          # or click the first button whose text contains "Step"
        # control=dict(dropdown=0, option="WS"),# or pick an option (by label) in the 1st dropdown
        # control=dict(checkbox=0),             # or toggle the 1st checkbox
        changed=".widget-html svg",             # selector (or list of selectors) whose HTML must change
        # optional: texts that must appear in some output, e.g. ["PASS exercise 8.2"]
        texts=["PASS exercise 8.2"],
    ),

Useful selectors (JupyterLab 4, ipywidgets 8, plotly >= 6):
  .widget-slider, .widget-button, .widget-dropdown, .widget-checkbox, .widget-html,
  .widget-html svg g.node / g.edge (graphviz), .js-plotly-plot, .js-plotly-plot .trace,
  .js-plotly-plot .scatterlayer .trace, .js-plotly-plot .barlayer .trace, .js-plotly-plot .gtitle
"""
from __future__ import annotations

CONTROL_KINDS = ("slider", "button", "dropdown", "checkbox")

EXPECTATIONS: dict[str, dict] = {
    # The fixture notebook the test suite uses to prove the browser machinery (tests/labs/fixtures/).
    "demo_lab.ipynb": dict(
        selectors={".widget-slider": 1, ".widget-html svg g.node": 3, ".js-plotly-plot .barlayer .trace": 1},
        control=dict(slider=0, presses=2),
        changed=[".widget-html svg", ".js-plotly-plot .gtitle"],
        texts=["PASS exercise 90.1", "3 ops, 3 nodes drawn"],
    ),
    # Lab 00, the tour: GraphView (SVG), PassStepper (slider over every pass), MemoryTimeline and UtilizationView
    # (plotly). Moving the stepper's slider two passes on redraws its panes and header.
    "00_tour.ipynb": dict(
        selectors={".widget-html svg g.node": 12, ".widget-slider": 1, ".js-plotly-plot": 2},
        control=dict(slider=0, presses=2),
        changed=".widget-html",
        texts=["the graph computes what eager code computed: True", "compiled output equals eager: True"],
    ),
    # Lab 01: LayoutView grids (SVG cells + memory strip), Play buttons, BitView bit buttons + format dropdown.
    "01_tensors.ipynb": dict(
        selectors={".widget-toggle-buttons": 3, ".widget-play": 3, ".widget-html svg rect": 48,
                   ".widget-button": 16, ".widget-dropdown": 1},
        control=dict(slider=0, presses=2),  # the 4×4 matrix's address slider: two more cells light up
        changed=".widget-html svg",
        texts=["PASS exercise 1.1", "PASS exercise 1.2", "PASS exercise 1.3",
               "memory order: [0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15]"],
    ),
    # Lab 02: TapePlayer on the course example (7 tape nodes), its mode toggle and Play; the slider scrubs the
    # reverse sweep, so red adjoint edges appear in the SVG.
    "02_autodiff.ipynb": dict(
        selectors={".widget-slider": 1, ".widget-play": 1, ".widget-toggle-buttons": 1,
                   ".widget-html svg g.node": 7, ".widget-html svg g.edge": 6},
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
        control=dict(checkbox=0),  # in-place reuse on the LeNet timeline: bars move, the arena line drops
        changed=".js-plotly-plot .barlayer",
        texts=["PASS exercise 5.1", "PASS exercise 5.2", "PASS exercise 5.3",
               "same result as the interpreter: True"],
    ),
    # Lab 08: RooflinePlot (DRAM bandwidth slider + plotly), two SystolicAnimators (Play + cycle slider + SVG
    # grid of PEs), UtilizationView (window range slider, plotly timeline + share bars, PE heatmap SVG).
    "08_chips.ipynb": dict(
        selectors={".widget-play": 2, ".widget-html svg g.pe": 18, ".js-plotly-plot": 3,
                   ".js-plotly-plot .barlayer .trace": 3, ".widget-html svg rect.pe-heat": 256},
        control=dict(slider=1, presses=2),  # the 3x3 animator's cycle slider (slider 0 is the roofline's)
        changed=".widget-html svg",
        texts=["PASS exercise 8.1", "PASS exercise 8.2", "PASS exercise 8.3",
               "MACs per cycle: 1, 3, 6, 7, 6, 3, 1"],
    ),
    # Lab 04: the PassStepper (slider + Play, before/after graphviz panes, metric strip) on the ResNet block.
    "04_graph_passes.ipynb": dict(
        selectors={".widget-slider": 1, ".widget-play": 1, ".widget-html svg g.node": 8,
                   ".widget-toggle-buttons": 1, ".widget-checkbox": 1},
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
        control=dict(slider=0, presses=2),
        changed=".widget-html",
        texts=["PASS exercise 9.1", "PASS exercise 9.2", "PASS exercise 9.3",
               "integer-only outputs equal the simulation bit for bit: True"],
    ),
    # Lab 10: CollectiveAnimator (Play + step slider, SVG ranks with chunk cells and message arrows), TopologyView
    # (dropdown over three topologies, links coloured by utilization), TimelineView (measured MPI run above the
    # simulated one, plotly). Two steps on the animator's slider redraw its SVG.
    "10_collectives.ipynb": dict(
        selectors={".widget-play": 1, ".widget-html svg rect.cell": 16, ".widget-html svg line.msg": 4,
                   ".widget-dropdown": 1, ".widget-html svg line.link": 8, ".js-plotly-plot": 1},
        control=dict(slider=0, presses=2),
        changed=".widget-html svg",
        texts=["PASS exercise 10.1", "PASS exercise 10.2", "PASS exercise 10.3",
               "our ring equals MPICH's MPI_Allreduce on both ranks: True"],
    ),
    # Lab 11: TimelineView of the real data-parallel run over the simulated one, MemoryStack (N_d slider + stacked
    # bars), the pipeline-bubble TimelineView (micro-batch slider). Moving the MemoryStack slider restacks the bars.
    "11_parallel_training.ipynb": dict(
        selectors={".js-plotly-plot": 3, ".js-plotly-plot .barlayer .trace": 6, ".widget-slider": 2},
        control=dict(slider=0, presses=2),
        changed=".js-plotly-plot .barlayer",
        texts=["PASS exercise 11.1", "PASS exercise 11.2", "PASS exercise 11.3",
               "2 MPI ranks end with the parameters of one process on the whole batch (rel. error < 1e-12): True",
               "2-stage pipeline on MPI, gradients equal one device: True"],
    ),
    # Lab 12: StackView first (six layer cards with buttons, throughput plot), RooflinePlot (bandwidth slider),
    # BatchTimeline (run toggle, plotly Gantt + batch lane), KVCacheView (step slider over a 64-block SVG pool).
    "12_capstone.ipynb": dict(
        selectors={".widget-html svg rect.kv-block": 64, ".js-plotly-plot": 3, ".widget-slider": 2,
                   ".widget-toggle-buttons": 1, ".widget-button": 6, ".js-plotly-plot .barlayer .trace": 2},
        control=dict(button="UtilizationView"),  # the chip card opens the simulated chip's timeline below the cards
        changed=".widget-html",
        texts=["PASS exercise 12.1", "PASS exercise 12.2", "PASS exercise 12.3",
               "same tokens with and without the cache: True",
               "every request got exactly the tokens generate() gives it alone: True"],
    ),
    # Lab 13: PlacementView (placement buttons, gang-size slider, model dropdown, SVG of 128 GPUs) twice (the library's
    # rules, then with the learner's), ClusterTimeline (policy dropdown, colour buttons, plotly bars) on the small
    # scenario and on six policies, PolicyCompare (metric dropdown, CDFs, bars). The gang-size slider re-places the gang.
    "13_cluster.ipynb": dict(
        selectors={".widget-html svg rect.gpu": 256, ".js-plotly-plot": 3, ".js-plotly-plot .barlayer .trace": 2,
                   ".widget-dropdown": 4, ".widget-slider": 2},
        control=dict(slider=0, presses=2),  # the first PlacementView's gang size: 8 -> 10 GPUs, new GPUs light up
        changed=".widget-html svg",
        texts=["PASS exercise 13.1", "PASS exercise 13.2", "PASS exercise 13.3", "Tiresias: mean JCT"],
    ),
}


def validate(name: str, row: dict) -> list[str]:
    """Problems with one row (the browser test reports them instead of failing obscurely)."""
    problems = []
    unknown = set(row) - {"selectors", "control", "changed", "texts"}
    if unknown:
        problems.append(f"unknown keys {sorted(unknown)}")
    selectors = row.get("selectors")
    if not isinstance(selectors, dict) or not selectors:
        problems.append("selectors must be a non-empty {css selector: minimum count} dict")
    elif not all(isinstance(k, str) and isinstance(v, int) and v >= 1 for k, v in selectors.items()):
        problems.append("selectors: every key is a CSS selector string, every value an int >= 1")
    control = row.get("control")
    if not isinstance(control, dict) or sum(k in control for k in CONTROL_KINDS) != 1:
        problems.append(f"control must be a dict with exactly one of {CONTROL_KINDS}")
    changed = row.get("changed")
    if isinstance(changed, str):
        changed = [changed]
    if not changed or not all(isinstance(c, str) for c in changed):
        problems.append("changed must be a selector (or list of selectors) whose HTML the control changes")
    texts = row.get("texts", [])
    if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
        problems.append("texts must be a list of strings")
    return [f"{name}: {p}" for p in problems]
