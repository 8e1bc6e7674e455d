"""L3 — the framework layer: tensors, the op registry, autodiff, graph IR, nn, optim, data."""
