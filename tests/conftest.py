"""Test-wide settings: one thread per process and hypothesis profiles.

Profiles (pick with HYPOTHESIS_PROFILE; CI=true selects "ci"):
  dev  — no deadline (numba compiles on first call), random examples, failures saved in .hypothesis/
  ci   — no deadline, derandomized (the same examples on every run, so CI is reproducible), no database
Tests still choose their own max_examples with @settings; profiles only set the defaults.
"""
from __future__ import annotations

import atexit
import os
import shutil
import tempfile

# Set before numpy/numba are imported by any test module: one core per process (the machine is shared).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("NUMBA_NUM_THREADS", "1")

# Generated kernels go to a fresh directory per test session (never the user's ~/.cache/aisys): a test must not
# read a kernel an earlier run left, nor leave files behind. Child processes (notebooks, subprocess tests) inherit it.
_KERNEL_CACHE = tempfile.mkdtemp(prefix="aisys-test-cache-")
os.environ["AISYS_CACHE_DIR"] = _KERNEL_CACHE
atexit.register(shutil.rmtree, _KERNEL_CACHE, ignore_errors=True)

from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("dev", deadline=None, max_examples=50)
settings.register_profile("ci", deadline=None, max_examples=50, derandomize=True, database=None, print_blob=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
