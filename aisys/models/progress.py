"""The training loops' progress bar lives in ``aisys.framework.progress`` (the cluster simulator uses it too)."""
from ..framework.progress import ProgressBar, progress, progress_enabled

__all__ = ["ProgressBar", "progress", "progress_enabled"]
