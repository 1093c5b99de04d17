"""A later run's plan (sharing.syncs.planning.diff_plan) against the sync's state in the
portal's PostgreSQL, made every way: with the state held in the worker (StateIndex: the
unchanged rows set aside there, the rest decided in SQL, by key lookups or one join) and,
for a state larger than SYNC_PLAN_MEMORY_MB, with the whole scan joined in the portal.
All must give exactly the same plan, on keys that need quoting and on hashes the index
cannot read."""

from __future__ import annotations

import hashlib
import json

import duckdb
import pyarrow as pa
import pytest

from products.choices import SourceKind
from sharing.models import SyncRecordState, SyncRun
from sharing.models.syncs import SyncRunStatus
from sharing.syncs import planning
from sharing.syncs.planning import diff_plan
from sharing.syncs.state_index import StateIndex, md5_words
from tests.factories import DataSourceFactory, OutputPortFactory, ProductFactory, columns_declare
from tests.sharing.syncs.conftest import LEAD_TYPES, LEADS, plan_tables
from tests.sharing.syncs.test_services import make_sync, run_now

AWKWARD = [
    "a,b",
    'say "hi"',
    "line\nbreak",
    "",
    None,
    "café",
    "tab\there",
    "x" * 5_000,
    "\\back\\slash",
]


def key(*values) -> str:
    return json.dumps([None if v is None else str(v) for v in values], separators=(",", ":"))


def md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def batch(pairs: list[tuple[str, str]]) -> pa.RecordBatch:
    keys, hashes = zip(*pairs, strict=True) if pairs else ((), ())
    return pa.RecordBatch.from_arrays(
        [pa.array(keys, pa.string()), pa.array(hashes, pa.string())],
        names=["sync_key", "sync_hash"],
    )


@pytest.fixture(params=["in the worker, keys probed", "in the worker, one join", "in the portal"])
def plan_in(request, settings, monkeypatch):
    """The three ways a plan is made: the state index with the rows it leaves to SQL
    looked up by key (few) or joined with the state (many), or all in the portal."""
    settings.SYNC_PLAN_MEMORY_MB = 0 if request.param == "in the portal" else 128
    if request.param == "in the worker, one join":
        monkeypatch.setattr(planning, "PROBED_CANDIDATES", 0)
    return request.param


@pytest.fixture
def sync(leads, crm, owner):
    return make_sync(leads, crm, owner)


def acknowledge(sync, pairs: list[tuple[str, str]]) -> None:
    SyncRecordState.objects.bulk_create(
        SyncRecordState(sync=sync, key=k, row_hash=h) for k, h in pairs
    )


def load_index(sync):
    states = SyncRecordState.objects.filter(sync=sync)
    key_bytes = sum(len(k.encode()) for k in states.values_list("key", flat=True))
    return StateIndex.load(sync.pk, rows=states.count(), key_bytes=key_bytes)


def plan(sync, batches, *, key_unique=False):
    run = SyncRun.objects.create(sync=sync)
    diff = diff_plan(sync_id=sync.pk, run_id=run.pk, batches=iter(batches), key_unique=key_unique)
    try:
        if diff.counts.duplicate is not None:
            return diff.counts, None
        kinds = {
            kind: sorted(pair for chunk in diff.keys(kind) for pair in chunk)
            for kind in ("added", "changed", "removed")
        }
        return diff.counts, kinds
    finally:
        diff.drop()


def test_a_plan_finds_exactly_the_changes_on_keys_that_need_quoting(sync, plan_in):
    keys = [key(value) for value in AWKWARD] + [key("FR", "2024-01-01"), key("FR", None)]
    state = [(k, md5(f"v1 {k}")) for k in keys]
    state += [(key("upper"), md5("u").upper()), (key("short"), "abc")]  # unreadable hashes
    acknowledge(sync, state)
    unchanged, changed, removed = state[0:4], state[4:8], state[8:11]
    source = [
        *unchanged,
        *[(k, md5(f"v2 {k}")) for k, _ in changed],
        (key("upper"), md5("u").upper()),  # the same text: unchanged, though not readable
        (key("short"), "abd"),  # changed
        (key("new", "one"), md5("n1")),
        (key('new "two"'), md5("n2")),
    ]
    # In three batches, the last empty, so that a plan spans batches.
    counts, kinds = plan(sync, [batch(source[:5]), batch(source[5:]), batch([])])
    assert kinds == {
        "added": sorted([(key("new", "one"), md5("n1")), (key('new "two"'), md5("n2"))]),
        "changed": sorted([(k, md5(f"v2 {k}")) for k, _ in changed] + [(key("short"), "abd")]),
        "removed": sorted((k, "") for k, _ in removed),
    }
    assert (counts.source_rows, counts.state_rows) == (len(source), len(state))
    assert (counts.added, counts.changed, counts.removed) == (2, 5, 3)


