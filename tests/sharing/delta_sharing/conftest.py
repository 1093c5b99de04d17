"""Fixtures of the Delta Sharing tests: the client's interpreter and a product to share."""

import pytest

from tests.conftest import require_service
from tests.factories import parquet_product
from tests.sharing.delta_sharing.recipient import ROWS, delta_sharing_python


@pytest.fixture(scope="session")
def client_python() -> str:
    python = delta_sharing_python()
    if python is None:
        require_service(
            "the delta-sharing client",
            "run `make delta-sharing-client` or set DELTA_SHARING_PYTHON",
        )
    return python


@pytest.fixture
def orders(domain, media_root):
    return parquet_product(
        media_root=media_root, domain=domain, rows=ROWS, file_path="delta/orders.parquet"
    )
