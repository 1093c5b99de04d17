"""A file port's DuckDB instance is kept by the process and shared by the port's
connectors: it must stay as locked down as one made per read, and a replaced or removed
file must never be answered from the old instance."""

import os
import threading

import duckdb
import pytest

from products.choices import FileFormat, PortKind
from products.connectors import ConnectorError, RelationMissing, connector_for_port
from tests.factories import OutputPortFactory


def _write_parquet(path, values):
    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(":memory:") as con:
        rows = ", ".join(f"({value})" for value in values)
        con.execute(f"COPY (SELECT * FROM (VALUES {rows}) AS t(v)) TO '{path}' (FORMAT parquet)")


def _file_port(relative):
    return OutputPortFactory(
        kind=PortKind.FILE, source=None, file_path=relative, file_format=FileFormat.PARQUET
    )


def _values(port):
    with connector_for_port(port) as connector:
        return [row[0] for row in connector.fetch(f"SELECT v FROM {connector.relation_sql()}")]


def test_a_file_replaced_in_place_is_read_anew(media_root, db):
    path = media_root / "shared" / "numbers.parquet"
    _write_parquet(path, [1, 2, 3])
    port = _file_port("shared/numbers.parquet")
    assert _values(port) == [1, 2, 3]

    replacement = media_root / "shared" / "next.parquet"
    _write_parquet(replacement, [7, 8, 9])  # the same size, written as uploads replace files
    os.replace(replacement, path)

    assert _values(port) == [7, 8, 9]


def test_a_removed_file_is_missing_not_served_from_memory(media_root, db):
    path = media_root / "shared" / "gone.parquet"
    _write_parquet(path, [1])
    port = _file_port("shared/gone.parquet")
    assert _values(port) == [1]
    path.unlink()

    with pytest.raises(RelationMissing, match="does not exist"):
        _values(port)


def test_a_shared_instance_still_reads_no_other_file(media_root, db):
    _write_parquet(media_root / "shared" / "mine.parquet", [1])
    _write_parquet(media_root / "shared" / "theirs.parquet", [42])
    port = _file_port("shared/mine.parquet")
    _values(port)  # the instance now exists and is reused below

    with connector_for_port(port) as connector:
        with pytest.raises(ConnectorError):
            connector.fetch(f"SELECT * FROM read_parquet('{media_root}/shared/theirs.parquet')")
        with pytest.raises(ConnectorError):
            connector.fetch("SET enable_external_access = true")


def test_connectors_of_one_file_read_at_once_from_several_threads(media_root, db):
    _write_parquet(media_root / "shared" / "many.parquet", range(1000))
    port = _file_port("shared/many.parquet")
    totals, errors = [], []

    def read():
        try:
            with connector_for_port(port) as connector:
                for _ in range(20):
                    sql = f"SELECT sum(v) FROM {connector.relation_sql()}"
                    totals.append(connector.fetch(sql)[0][0])
        except Exception as exc:  # reported below, with the thread's error
            errors.append(exc)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert totals == [sum(range(1000))] * 80


def test_samples_by_position_work_on_a_reused_instance(media_root, db):
    _write_parquet(media_root / "shared" / "positions.parquet", [5, 6, 7])
    port = _file_port("shared/positions.parquet")
    for _ in range(2):  # the second connector gets the kept instance
        with connector_for_port(port) as connector:
            relation, position = connector.numbered_relation()
            rows = connector.fetch(f"SELECT {position}, v FROM {relation} ORDER BY {position}")
        assert rows == [(0, 5), (1, 6), (2, 7)]