def test_the_same_hash_under_another_key_is_not_the_acknowledged_record(sync, plan_in):
    """A hash that does not cover the key (a state written under other columns): the
    index matches a row only where the key is the same too."""
    acknowledge(sync, [(key("A"), md5("same")), (key("C"), md5("c"))])
    counts, kinds = plan(sync, [batch([(key("B"), md5("same")), (key("C"), md5("c"))])])
    assert kinds == {
        "added": [(key("B"), md5("same"))],
        "changed": [],
        "removed": [(key("A"), "")],
    }


def test_hashes_that_differ_only_in_their_last_digits_are_a_change(sync, plan_in):
    before = md5("before")
    after = before[:16] + ("0" * 16 if before[16:] != "0" * 16 else "1" * 16)
    acknowledge(sync, [(key(1), before), (key(2), md5("two"))])
    counts, kinds = plan(sync, [batch([(key(1), after), (key(2), md5("two"))])])
    assert kinds == {"added": [], "changed": [(key(1), after)], "removed": []}


@pytest.mark.parametrize(
    "copies",
    [
        pytest.param([md5("v1"), md5("v2")], id="an unchanged copy and a changed one"),
        pytest.param([md5("v2"), md5("v1")], id="a changed copy and then the unchanged one"),
        pytest.param([md5("v2"), md5("v3")], id="two changed copies"),
    ],
)
def test_a_repeated_key_the_plan_would_send_is_found(sync, plan_in, copies):
    acknowledge(sync, [(key(1), md5("v1")), (key(2), md5("two"))])
    source = [(key(1), copies[0]), (key(2), md5("two")), (key(1), copies[1])]
    counts, kinds = plan(sync, [batch(source[:2]), batch(source[2:])])
    assert counts.duplicate == key(1)


def test_a_repeated_new_key_is_found_and_an_unchanged_repeat_sends_nothing(sync, plan_in):
    acknowledge(sync, [(key(1), md5("v1"))])
    counts, _ = plan(sync, [batch([(key(1), md5("v1")), (key(2), md5("n")), (key(2), md5("n"))])])
    assert counts.duplicate == key(2)
    # Two copies of exactly the acknowledged record: nothing would be sent, nothing to refuse.
    counts, kinds = plan(sync, [batch([(key(1), md5("v1")), (key(1), md5("v1"))])])
    assert counts.duplicate is None
    assert kinds == {"added": [], "changed": [], "removed": []}


def test_a_key_the_source_guarantees_is_not_counted(sync, plan_in):
    """Trusted, not checked: even the repeat a broken guarantee would let through."""
    acknowledge(sync, [(key(1), md5("v1"))])
    source = [(key(1), md5("v1")), (key(1), md5("v2"))]
    counts, kinds = plan(sync, [batch(source)], key_unique=True)
    assert counts.duplicate is None
    assert kinds == {"added": [], "changed": [(key(1), md5("v2"))], "removed": []}


def test_a_plan_across_many_batches_matches_the_python_diff(sync, plan_in):
    state = [(key(i), md5(f"r{i}")) for i in range(30_000)]
    acknowledge(sync, state)
    source = [(key(i), md5(f"r{i}" if i % 97 else f"x{i}")) for i in range(500, 31_000)]
    batches = [batch(source[start : start + 7_000]) for start in range(0, len(source), 7_000)]
    counts, kinds = plan(sync, batches)
    known = dict(state)
    assert kinds == {
        "added": sorted(p for p in source if p[0] not in known),
        "changed": sorted(p for p in source if p[0] in known and known[p[0]] != p[1]),
        "removed": sorted((key(i), "") for i in range(500)),
    }
    assert (counts.source_rows, counts.state_rows) == (30_500, 30_000)


def test_md5_words_are_the_hash_s_128_bits_and_anything_else_is_unreadable():
    texts = [md5(str(i)) for i in range(1_000)]
    values = pa.array([*texts, None, texts[0].upper(), "abc", texts[1] + "0", "g" * 32])
    high, low, readable = md5_words(values)
    assert readable.tolist() == [True] * 1_000 + [False] * 5
    for i, text in enumerate(texts):
        assert (int(high[i]), int(low[i])) == (int(text[:16], 16), int(text[16:], 16))
    sliced = md5_words(pa.array(texts, pa.large_string()).slice(10, 5))
    assert [int(word) for word in sliced[0]] == [int(text[:16], 16) for text in texts[10:15]]


def test_the_index_marks_each_acknowledged_record_a_row_matched(sync):
    acknowledge(sync, [(key(i), md5(str(i))) for i in range(10)])
    index = load_index(sync)
    assert len(index) == 10
    unchanged = index.unchanged(
        pa.array([key(1), key(2), key(3), key(11)]),
        pa.array([md5("1"), md5("x"), md5("3"), md5("11")]),
    )
    assert unchanged.tolist() == [True, False, True, False]
    assert sorted(index.unseen_keys().to_pylist()) == sorted(
        key(i) for i in range(10) if i not in (1, 3)
    )


