from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.e2e.cluster import Cluster, new_cluster


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = new_cluster(tmp_path_factory.mktemp("netd")).start()
    try:
        yield c
    finally:
        code = c.stop()
        c.down()
        assert code == 0, f"netd up exited with {code} on SIGTERM:\n{c.logs()}"


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    return tmp_path
