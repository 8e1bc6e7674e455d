"""Memory planning (内存优化 / 内存复用): lifetimes, offsets in one arena, the executor that uses
them, and activation checkpointing for training.

Modules: ``records`` (Buffer, MemoryPlan: the records), ``liveness`` (intervals from a schedule),
``schedule`` (choosing an order), ``offset_planners`` (the four planners and ``plan_buffers``),
``graph_planning`` (``plan_memory``: liveness + a planner), ``executor`` (the arena executor),
``checkpoint`` (the chain model of checkpointing), ``recompute`` (checkpointing a traced graph),
``variants`` (one source planned under each option: what the memory timeline compares), ``workloads``.

    plan = plan_memory(graph, "greedy_by_size")      # liveness + offsets, validated
    outs, trace = run_in_arena(graph, x, plan=plan)  # every intermediate inside one numpy arena
"""
from .records import DEFAULT_ALIGNMENT, Buffer, MemoryLimitError, MemoryPlan, align_up, format_bytes, live_bytes_profile
from .offset_planners import (PLANNERS, exact_size_offsets, greedy_by_size_offsets, linear_scan_offsets, naive_offsets,
                       plan_buffers)
from .liveness import check_schedule, default_schedule, graph_buffers, inplace_candidates, liveness
from .schedule import SCHEDULERS, ScheduleChoice, choose_schedule, simulate_live_bytes
from .graph_planning import plan_memory
from .executor import ArenaExecutor, run_in_arena
from .checkpoint import (CheckpointPlan, LayeredModel, best_checkpoint_interval, checkpoint_cost, checkpoint_layers,
                         simulate_checkpointing, sqrt_interval, sweep_checkpoints)
from .recompute import (CheckpointedGraph, checkpoint_graph, checkpoint_table, forward_nodes, saved_activations,
                        sweep_graph_checkpoints)
from .variants import PlannerComparison, Replanned, compare_planners, replan, training_activations

__all__ = ["Buffer", "MemoryPlan", "MemoryLimitError", "DEFAULT_ALIGNMENT", "align_up", "format_bytes",
           "live_bytes_profile", "PLANNERS", "plan_buffers", "naive_offsets", "exact_size_offsets",
           "linear_scan_offsets", "greedy_by_size_offsets", "liveness", "graph_buffers", "check_schedule",
           "default_schedule", "inplace_candidates", "SCHEDULERS", "ScheduleChoice", "choose_schedule",
           "simulate_live_bytes", "plan_memory", "ArenaExecutor", "run_in_arena", "LayeredModel", "CheckpointPlan",
           "simulate_checkpointing", "checkpoint_cost", "checkpoint_layers", "sweep_checkpoints",
           "best_checkpoint_interval", "CheckpointedGraph", "checkpoint_graph", "saved_activations", "forward_nodes",
           "sweep_graph_checkpoints", "checkpoint_table", "sqrt_interval", "Replanned", "replan", "PlannerComparison",
           "compare_planners", "training_activations"]
