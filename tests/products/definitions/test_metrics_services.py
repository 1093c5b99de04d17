"""A metric's dimensions typed as text ("region, channel") name columns as the data API's
?columns= does: a column named as written wins; the name without the spaces around it
only when no column is named as written; a name matching neither is refused, named."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.core.exceptions import ValidationError

from products.catalog.services.schema_refresh import schema_apply_columns
from products.connectors import connector_for_port
from products.definitions.services.metrics import metric_create, metric_evaluate
from sharing.choices import Channel
from tests.factories import FilePortFactory, ProductFactory

SPACED_PATH = "metrics/spaced.parquet"


@pytest.fixture
def port(domain, media_root):
    """A port with both `region` and ` region` (a leading space) among its columns."""
    path = media_root / SPACED_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.table(
        {
            "amount": [1, 2, 4, 8],
            "region": ["a", "a", "b", "b"],
            " region": ["x", "y", "x", "y"],
            "channel": ["web", "web", "web", "phone"],
        }
    )
    pq.write_table(table, path)
    product = ProductFactory(domain=domain, slug="spaced")
    port = FilePortFactory(product=product, slug="spaced", file_path=SPACED_PATH)
    with connector_for_port(port) as connector:
        schema_apply_columns(port=port, columns=connector.describe())
    return port


def _define(port, owner, dimensions):
    return metric_create(
        by=owner,
        port=port,
        key="sales.amount",
        name="Amount",
        aggregation="sum",
        column="amount",
        dimensions=dimensions,
    )


def _by(result, dimension: str) -> dict:
    return {row[dimension]: float(row["value"]) for row in result.rows}


def test_a_column_named_as_written_wins(port, owner):
    metric = _define(port, owner, " region,channel")
    assert metric.dimensions == [" region", "channel"]
    result = metric_evaluate(metric=metric, user=owner, channel=Channel.API, dimensions=" region")
    assert _by(result, " region") == {"x": 5.0, "y": 10.0}


def test_the_name_without_its_spaces_when_none_is_named_as_written(port, owner):
    metric = _define(port, owner, "region , channel ")
    assert metric.dimensions == ["region", "channel"]
    result = metric_evaluate(metric=metric, user=owner, channel=Channel.API, dimensions="region")
    assert _by(result, "region") == {"a": 3.0, "b": 12.0}


def test_a_name_matching_no_column_is_refused_naming_it(port, owner):
    with pytest.raises(ValidationError) as refused:
        _define(port, owner, "channel, regoin")
    assert "regoin" in " ".join(refused.value.message_dict["dimensions"])


def test_a_list_keeps_its_names_verbatim(port, owner):
    """A list is not typed text: ` channel` is not trimmed into `channel`."""
    with pytest.raises(ValidationError) as refused:
        _define(port, owner, [" channel"])
    assert " channel" in " ".join(refused.value.message_dict["dimensions"])