def test_a_state_the_index_cannot_read_is_planned_in_sql(sync):
    """A hash that is not hex has no digest to hold: the whole plan is made in SQL."""
    acknowledge(sync, [(key(1), "z" * 32), (key(2), md5("two"))])
    assert load_index(sync) is None
    counts, kinds = plan(sync, [batch([(key(1), "z" * 32), (key(2), md5("2")), (key(3), "n")])])
    assert kinds == {"added": [(key(3), "n")], "changed": [(key(2), md5("2"))], "removed": []}
    assert counts.state_rows == 2


def test_a_state_that_changed_since_it_was_counted_is_not_held(sync):
    acknowledge(sync, [(key(i), md5(str(i))) for i in range(40)])
    key_bytes = sum(len(key(i)) for i in range(40))
    assert len(StateIndex.load(sync.pk, rows=40, key_bytes=key_bytes)) == 40
    assert StateIndex.load(sync.pk, rows=39, key_bytes=key_bytes) is None
    assert StateIndex.load(sync.pk, rows=41, key_bytes=key_bytes) is None
    assert StateIndex.load(sync.pk, rows=40, key_bytes=key_bytes + 1) is None


def test_a_duckdb_port_s_later_run_finds_exactly_its_changes(
    tmp_path, domain, owner, crm, crm_table, plan_in
):
    """A source read through Arrow from DuckDB: the same plan as from PostgreSQL."""
    path = str(tmp_path / "warehouse.duckdb")
    with duckdb.connect(path) as conn:
        conn.execute(
            "CREATE TABLE leads (lead_id BIGINT, email TEXT, country TEXT, score DOUBLE, "
            "bid DECIMAL(12,2))"
        )
        conn.executemany("INSERT INTO leads VALUES (?, ?, ?, ?, ?)", LEADS)
    product = ProductFactory(domain=domain, name="Leads", slug="leads", owners=[owner])
    port = OutputPortFactory(
        product=product,
        source=DataSourceFactory(kind=SourceKind.DUCKDB, path=path),
        schema_name="main",
        table_name="leads",
        slug="leads",
    )
    columns_declare(port, LEAD_TYPES)
    sync = make_sync(product, crm, owner, guardrails={"max_changed_pct": 100})
    assert run_now(sync, owner).status == SyncRunStatus.SUCCEEDED
    with duckdb.connect(path) as conn:
        conn.execute("UPDATE leads SET score = 0.25 WHERE lead_id = 4")
        conn.execute("INSERT INTO leads VALUES (6, 'f@x', 'NL', 0.2, 60)")
    second = run_now(sync, owner)
    assert second.status == SyncRunStatus.SUCCEEDED, second.error
    assert (second.added, second.changed, second.removed, second.source_rows) == (1, 1, 0, 6)
    assert crm_table.rows("lead_id, score", "1")[3:] == [(4, 0.25), (5, 0.3), (6, 0.2)]


@pytest.mark.django_db(transaction=True)
def test_a_source_failing_during_the_plan_fails_the_run_and_leaves_nothing_behind(
    leads, crm, crm_table, source_table, owner, plan_in
):
    """The scan fails in the source while the portal is taking its rows: the run fails
    with the source's reason, nothing is sent or acknowledged, no table is left behind,
    and the next run, the source mended, plans and sends as usual."""
    sync = make_sync(leads, crm, owner, guardrails={"max_changed_pct": 100})
    assert run_now(sync, owner).status == SyncRunStatus.SUCCEEDED
    before = sorted(SyncRecordState.objects.filter(sync=sync).values_list("key", "row_hash"))
    source_table.execute("ALTER TABLE {table} RENAME TO leads_base")
    view = source_table.qualified
    base = view.replace('"leads"', '"leads_base"')
    try:
        source_table.execute(
            f"CREATE VIEW {view} AS SELECT lead_id, email, country, score, "
            f"bid + 0 * (1 / (lead_id - 4)) AS bid FROM {base}"  # division by zero at lead 4
        )
        failed = run_now(sync, owner)
        assert failed.status == SyncRunStatus.FAILED
        assert "division by zero" in (failed.error + str(failed.detail)).lower()
        after = sorted(SyncRecordState.objects.filter(sync=sync).values_list("key", "row_hash"))
        assert after == before
        assert [row[0] for row in crm_table.rows("lead_id")] == [1, 2, 3, 4, 5]
        assert plan_tables() == []
        source_table.execute(f"DROP VIEW {view}")
        source_table.execute(f"CREATE VIEW {view} AS SELECT * FROM {base}")
        source_table.execute(f"UPDATE {base} SET score = 0.95 WHERE lead_id = 2")
        mended = run_now(sync, owner)
        assert (mended.status, mended.changed, mended.added) == (SyncRunStatus.SUCCEEDED, 1, 0)
    finally:
        source_table.execute(f"DROP VIEW IF EXISTS {view}")
        source_table.execute(f"DROP TABLE IF EXISTS {base}")
