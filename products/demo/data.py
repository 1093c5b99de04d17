"""Generated demo rows: reproducible (a fixed seed and an `as_of` hour give the same rows)
and consistent across products (orders refer to customers and SKUs, returns and daily
revenue are aggregated from orders, sessions refer to campaigns, inspections and returns
share suppliers).

Every table is a pandas DataFrame whose columns follow its TableSpec, with dates and
timestamps as naive UTC datetime64 values; the warehouse writers convert per engine.
"""

import unicodedata
import zlib
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from products.demo.catalog import (
    CAMPAIGNS,
    CUSTOMERS,
    DAILY_REVENUE,
    INVENTORY,
    LEAD_SCORES,
    ORDERS,
    RETURNS_BY_SUPPLIER,
    SUPPLIER_INSPECTIONS,
    TABLES,
    WEB_SESSIONS,
    TableSpec,
)

DEFAULT_SEED = 20_240_611

# Row counts at rows_scale=1. Orders is the largest table (>= 100,000 rows).
ORDER_LINES = 120_000
CUSTOMER_COUNT = 25_000
SESSION_COUNT = 90_000
LEAD_COUNT = 8_000
CAMPAIGN_COUNT = 240
INSPECTION_COUNT = 5_000
SKU_COUNT = 240
SUPPLIER_COUNT = 48
HISTORY_DAYS = 730
INVENTORY_DAYS = 60

DAY = np.timedelta64(1, "D")

COUNTRIES = np.array(["NL", "BE", "DE", "FR", "GB", "ES", "IT", "SE", "DK", "AT"])
COUNTRY_WEIGHTS = np.array([0.26, 0.16, 0.18, 0.12, 0.07, 0.06, 0.06, 0.04, 0.03, 0.02])
CITIES = {
    "NL": ["Amsterdam", "Rotterdam", "Utrecht", "Eindhoven", "Groningen"],
    "BE": ["Antwerpen", "Gent", "Brussel", "Leuven", "Liège"],
    "DE": ["Berlin", "Hamburg", "München", "Köln", "Düsseldorf"],
    "FR": ["Paris", "Lyon", "Lille", "Toulouse", "Nantes"],
    "GB": ["London", "Manchester", "Bristol", "Leeds"],
    "ES": ["Madrid", "Barcelona", "Valencia", "Sevilla"],
    "IT": ["Milano", "Roma", "Torino", "Bologna"],
    "SE": ["Stockholm", "Göteborg", "Malmö"],
    "DK": ["København", "Aarhus", "Odense"],
    "AT": ["Wien", "Graz", "Linz"],
}
FIRST_NAMES = np.array(
    "Anna Lars Sofie Jan Emma Lucas Julia Noah Mila Daan Léa Hugo Chloé Louis Marie Paul "
    "Lena Felix Hannah Jonas Giulia Marco Sara Luca Elena Pablo Lucía Mateo Olivia Jack "
    "Amelia Oliver Freja William Ida Oscar Eva Finn Zoë Milan".split()
)
LAST_NAMES = np.array(
    "Jansen de-Vries Peeters Maes Müller Schmidt Martin Bernard Dubois Smith Jones García "
    "Rossi Russo Andersson Johansson Nielsen Hansen Gruber Huber Bakker Visser Janssens "
    "Wagner Becker Moreau Laurent Taylor Brown López Martínez Bianchi Romano Larsen "
    "Berg Lindqvist Mertens Claes Fischer Weber".split()
)
CATEGORIES = np.array(
    ["Kitchen", "Garden", "Lighting", "Bath", "Storage", "Textiles", "Tools", "Electronics"]
)
SUPPLIER_PREFIXES = "Nordic Hanse Alpine Atlas Delta Rhine Baltic Iberia Lumen Terra Vista Orbit"
SUPPLIER_SUFFIXES = ("Home Supply", "Trading BV", "Manufacturing", "Goods GmbH")
CHANNELS = np.array(["web", "store", "marketplace", "phone"])
WAREHOUSES = np.array(["AMS", "ANR", "DUS", "LYS"])
RETURN_REASONS = np.array(
    ["defective", "damaged in transit", "not as described", "wrong item", "changed mind"]
)
INSPECTORS = np.array(
    ["Bram Kok", "Inès Roux", "Tomasz Nowak", "Eline Smits", "Ahmed Benali", "Katja Vogel"]
)


