"""The loop back end's tests compile kernels: into a kernel cache of their own."""
import pytest


@pytest.fixture(scope="module", autouse=True)
def _kernel_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("AISYS_CACHE_DIR", str(tmp_path_factory.mktemp("loops_cache")))
    yield
    mp.undo()
