import pytest


@pytest.fixture(scope="module", autouse=True)
def _kernel_cache_dir(tmp_path_factory):
    """Kernels compiled by these tests go to a temporary cache, not the user's."""
    mp = pytest.MonkeyPatch()
    mp.setenv("AISYS_CACHE_DIR", str(tmp_path_factory.mktemp("loops_cache")))
    yield
    mp.undo()