@dataclass(frozen=True)
class Suppliers:
    ids: np.ndarray
    names: np.ndarray
    categories: np.ndarray
    defect_rate: np.ndarray  # share of units failing goods-in inspection
    return_rate: np.ndarray  # share of order lines customers send back


@dataclass(frozen=True)
class Skus:
    codes: np.ndarray
    categories: np.ndarray
    supplier_index: np.ndarray
    prices: np.ndarray
    popularity: np.ndarray  # sums to 1


def _rng(seed: int, name: str) -> np.random.Generator:
    """One independent random stream per table: adding a table changes no other."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def _scaled(count: int, scale: float, minimum: int) -> int:
    return max(minimum, round(count * scale))


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()


def _suppliers(seed: int) -> Suppliers:
    rng = _rng(seed, "suppliers")
    combos = [(p, s) for p in SUPPLIER_PREFIXES.split() for s in SUPPLIER_SUFFIXES]
    chosen = rng.permutation(len(combos))[:SUPPLIER_COUNT]
    names = np.array([f"{combos[i][0]} {combos[i][1]}" for i in chosen])
    defect_rate = np.clip(rng.lognormal(np.log(0.018), 0.7, SUPPLIER_COUNT), 0.002, 0.15)
    return Suppliers(
        ids=np.arange(7001, 7001 + SUPPLIER_COUNT),
        names=names,
        categories=CATEGORIES[np.arange(SUPPLIER_COUNT) % len(CATEGORIES)],
        defect_rate=defect_rate,
        return_rate=np.clip(
            0.015 + defect_rate * 1.6 + rng.normal(0, 0.006, SUPPLIER_COUNT), 0.005, 0.2
        ),
    )


def _skus(seed: int, suppliers: Suppliers) -> Skus:
    rng = _rng(seed, "skus")
    supplier_index = rng.integers(0, SUPPLIER_COUNT, SKU_COUNT)
    popularity = 1.0 / np.arange(1, SKU_COUNT + 1) ** 0.8
    popularity = rng.permutation(popularity / popularity.sum())
    return Skus(
        codes=np.array([f"SKU-{10001 + i}" for i in range(SKU_COUNT)]),
        categories=suppliers.categories[supplier_index],
        supplier_index=supplier_index,
        prices=np.round(np.round(rng.lognormal(np.log(29.0), 0.8, SKU_COUNT)) + 0.99, 2),
        popularity=popularity,
    )


def _timestamps(rng, as_of: np.datetime64, n: int, days: int, growth: float = 0.6) -> np.ndarray:
    """n timestamps in the `days` before as_of, more recent and weekday-heavy."""
    offsets = np.arange(days)
    day_dates = (as_of - offsets * DAY).astype("datetime64[D]")
    weekday = (day_dates.astype("int64") + 3) % 7  # 0 = Monday
    weights = (1 + growth * (1 - offsets / days)) * np.where(weekday >= 5, 1.25, 1.0)
    day_index = rng.choice(days, size=n, p=weights / weights.sum())
    seconds = day_index * 86_400 + rng.integers(1, 86_400, n)
    return np.sort(as_of - seconds.astype("timedelta64[s]"))


def _customers_base(seed: int, n: int) -> pd.DataFrame:
    rng = _rng(seed, CUSTOMERS.name)
    first = rng.choice(FIRST_NAMES, n)
    last = rng.choice(LAST_NAMES, n)
    ids = np.arange(10_001, 10_001 + n)
    country = rng.choice(COUNTRIES, n, p=COUNTRY_WEIGHTS)
    city_pick = rng.random(n)
    mail_domains = np.array(["example.com", "example.net", "example.org", "mail.example"])
    mail = rng.choice(mail_domains, n)
    return pd.DataFrame(
        {
            "customer_id": ids,
            "full_name": [f"{f} {ln.replace('-', ' ')}" for f, ln in zip(first, last, strict=True)],
            "email": [
                f"{_ascii(f)}.{_ascii(ln)}{i % 997}@{m}"
                for f, ln, i, m in zip(first, last, ids, mail, strict=True)
            ],
            "country": country,
            "city": [
                CITIES[c][int(p * len(CITIES[c]))] for c, p in zip(country, city_pick, strict=True)
            ],
            "segment": rng.choice(
                ["consumer", "small business", "enterprise"], n, p=[0.82, 0.14, 0.04]
            ),
            "marketing_opt_in": rng.random(n) < 0.58,
        }
    )


def _orders(seed, as_of, n, customers: pd.DataFrame, skus: Skus, suppliers: Suppliers):
    rng = _rng(seed, ORDERS.name)
    ordered_at = _timestamps(rng, as_of, n, HISTORY_DAYS)
    weights = rng.pareto(1.6, len(customers)) + 1
    customer_index = rng.choice(len(customers), n, p=weights / weights.sum())
    sku_index = rng.choice(SKU_COUNT, n, p=skus.popularity)
    supplier_index = skus.supplier_index[sku_index]
    quantity = 1 + rng.poisson(0.45, n)
    unit_price = skus.prices[sku_index]
    gross = quantity * unit_price
    discount = np.round(gross * rng.choice([0.0, 0.1, 0.2], n, p=[0.8, 0.15, 0.05]), 2)
    age_days = (as_of - ordered_at) / DAY
    draw = rng.random(n)
    settled = np.where(
        draw < 0.035,
        "cancelled",
        np.where(draw < 0.035 + suppliers.return_rate[supplier_index], "returned", "completed"),
    )
    status = np.where(
        age_days < 1,
        np.where(draw < 0.5, "processing", "shipped"),
        np.where(age_days < 4, "shipped", settled),
    )
    return pd.DataFrame(
        {
            "order_id": np.arange(100_000_001, 100_000_001 + n),
            "ordered_at": ordered_at,
            "customer_id": customers["customer_id"].to_numpy()[customer_index],
            "channel": rng.choice(CHANNELS, n, p=[0.55, 0.25, 0.15, 0.05]),
            "country": customers["country"].to_numpy()[customer_index],
            "sku": skus.codes[sku_index],
            "category": skus.categories[sku_index],
            "supplier_id": suppliers.ids[supplier_index],
            "quantity": quantity.astype("int32"),
            "unit_price": unit_price,
            "discount": discount,
            "net_amount": np.round(gross - discount, 2),
            "currency": "EUR",
            "status": status,
        }
    )


def _customers(seed, as_of, base: pd.DataFrame, orders: pd.DataFrame) -> pd.DataFrame:
    rng = _rng(seed, CUSTOMERS.name + ".history")
    completed = orders[orders["status"] == "completed"]
    value = completed.groupby("customer_id")["net_amount"].sum()
    first_order = orders.groupby("customer_id")["ordered_at"].min()
    n = len(base)
    fallback = as_of - rng.integers(1, 6 * 365, n) * DAY
    first = base["customer_id"].map(first_order).to_numpy(dtype="datetime64[s]")
    lead_days = rng.integers(0, 400, n) * DAY
    signed_up = np.where(np.isnat(first), fallback, first - lead_days).astype("datetime64[D]")
    customers = base.copy()
    customers["signed_up_on"] = signed_up.astype("datetime64[s]")
    customers["lifetime_value"] = base["customer_id"].map(value).fillna(0.0).round(2).to_numpy()
    return customers[[c.name for c in CUSTOMERS.columns]]


def _daily_revenue(orders: pd.DataFrame) -> pd.DataFrame:
    day = orders["ordered_at"].dt.floor("D")
    grouped = (
        orders.assign(day=day)
        .groupby(["day", "channel"], as_index=False)
        .agg(orders=("order_id", "size"), net_revenue=("net_amount", "sum"))
    )
    grouped["orders"] = grouped["orders"].astype("int32")
    grouped["net_revenue"] = grouped["net_revenue"].round(2)
    return grouped[[c.name for c in DAILY_REVENUE.columns]]


def _returns_by_supplier(seed, orders: pd.DataFrame, suppliers: Suppliers) -> pd.DataFrame:
    rng = _rng(seed, RETURNS_BY_SUPPLIER.name)
    sold = orders[orders["status"] != "cancelled"]
    month = sold["ordered_at"].dt.to_period("M").dt.start_time
    returned = np.where(sold["status"] == "returned", sold["quantity"], 0)
    grouped = (
        sold.assign(month=month, returned=returned)
        .groupby(["month", "supplier_id"], as_index=False)
        .agg(units_sold=("quantity", "sum"), units_returned=("returned", "sum"))
    )
    index = grouped["supplier_id"].to_numpy() - suppliers.ids[0]
    grouped["supplier_name"] = suppliers.names[index]
    grouped["return_rate"] = (grouped["units_returned"] / grouped["units_sold"]).round(4)
    # Poor suppliers' returns are mostly "defective"; good ones' mostly other reasons.
    defective_share = np.clip(suppliers.defect_rate[index] * 12, 0.1, 0.8)
    other = rng.choice(RETURN_REASONS[1:], len(grouped))
    grouped["top_return_reason"] = np.where(
        rng.random(len(grouped)) < defective_share, RETURN_REASONS[0], other
    )
    grouped.loc[grouped["units_returned"] == 0, "top_return_reason"] = None
    for column in ("units_sold", "units_returned"):
        grouped[column] = grouped[column].astype("int32")
    return grouped[[c.name for c in RETURNS_BY_SUPPLIER.columns]]


def _campaigns(seed, as_of, n) -> pd.DataFrame:
    rng = _rng(seed, CAMPAIGNS.name)
    today = as_of.astype("datetime64[D]")
    channels = np.array(["email", "paid search", "social", "display", "affiliate"])
    channel = rng.choice(channels, n, p=[0.3, 0.25, 0.25, 0.12, 0.08])
    starts = np.sort(today - rng.integers(1, HISTORY_DAYS, n) * DAY)
    ends = starts + rng.integers(7, 61, n) * DAY
    themes = rng.choice(
        [
            "Spring garden",
            "Summer sale",
            "Back to school",
            "Cosy autumn",
            "Black Friday",
            "Winter lights",
            "New kitchen",
            "Spring cleaning",
            "Outdoor living",
            "Home office",
        ],
        n,
    )
    year = starts.astype("datetime64[Y]").astype(int) + 1970
    labels = {
        "email": "Email",
        "paid search": "Search",
        "social": "Social",
        "display": "Display",
        "affiliate": "Affiliates",
    }
    base_budget = {
        "email": 4_000,
        "paid search": 25_000,
        "social": 15_000,
        "display": 12_000,
        "affiliate": 6_000,
    }
    budget = np.array([base_budget[c] for c in channel]) * rng.lognormal(0, 0.5, n)
    budget = np.maximum(500, np.round(budget / 500) * 500)
    duration = (ends - starts) / DAY
    elapsed = np.clip((today - starts) / DAY / duration, 0, 1)
    spend = np.round(budget * elapsed * rng.uniform(0.85, 1.05, n), 2)
    cpm_of = {"email": 0.8, "paid search": 9.0, "social": 6.0, "display": 3.5, "affiliate": 5.0}
    cpm = np.array([cpm_of[c] for c in channel])
    impressions = np.round(spend / cpm * 1000).astype("int64")
    ctr = np.array(
        [
            {
                "email": 0.035,
                "paid search": 0.045,
                "social": 0.012,
                "display": 0.004,
                "affiliate": 0.02,
            }[c]
            for c in channel
        ]
    )
    return pd.DataFrame(
        {
            "campaign_id": np.arange(501, 501 + n),
            "name": [
                f"{t} {y} - {labels[c]}" for t, y, c in zip(themes, year, channel, strict=True)
            ],
            "channel": channel,
            "objective": rng.choice(
                ["awareness", "acquisition", "retention", "reactivation"],
                n,
                p=[0.25, 0.4, 0.2, 0.15],
            ),
            "starts_on": starts.astype("datetime64[s]"),
            "ends_on": ends.astype("datetime64[s]"),
            "budget": budget,
            "spend": spend,
            "impressions": impressions,
            "clicks": rng.binomial(impressions, ctr).astype("int32"),
            "conversions": np.zeros(n, dtype="int32"),  # filled from sessions
        }
    )


def _web_sessions(seed, as_of, n, campaigns: pd.DataFrame) -> pd.DataFrame:
    rng = _rng(seed, WEB_SESSIONS.name)
    attributed = rng.random(n) < 0.45
    campaign_index = rng.integers(0, len(campaigns), n)
    starts = campaigns["starts_on"].to_numpy()[campaign_index]
    ends = np.minimum(campaigns["ends_on"].to_numpy()[campaign_index] + DAY, as_of)
    window = (ends - starts).astype("timedelta64[s]").astype("int64")
    in_campaign = starts + (rng.random(n) * window).astype("int64").astype("timedelta64[s]")
    organic = as_of - rng.integers(1, 365 * 86_400, n).astype("timedelta64[s]")
    started_at = np.where(attributed, in_campaign, organic).astype("datetime64[s]")
    channel = campaigns["channel"].to_numpy()[campaign_index]
    source_of = {
        "email": "newsletter",
        "paid search": "google",
        "display": "doubleclick",
        "affiliate": "affiliate",
    }
    social = rng.choice(["facebook", "instagram"], n)
    campaign_source = np.array([source_of.get(c, s) for c, s in zip(channel, social, strict=True)])
    organic_source = rng.choice(["direct", "google", "bing"], n, p=[0.5, 0.42, 0.08])
    pageviews = rng.geometric(0.28, n)
    boost = np.where(attributed & (channel == "email"), 2.0, 1.0) * np.where(pageviews > 4, 2.5, 1)
    converted = rng.random(n) < 0.022 * boost
    sessions = pd.DataFrame(
        {
            "session_id": [f"{x:016x}" for x in rng.integers(0, 2**63, n)],
            "visitor_id": [
                f"v-{x:012x}"
                for x in rng.integers(0, 2**47, max(1, int(n * 0.45)))[
                    rng.integers(0, max(1, int(n * 0.45)), n)
                ]
            ],
            "started_at": started_at,
            "landing_page": rng.choice(
                [
                    "/",
                    "/sale",
                    "/new",
                    "/garden",
                    "/kitchen",
                    "/lighting",
                    "/bath",
                    "/storage",
                    "/inspiration",
                    "/stores",
                ],
                n,
                p=[0.3, 0.14, 0.08, 0.1, 0.1, 0.08, 0.06, 0.06, 0.05, 0.03],
            ),
            "utm_source": np.where(attributed, campaign_source, organic_source),
            "campaign_id": pd.array(
                np.where(attributed, campaigns["campaign_id"].to_numpy()[campaign_index], 0),
                dtype="Int64",
            ),
            "device": rng.choice(["mobile", "desktop", "tablet"], n, p=[0.58, 0.36, 0.06]),
            "country": rng.choice(COUNTRIES, n, p=COUNTRY_WEIGHTS),
            "pageviews": pageviews.astype("int32"),
            "duration_seconds": np.where(
                pageviews == 1, 0, np.round(pageviews * rng.exponential(45, n))
            ).astype("int32"),
            "converted": converted,
        }
    )
    sessions.loc[~attributed, "campaign_id"] = pd.NA
    sessions = sessions.sort_values("started_at", kind="stable", ignore_index=True)
    conversions = sessions[sessions["converted"]].groupby("campaign_id").size()
    campaigns["conversions"] = (
        campaigns["campaign_id"].map(conversions).fillna(0).astype("int32").to_numpy()
    )
    return sessions


def _lead_scores(seed, as_of, n) -> pd.DataFrame:
    rng = _rng(seed, LEAD_SCORES.name)
    companies = np.array(
        [
            f"{a} {b}"
            for a in [
                "Blue",
                "Green",
                "North",
                "Bright",
                "Solid",
                "Open",
                "Prime",
                "Urban",
                "Clear",
                "True",
            ]
            for b in ["Interiors", "Offices", "Hotels", "Facilities", "Retail", "Studios"]
        ]
    )
    company = rng.choice(companies, n)
    first = rng.choice(FIRST_NAMES, n)
    last = rng.choice(LAST_NAMES, n)
    score = np.round(rng.beta(1.6, 3.5, n), 4)
    band = np.select([score >= 0.7, score >= 0.4, score >= 0.15], ["A", "B", "C"], default="D")
    return pd.DataFrame(
        {
            "lead_id": np.arange(900_001, 900_001 + n),
            "email": [
                f"{_ascii(f)}.{_ascii(ln)}@{_ascii(c).replace(' ', '')}.example"
                for f, ln, c in zip(first, last, company, strict=True)
            ],
            "company": company,
            "job_title": rng.choice(
                [
                    "Facility manager",
                    "Office manager",
                    "Purchasing lead",
                    "Interior architect",
                    "Store manager",
                    "Operations director",
                ],
                n,
            ),
            "country": rng.choice(COUNTRIES, n, p=COUNTRY_WEIGHTS),
            "score": score,
            "score_band": band,
            "model_version": "3.0.0-rc.1",
            "scored_at": np.sort(
                as_of - rng.integers(3_600, 7 * 86_400, n).astype("timedelta64[s]")
            ),
        }
    )


def _inventory(seed, as_of, skus: Skus) -> pd.DataFrame:
    rng = _rng(seed, INVENTORY.name)
    series = SKU_COUNT * len(WAREHOUSES)
    demand = np.repeat(skus.popularity, len(WAREHOUSES)) * 1_800 * rng.uniform(0.6, 1.4, series)
    reorder_point = np.ceil(demand * 7).astype("int64") + 5
    order_up_to = np.ceil(demand * 24).astype("int64") + 20
    on_hand = (order_up_to * rng.uniform(0.3, 1.0, series)).astype("int64")
    history = np.empty((INVENTORY_DAYS, series), dtype="int64")
    for day in range(INVENTORY_DAYS):
        on_hand = np.maximum(0, on_hand - rng.poisson(demand))
        restock = on_hand < reorder_point
        late = rng.random(series) < 0.15  # deliveries do not always come on time
        on_hand = np.where(restock & ~late, order_up_to, on_hand)
        history[day] = on_hand
    on_hand_flat = history.reshape(-1)
    reserved = np.minimum(on_hand_flat, rng.poisson(np.tile(demand, INVENTORY_DAYS) * 0.6))
    available = on_hand_flat - reserved
    last_day = as_of.astype("datetime64[D]") - DAY
    dates = last_day - (INVENTORY_DAYS - 1 - np.arange(INVENTORY_DAYS)) * DAY
    rp = np.tile(reorder_point, INVENTORY_DAYS)
    return pd.DataFrame(
        {
            "snapshot_date": np.repeat(dates, series).astype("datetime64[s]"),
            "warehouse": np.tile(WAREHOUSES, SKU_COUNT * INVENTORY_DAYS),
            "sku": np.tile(np.repeat(skus.codes, len(WAREHOUSES)), INVENTORY_DAYS),
            "category": np.tile(np.repeat(skus.categories, len(WAREHOUSES)), INVENTORY_DAYS),
            "on_hand": on_hand_flat.astype("int32"),
            "reserved": reserved.astype("int32"),
            "available": available.astype("int32"),
            "reorder_point": rp.astype("int32"),
            "below_reorder_point": available < rp,
        }
    )


def _supplier_inspections(seed, as_of, n, suppliers: Suppliers) -> pd.DataFrame:
    rng = _rng(seed, SUPPLIER_INSPECTIONS.name)
    supplier_index = rng.integers(0, SUPPLIER_COUNT, n)
    inspected_on = np.sort(as_of.astype("datetime64[D]") - rng.integers(1, 366, n) * DAY).astype(
        "datetime64[s]"
    )
    units = rng.choice([50, 80, 125, 200], n)
    defective = rng.binomial(units, suppliers.defect_rate[supplier_index])
    rate = np.round(defective / units, 4)
    return pd.DataFrame(
        {
            "inspection_id": np.arange(40_001, 40_001 + n),
            "supplier_id": suppliers.ids[supplier_index],
            "supplier_name": suppliers.names[supplier_index],
            "inspected_on": inspected_on,
            "lot_id": [
                f"LOT-{s}-{i:06d}"
                for s, i in zip(
                    suppliers.ids[supplier_index], rng.integers(0, 999_999, n), strict=True
                )
            ],
            "category": suppliers.categories[supplier_index],
            "units_inspected": units.astype("int32"),
            "units_defective": defective.astype("int32"),
            "defect_rate": rate,
            "result": np.select(
                [rate < 0.02, rate < 0.05], ["pass", "conditional"], default="fail"
            ),
            "inspector_name": rng.choice(INSPECTORS, n),
        }
    )


def apply_defects(frame: pd.DataFrame, spec: TableSpec, *, seed: int) -> pd.DataFrame:
    """Plant the spec's defects: stale freshness column, nulls, a partial load (a random
    subset of the rows, order kept), duplicated rows."""
    defects = spec.defects
    rng = _rng(seed, spec.name + ".defects")
    frame = frame.copy()
    if defects.stale_days and spec.freshness_column:
        frame[spec.freshness_column] -= pd.Timedelta(days=defects.stale_days)
    for column, rate in defects.null_rates:
        count = round(rate * len(frame))
        if not count:
            continue
        if pd.api.types.is_integer_dtype(frame[column]):
            frame[column] = frame[column].astype("Int64")
        elif pd.api.types.is_bool_dtype(frame[column]):
            frame[column] = frame[column].astype("boolean")
        rows = rng.choice(len(frame), count, replace=False)
        frame.loc[frame.index[rows], column] = None
    if defects.loaded_share < 1.0:
        kept = np.sort(rng.choice(len(frame), round(defects.loaded_share * len(frame)), False))
        frame = frame.iloc[kept].reset_index(drop=True)
    if defects.duplicate_rows:
        rows = np.sort(rng.choice(len(frame), defects.duplicate_rows, replace=False))
        frame = pd.concat([frame, frame.iloc[rows]], ignore_index=True)
    return frame


def generate_tables(
    *, seed: int, as_of: datetime, rows_scale: float = 1.0
) -> dict[str, pd.DataFrame]:
    """Every demo table by name, defects planted. `as_of` is a naive UTC datetime: the
    newest rows are just before it."""
    now = np.datetime64(as_of.replace(tzinfo=None), "s")
    suppliers = _suppliers(seed)
    skus = _skus(seed, suppliers)
    base = _customers_base(seed, _scaled(CUSTOMER_COUNT, rows_scale, 200))
    orders = _orders(seed, now, _scaled(ORDER_LINES, rows_scale, 1_000), base, skus, suppliers)
    campaigns = _campaigns(seed, now, _scaled(CAMPAIGN_COUNT, rows_scale, 20))
    sessions = _web_sessions(seed, now, _scaled(SESSION_COUNT, rows_scale, 1_000), campaigns)
    tables = {
        ORDERS.name: orders,
        CUSTOMERS.name: _customers(seed, now, base, orders),
        DAILY_REVENUE.name: _daily_revenue(orders),
        RETURNS_BY_SUPPLIER.name: _returns_by_supplier(seed, orders, suppliers),
        CAMPAIGNS.name: campaigns,
        WEB_SESSIONS.name: sessions,
        LEAD_SCORES.name: _lead_scores(seed, now, _scaled(LEAD_COUNT, rows_scale, 200)),
        INVENTORY.name: _inventory(seed, now, skus),
        SUPPLIER_INSPECTIONS.name: _supplier_inspections(
            seed, now, _scaled(INSPECTION_COUNT, rows_scale, 500), suppliers
        ),
    }
    specs = {spec.name: spec for spec in TABLES}
    return {
        name: apply_defects(frame[[c.name for c in specs[name].columns]], specs[name], seed=seed)
        for name, frame in tables.items()
    }
