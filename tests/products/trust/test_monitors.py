"""Monitors: an availability probe with the port's row count and freshness lag, kept as
history, written for reachable and unreachable sources alike."""

from datetime import timedelta

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from django.utils import timezone

from products.choices import LifecycleStatus, SourceKind
from products.trust.services.monitors import port_observe, ports_to_observe
from tests.factories import DataSourceFactory, FilePortFactory, OutputPortFactory, ProductFactory


def test_observation_of_a_readable_port(domain, media_root):
    newest = timezone.now() - timedelta(hours=5)
    path = media_root / "monitor" / "events.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(
        pa.table(
            {"at": pa.array([newest - timedelta(days=1), newest], pa.timestamp("us", tz="UTC"))}
        ),
        path,
    )
    port = FilePortFactory(
        product=ProductFactory(domain=domain),
        file_path="monitor/events.parquet",
        freshness_column="at",
    )
    observation = port_observe(port=port)
    assert observation.available is True
    assert observation.row_count == 2
    assert observation.freshness_lag_seconds == pytest.approx(5 * 3600, abs=60)


def test_unreachable_source_is_recorded_not_raised(domain):
    source = DataSourceFactory(
        kind=SourceKind.POSTGRESQL, path="", host="127.0.0.1", port=1, database="x"
    )
    port = OutputPortFactory(product=ProductFactory(domain=domain), source=source)
    observation = port_observe(port=port)
    assert observation.available is False
    assert "Cannot connect" in observation.error
    assert observation.row_count is None


def test_retired_products_are_not_observed(domain):
    live = OutputPortFactory(product=ProductFactory(domain=domain))
    OutputPortFactory(product=ProductFactory(domain=domain, status=LifecycleStatus.RETIRED))
    assert list(ports_to_observe()) == [live.pk]
