"""ODCS v3.1 <-> the catalog, without the database: `contract_map` reads a (valid) ODCS
document into what the portal keeps (ports and their columns and checks, SLOs, the
product's description, tags, owners and support channels); `contract_document` writes the
catalog's state back as ODCS. docs/contracts.md has the table of what maps to what.

A contract defines completely what it mentions and leaves alone what it omits: a schema
object declares all the columns and quality rules of its output port; `slaProperties`
all the SLOs; `support` all the support channels. Ports the contract does not name are
left as they are.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from django.utils.text import slugify

from products.choices import (
    COLUMN_CHECKS,
    DECLARED_SLO_KINDS,
    ROW_LEVEL_CHECKS,
    STREAM_SLO_KINDS,
    CheckKind,
    Classification,
    Severity,
    SLOKind,
)
from products.contracts.services.documents import Problem, path_join, semver_valid

ODCS_API_VERSION = "v3.1.0"
# The `engine` of ODCS custom quality rules that carry a portal check kind ODCS has no
# library metric for (range, freshness, volume change, schema).
PORTAL_ENGINE = "data-product-portal"
# The custom property of a schema object naming its server (`servers[].id`).
SERVER_PROPERTY = "server"
# Custom properties of `description` carrying the product fields ODCS has no key for.
DESCRIPTION_PROPERTIES = {
    "summary": "summary",
    "intendedUsers": "purpose_intended_users",
    "expectedOutcome": "purpose_expected_outcome",
}
OWNER_ROLES = {"owner", "data owner", "product owner", "data product owner", "dataowner"}
# A freshness SLO read from a latency without a target (`valueExt`) promises this share.
DEFAULT_LATENCY_TARGET = 99.0
TOP_LEVEL_MAPPED = {
    "version",
    "kind",
    "apiVersion",
    "id",
    "name",
    "status",
    "dataProduct",
    "domain",
    "description",
    "tags",
    "servers",
    "schema",
    "team",
    "support",
    "slaProperties",
    "contractCreatedTs",
}
OBJECT_MAPPED = {
    "id",
    "name",
    "physicalName",
    "physicalType",
    "description",
    "properties",
    "quality",
    "customProperties",
    "logicalType",
}
OPERATORS = (
    "mustBe",
    "mustNotBe",
    "mustBeGreaterThan",
    "mustBeGreaterOrEqualTo",
    "mustBeLessThan",
    "mustBeLessOrEqualTo",
    "mustBeBetween",
    "mustNotBeBetween",
)
PERCENT_UNITS = {"percent", "%", "pct", "percentage"}
# Hours per duration unit (ODCS: "d, day, days for days; y, yr, years for years").
UNIT_HOURS = {
    **dict.fromkeys(("s", "sec", "second", "seconds"), 1 / 3600),
    **dict.fromkeys(("m", "min", "minute", "minutes"), 1 / 60),
    **dict.fromkeys(("h", "hr", "hour", "hours"), 1.0),
    **dict.fromkeys(("d", "day", "days"), 24.0),
    **dict.fromkeys(("w", "week", "weeks"), 24.0 * 7),
    **dict.fromkeys(("mo", "month", "months"), 24.0 * 30),
    **dict.fromkeys(("y", "yr", "year", "years"), 24.0 * 365),
}
SLA_KINDS = {
    "latency": SLOKind.FRESHNESS,
    "availability": SLOKind.AVAILABILITY,
    "quality": SLOKind.QUALITY,
    "frequency": SLOKind.FREQUENCY,
    "retention": SLOKind.RETENTION,
    "timeOfAvailability": SLOKind.TIME_OF_AVAILABILITY,
    # Stream ports (no ODCS name of their own): value = the largest lag / invalid rate,
    # valueExt = the target share, as for latency.
    "consumerLag": SLOKind.CONSUMER_LAG,
    "invalidMessages": SLOKind.INVALID_MESSAGES,
}
SLA_PROPERTY_OF = {kind: prop for prop, kind in SLA_KINDS.items()}
LIFECYCLE_TO_ODCS = {
    "draft": "draft",
    "published": "active",
    "deprecated": "deprecated",
    "retired": "retired",
}
DIMENSIONS = {
    CheckKind.NOT_NULL: "completeness",
    CheckKind.UNIQUE: "uniqueness",
    CheckKind.ACCEPTED_VALUES: "conformity",
    CheckKind.RANGE: "conformity",
    CheckKind.PATTERN: "conformity",
    CheckKind.ROW_COUNT: "completeness",
    CheckKind.FRESHNESS: "timeliness",
    CheckKind.VOLUME_CHANGE: "completeness",
    CheckKind.SCHEMA: "conformity",
}
LOGICAL_TYPES = (
    (re.compile(r"\[\]$|^array|^list"), "array"),
    (re.compile(r"^bool"), "boolean"),
    (re.compile(r"timestamp|datetime"), "timestamp"),
    (re.compile(r"^date$"), "date"),
    (re.compile(r"^time\b|^time$|^timetz"), "time"),
    (re.compile(r"^interval"), "string"),
    (
        re.compile(r"serial|(^|[^a-z])(tiny|small|big|huge|u|medium)?int(eger)?\d*($|[^a-z])"),
        "integer",
    ),
    (re.compile(r"numeric|decimal|double|float|real|number|money"), "number"),
    (re.compile(r"char|text|string|uuid|enum|xml|clob"), "string"),
    (re.compile(r"json|struct|map|record|object"), "object"),
)


# --- what a contract maps to ---------------------------------------------------------------


@dataclass
class MappedColumn:
    name: str
    data_type: str = ""
    description: str = ""
    nullable: bool = True
    primary_key: bool = False
    classification: str = Classification.INTERNAL
    path: str = ""


@dataclass
class MappedCheck:
    name: str
    kind: str
    column: str = ""
    params: dict = field(default_factory=dict)
    tolerance_percent: float = 0.0
    severity: str = Severity.ERROR
    schedule: str = ""
    path: str = ""


@dataclass
class MappedPort:
    name: str
    slug: str
    description: str = ""
    table_name: str = ""
    server: dict | None = None
    columns: list[MappedColumn] = field(default_factory=list)
    checks: list[MappedCheck] = field(default_factory=list)
    path: str = ""


@dataclass
class MappedSLO:
    kind: str
    target_percent: float = 100.0
    threshold_hours: float | None = None
    value: str = ""
    unit: str = ""
    description: str = ""
    path: str = ""


@dataclass
class MappedSupport:
    channel: str
    url: str = ""
    tool: str = ""
    scope: str = ""
    description: str = ""
    path: str = ""


@dataclass
class ContractMapping:
    """What a contract says about a product, in the catalog's terms. `None` for a part
    the contract does not mention (it is then left alone)."""

    version: str = ""
    name: str = ""
    domain: str = ""
    product: dict[str, str] = field(default_factory=dict)
    product_paths: dict[str, str] = field(default_factory=dict)
    tags: list[str] | None = None
    owners: list[str] | None = None
    ports: list[MappedPort] = field(default_factory=list)
    slos: list[MappedSLO] | None = None
    support: list[MappedSupport] | None = None
    unmapped: list[Problem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def fields(self) -> dict[str, Any]:
        """Everything mapped, without paths: two contracts meaning the same to the catalog
        have equal fields."""

        def clean(value):
            if isinstance(value, list):
                return [clean(v) for v in value]
            if isinstance(value, dict):
                return {k: clean(v) for k, v in value.items() if k != "path"}
            return value

        data = asdict(self)
        data.pop("unmapped")
        data.pop("problems")
        data.pop("product_paths")
        return clean(data)


# --- reading -------------------------------------------------------------------------------


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value).strip()


def _identifier(value: Any) -> str:
    """A column or table name, verbatim: "amount " is not "amount"."""
    return "" if value is None or isinstance(value, dict | list) else str(value)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _custom_properties(items: Any) -> dict[str, Any]:
    if not isinstance(items, list):
        return {}
    return {
        item["property"]: item.get("value")
        for item in items
        if isinstance(item, dict) and isinstance(item.get("property"), str)
    }


def _operator(rule: dict) -> tuple[str, Any] | None:
    for name in OPERATORS:
        if name in rule:
            return name, rule[name]
    return None


class _Reader:
    def __init__(self) -> None:
        self.unmapped: list[Problem] = []
        self.problems: list[Problem] = []

    def note(self, path: str, message: str) -> None:
        self.unmapped.append(Problem(path, message))

    def problem(self, path: str, message: str) -> None:
        self.problems.append(Problem(path, message))

    # tolerance of a rule counting failing rows
    def tolerance(self, rule: dict, path: str) -> float | None:
        op = _operator(rule)
        percent = _text(rule.get("unit")).lower() in PERCENT_UNITS
        if op is None:
            self.note(path, "No operator (mustBe...): not mapped.")
            return None
        name, raw = op
        value = _number(raw)
        if value is not None:
            if name == "mustBe" and value == 0:
                return 0.0
            if name == "mustBeLessOrEqualTo" and percent and 0 <= value <= 100:
                return value
            if name == "mustBeLessThan" and percent and 0 < value <= 100:
                return value
            if name == "mustBeLessOrEqualTo" and not percent and value == 0:
                return 0.0
            if name == "mustBeLessThan" and not percent and 0 < value <= 1:
                return 0.0
        self.note(
            path,
            f"{name}: {raw!r} ({'percent' if percent else 'rows'}) is not mapped: portal "
            "checks allow a share of failing rows, written mustBe: 0 or "
            "mustBeLessOrEqualTo: <percent> with unit: percent.",
        )
        return None

    def row_count_params(self, rule: dict, path: str) -> dict | None:
        op = _operator(rule)
        if op is not None:
            name, raw = op
            if name == "mustBeBetween" and isinstance(raw, list) and len(raw) == 2:
                low, high = (_number(v) for v in raw)
                if low is not None and high is not None:
                    return {"min": max(0, math.ceil(low)), "max": max(0, math.floor(high))}
            value = _number(raw)
            if value is not None:
                if name == "mustBe":
                    return {"min": int(value), "max": int(value)}
                if name == "mustBeGreaterThan":
                    return {"min": max(0, math.floor(value) + 1)}
                if name == "mustBeGreaterOrEqualTo":
                    return {"min": max(0, math.ceil(value))}
                if name == "mustBeLessThan":
                    return {"max": max(0, math.ceil(value) - 1)}
                if name == "mustBeLessOrEqualTo":
                    return {"max": max(0, math.floor(value))}
        self.note(
            path,
            "This row count rule is not mapped: use mustBe, mustBeBetween, "
            "mustBeGreaterThan(OrEqualTo) or mustBeLessThan(OrEqualTo).",
        )
        return None

    def severity(self, rule: dict) -> str:
        return (
            Severity.WARN
            if _text(rule.get("severity")).lower() in ("warn", "warning", "info", "low")
            else Severity.ERROR
        )

    def schedule(self, rule: dict, path: str) -> str:
        schedule = _text(rule.get("schedule"))
        scheduler = _text(rule.get("scheduler")).lower()
        if schedule and scheduler not in ("", "cron"):
            self.note(path_join(path, "schedule"), f"A {scheduler} schedule is not mapped.")
            return ""
        return schedule

    def check(self, rule: dict, path: str, *, column: str) -> MappedCheck | None:
        """A portal check for an ODCS quality rule, or None (noted)."""
        kind_of = _text(rule.get("type")) or ("library" if "metric" in rule else "")
        base = {
            "severity": self.severity(rule),
            "schedule": self.schedule(rule, path),
            "path": path,
        }
        name = _text(rule.get("name"))
        if kind_of == "library":
            metric = _text(rule.get("metric") or rule.get("rule"))
            arguments = rule.get("arguments") if isinstance(rule.get("arguments"), dict) else {}
            if metric == "rowCount":
                params = self.row_count_params(rule, path)
                if params is None:
                    return None
                return MappedCheck(name=name, kind=CheckKind.ROW_COUNT, params=params, **base)
            if metric == "duplicateValues" and not column:
                columns = arguments.get("properties")
                if isinstance(columns, list) and len(columns) == 1 and isinstance(columns[0], str):
                    column = columns[0]
                else:
                    self.note(path, "Duplicates over several columns are not mapped.")
                    return None
            if not column:
                self.note(
                    path,
                    f"A {metric} rule on a whole object is not mapped: "
                    "put it under the property it checks.",
                )
                return None
            kind, params = None, {}
            if metric == "nullValues":
                kind = CheckKind.NOT_NULL
            elif metric == "missingValues":
                missing = arguments.get("missingValues")
                if missing is None or all(v is None for v in missing or []):
                    kind = CheckKind.NOT_NULL
                else:
                    self.note(path, "Missing values other than null are not mapped.")
                    return None
            elif metric == "duplicateValues":
                kind = CheckKind.UNIQUE
            elif metric == "invalidValues":
                if isinstance(arguments.get("validValues"), list):
                    values = [v for v in arguments["validValues"] if v is not None]
                    if len(values) < len(arguments["validValues"]):
                        self.note(
                            path_join(path, "arguments"),
                            "null among validValues is "
                            "not mapped: the portal never counts nulls as invalid.",
                        )
                    kind, params = CheckKind.ACCEPTED_VALUES, {"values": values}
                elif isinstance(arguments.get("pattern"), str):
                    kind, params = CheckKind.PATTERN, {"regex": arguments["pattern"]}
                else:
                    self.note(
                        path,
                        "invalidValues is mapped with arguments.validValues or "
                        "arguments.pattern only.",
                    )
                    return None
            else:
                self.note(path, f"The metric {metric!r} is not mapped.")
                return None
            tolerance = self.tolerance(rule, path)
            if tolerance is None:
                return None
            return MappedCheck(
                name=name,
                kind=kind,
                column=column,
                params=params,
                tolerance_percent=tolerance,
                **base,
            )
        if kind_of == "sql":
            query = _text(rule.get("query"))
            query = re.sub(r"\$\{(object|table)\}|\{object\}", "{table}", query)
            if re.search(r"\$\{(property|column)\}", query):
                if not column:
                    self.problem(
                        path_join(path, "query"),
                        "${property} is only known in a rule under a property.",
                    )
                    return None
                quoted = '"' + column.replace('"', '""') + '"'
                query = re.sub(r"\$\{(property|column)\}", lambda _m: quoted, query)
            tolerance = self.tolerance(rule, path)
            if tolerance is None:
                return None
            return MappedCheck(
                name=name,
                kind=CheckKind.CUSTOM_SQL,
                params={"sql": query},
                tolerance_percent=tolerance,
                **base,
            )
        if kind_of == "custom" and _text(rule.get("engine")) == PORTAL_ENGINE:
            implementation = rule.get("implementation")
            if not isinstance(implementation, dict):
                self.problem(
                    path_join(path, "implementation"),
                    f"A {PORTAL_ENGINE} rule's implementation is an object "
                    "{kind, params, tolerancePercent}.",
                )
                return None
            kind = _text(implementation.get("kind"))
            if kind not in CheckKind.values:
                self.problem(
                    path_join(path, "implementation.kind"),
                    f"Choose one of {', '.join(CheckKind.values)}.",
                )
                return None
            column = column or _identifier(implementation.get("column"))
            params = implementation.get("params")
            tolerance = _number(implementation.get("tolerancePercent")) or 0.0
            return MappedCheck(
                name=name,
                kind=kind,
                column=column if kind in COLUMN_CHECKS else "",
                params=params if isinstance(params, dict) else {},
                tolerance_percent=tolerance,
                **base,
            )
        if kind_of == "custom":
            self.note(
                path,
                f"A rule for the {_text(rule.get('engine')) or 'unnamed'} engine "
                "is not mapped (kept in the contract).",
            )
            return None
        self.note(path, "A text rule is not mapped (kept in the contract).")
        return None

    def checks(self, rules: Any, path: str, *, column: str, out: list[MappedCheck]) -> None:
        if not isinstance(rules, list):
            return
        for i, rule in enumerate(rules):
            if isinstance(rule, dict):
                check = self.check(rule, path_join(path, i), column=column)
                if check is not None:
                    out.append(check)

    def column(self, prop: dict, path: str) -> MappedColumn:
        raw_class = _text(prop.get("classification"))
        classification = raw_class.lower()
        if classification not in Classification.values:
            if raw_class:
                self.note(
                    path_join(path, "classification"),
                    f"{raw_class!r} is not a portal classification "
                    f"({', '.join(Classification.values)}): the column is internal.",
                )
            classification = Classification.INTERNAL
        if prop.get("unique") is True:
            self.note(
                path_join(path, "unique"),
                "unique is not mapped: add a duplicateValues quality rule to check it.",
            )
        if prop.get("properties") or prop.get("items"):
            self.note(path, "Nested properties are not mapped: the column is one value.")
        return MappedColumn(
            name=_identifier(prop.get("name")),
            data_type=_text(prop.get("physicalType") or prop.get("logicalType")),
            description=_text(prop.get("description")),
            nullable=prop.get("required") is not True,
            primary_key=prop.get("primaryKey") is True,
            classification=classification,
            path=path,
        )

    def port(self, obj: dict, path: str, servers: dict[str, dict]) -> MappedPort | None:
        name = _text(obj.get("name"))
        slug = slugify(name)[:80]
        if not slug:
            self.problem(path_join(path, "name"), "Name the object with letters or digits.")
            return None
        server_name = _text(_custom_properties(obj.get("customProperties")).get(SERVER_PROPERTY))
        server = servers.get(server_name) if server_name else None
        if server_name and server is None:
            self.problem(
                path_join(path, "customProperties"),
                f"No server with id or name {server_name!r} in servers.",
            )
        if server is None and len(servers) == 1:
            server = next(iter(servers.values()))
        extra = sorted(set(obj) - OBJECT_MAPPED)
        if extra:
            self.note(path, f"Not mapped: {', '.join(extra)}.")
        port = MappedPort(
            name=name,
            slug=slug,
            description=_text(obj.get("description")),
            table_name=_identifier(obj.get("physicalName")) or name,
            server=server,
            path=path,
        )
        seen: set[str] = set()
        for j, prop in enumerate(obj.get("properties") or []):
            prop_path = path_join(path_join(path, "properties"), j)
            column = self.column(prop, prop_path)
            if column.name in seen:
                self.problem(
                    path_join(prop_path, "name"), f"The property {column.name!r} is declared twice."
                )
                continue
            seen.add(column.name)
            port.columns.append(column)
            self.checks(
                prop.get("quality"),
                path_join(prop_path, "quality"),
                column=column.name,
                out=port.checks,
            )
        self.checks(obj.get("quality"), path_join(path, "quality"), column="", out=port.checks)
        _name_checks(port.checks)
        return port

    def slos(self, items: list, path: str) -> list[MappedSLO]:
        slos: list[MappedSLO] = []
        taken: set[str] = set()
        for i, item in enumerate(items):
            item_path = path_join(path, i)
            prop = _text(item.get("property"))
            kind = SLA_KINDS.get(prop) or SLA_KINDS.get(
                next((k for k in SLA_KINDS if k.lower() == prop.lower()), "")
            )
            if kind is None:
                self.note(item_path, f"The SLA property {prop!r} is not mapped.")
                continue
            if kind in taken:
                self.note(item_path, f"A second {prop} is not mapped: one SLO per kind.")
                continue
            slo = self.slo(kind, item, item_path)
            if slo is not None:
                taken.add(kind)
                slos.append(slo)
        return slos

    def slo(self, kind: str, item: dict, path: str) -> MappedSLO | None:
        value, unit = item.get("value"), _text(item.get("unit"))
        slo = MappedSLO(
            kind=kind,
            value=_text(value),
            unit=unit,
            description=_text(item.get("description")),
            path=path,
        )
        if kind == SLOKind.FRESHNESS:
            amount = _number(value)
            hours = UNIT_HOURS.get(unit.lower() if unit else "h")
            if amount is None or amount <= 0:
                self.problem(path_join(path, "value"), "A latency is a number above 0.")
                return None
            if hours is None:
                self.problem(
                    path_join(path, "unit"),
                    f"Unknown unit {unit!r}: use one of s, m (minutes), h, d, w, mo, y.",
                )
                return None
            target = _number(item.get("valueExt"))
            slo.threshold_hours = round(amount * hours, 6)
            if hours == 1.0:  # hours are the portal's own unit: nothing else to keep
                slo.value, slo.unit = "", ""
            slo.target_percent = target if target is not None else DEFAULT_LATENCY_TARGET
        elif kind in (SLOKind.AVAILABILITY, SLOKind.QUALITY):
            target = _number(value)
            if target is None:
                self.problem(path_join(path, "value"), "Give the target share, in percent.")
                return None
            if unit and unit.lower() not in PERCENT_UNITS:
                self.problem(path_join(path, "unit"), "The unit of this target is percent.")
                return None
            slo.target_percent = target
            slo.value, slo.unit = "", ""
        elif kind in STREAM_SLO_KINDS:
            amount = _number(value)
            if amount is None or amount < 0:
                self.problem(
                    path_join(path, "value"),
                    "Give the largest consumer lag (messages) or invalid messages per minute "
                    "allowed: a number, 0 or more.",
                )
                return None
            target = _number(item.get("valueExt"))
            slo.target_percent = target if target is not None else DEFAULT_LATENCY_TARGET
        elif kind in DECLARED_SLO_KINDS and not slo.value:
            self.problem(path_join(path, "value"), "Give the value of this service level.")
            return None
        return slo


def _name_checks(checks: list[MappedCheck]) -> None:
    """Give unnamed checks the name the portal would give them, unique within the port."""
    taken: set[str] = set()
    for check in checks:
        base = (
            check.name
            or (
                f"{CheckKind(check.kind).label} {check.column}".strip()
                if check.kind in CheckKind.values
                else "Check"
            )
        )[:200]
        name, n = base, 2
        while name in taken:
            suffix = f" ({n})"
            name, n = base[: 200 - len(suffix)] + suffix, n + 1
        check.name = name
        taken.add(name)


def _servers(items: Any) -> dict[str, dict]:
    servers: dict[str, dict] = {}
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            for key in (_text(item.get("id")), _text(item.get("server"))):
                if key:
                    servers.setdefault(key, item)
    return servers


def contract_map(document: dict) -> ContractMapping:
    """What a schema-valid ODCS document says about a product, with what was not mapped
    (`unmapped`) and what cannot be (`problems`)."""
    reader = _Reader()
    mapping = ContractMapping()
    mapping.version = _text(document.get("version"))
    if not semver_valid(mapping.version):
        reader.problem(
            "$.version",
            f"{mapping.version!r} is not a semantic version: write "
            "major.minor.patch, such as 1.2.0.",
        )
    mapping.name = _text(document.get("name")) or _text(document.get("dataProduct"))
    mapping.domain = _text(document.get("domain"))

    description = document.get("description")
    if isinstance(description, dict):
        for key, field_name in (("purpose", "description"), ("usage", "purpose_use_case")):
            if key in description:
                mapping.product[field_name] = _text(description[key])
                mapping.product_paths[field_name] = f"$.description.{key}"
        for i, item in enumerate(description.get("customProperties") or []):
            field_name = DESCRIPTION_PROPERTIES.get(item.get("property"))
            item_path = f"$.description.customProperties[{i}]"
            if field_name:
                mapping.product[field_name] = _text(item.get("value"))
                mapping.product_paths[field_name] = path_join(item_path, "value")
            else:
                reader.note(
                    item_path, f"The custom property {item.get('property')!r} is not mapped."
                )
        for key in ("limitations", "authoritativeDefinitions"):
            if key in description:
                reader.note(f"$.description.{key}", "Not mapped (kept in the contract).")
    if "tags" in document:
        mapping.tags = [_text(tag) for tag in document["tags"] or []]

    team = document.get("team")
    if team is not None:
        members = team.get("members", []) if isinstance(team, dict) else team
        mapping.owners = [
            _text(member.get("username"))
            for member in members or []
            if _text(member.get("role")).lower() in OWNER_ROLES and not member.get("dateOut")
        ]
        if not mapping.owners:
            mapping.owners = None
            reader.note(
                "$.team",
                "No current member with the role owner: the product's owners are left as they are.",
            )

    servers = _servers(document.get("servers"))
    slugs: dict[str, str] = {}
    for i, obj in enumerate(document.get("schema") or []):
        path = f"$.schema[{i}]"
        port = reader.port(obj, path, servers)
        if port is None:
            continue
        if port.slug in slugs:
            reader.problem(
                path_join(path, "name"),
                f"Two objects are named {port.slug!r} (also {slugs[port.slug]}).",
            )
            continue
        slugs[port.slug] = path
        mapping.ports.append(port)

    if "slaProperties" in document:
        mapping.slos = reader.slos(document["slaProperties"] or [], "$.slaProperties")

    if "support" in document:
        mapping.support = [
            MappedSupport(
                channel=_text(item.get("channel")),
                url=_text(item.get("url")),
                tool=_text(item.get("tool")),
                scope=_text(item.get("scope")),
                description=_text(item.get("description")),
                path=f"$.support[{i}]",
            )
            for i, item in enumerate(document["support"] or [])
        ]
    for key in sorted(set(document) - TOP_LEVEL_MAPPED):
        reader.note(
            f"$.{key}" if re.match(r"^\w+$", key) else "$",
            f"{key}: not mapped (kept in the contract).",
        )
    mapping.unmapped = reader.unmapped
    mapping.problems = reader.problems
    return mapping


# --- writing -------------------------------------------------------------------------------


def logical_type(data_type: str) -> str:
    text = (data_type or "").strip().lower()
    for pattern, logical in LOGICAL_TYPES:
        if pattern.search(text):
            return logical
    return ""


def _scalar(text: str) -> Any:
    """A stored SLA value back to the number it was, when it was one."""
    if re.fullmatch(r"-?\d+", text or ""):
        return int(text)
    if re.fullmatch(r"-?\d+\.\d*(e-?\d+)?", text or "", re.IGNORECASE):
        return float(text)
    return text


def _plain_number(value: float) -> int | float:
    return int(value) if float(value).is_integer() else value


def _operator_out(check) -> dict:
    if check.tolerance_percent:
        return {"mustBeLessOrEqualTo": _plain_number(check.tolerance_percent), "unit": "percent"}
    return {"mustBe": 0}


def quality_rule(check) -> dict:
    """An ODCS quality rule for a portal check (a Check or a MappedCheck)."""
    params = check.params or {}
    rule: dict[str, Any] = {"name": check.name}
    kind = check.kind
    if kind in (
        CheckKind.NOT_NULL,
        CheckKind.UNIQUE,
        CheckKind.ACCEPTED_VALUES,
        CheckKind.PATTERN,
        CheckKind.ROW_COUNT,
    ):
        rule["type"] = "library"
        if kind == CheckKind.ROW_COUNT:
            rule["metric"] = "rowCount"
            low, high = params.get("min"), params.get("max")
            if low is not None and high is not None:
                rule.update({"mustBe": low} if low == high else {"mustBeBetween": [low, high]})
            elif low is not None:
                rule["mustBeGreaterOrEqualTo"] = low
            else:
                rule["mustBeLessOrEqualTo"] = high
        else:
            rule["metric"] = {
                CheckKind.NOT_NULL: "nullValues",
                CheckKind.UNIQUE: "duplicateValues",
                CheckKind.ACCEPTED_VALUES: "invalidValues",
                CheckKind.PATTERN: "invalidValues",
            }[kind]
            if kind == CheckKind.ACCEPTED_VALUES:
                rule["arguments"] = {"validValues": list(params.get("values") or [])}
            elif kind == CheckKind.PATTERN:
                rule["arguments"] = {"pattern": params.get("regex", "")}
            rule.update(_operator_out(check))
    elif kind == CheckKind.CUSTOM_SQL:
        rule["type"] = "sql"
        rule["query"] = str(params.get("sql", "")).replace("{table}", "${object}")
        rule.update(_operator_out(check))
    else:
        rule["type"] = "custom"
        rule["engine"] = PORTAL_ENGINE
        implementation: dict[str, Any] = {"kind": kind, "params": dict(params)}
        if kind in ROW_LEVEL_CHECKS:
            implementation["tolerancePercent"] = check.tolerance_percent
        rule["implementation"] = implementation
    if kind in DIMENSIONS:
        rule["dimension"] = DIMENSIONS[kind]
    rule["severity"] = "warning" if check.severity == Severity.WARN else "error"
    if check.schedule:
        rule["scheduler"] = "cron"
        rule["schedule"] = check.schedule
    return rule


def sla_property(slo) -> dict:
    """An ODCS SLA property for a portal SLO (a ServiceLevelObjective or a MappedSLO)."""
    prop = SLA_PROPERTY_OF[slo.kind]
    item: dict[str, Any] = {"property": prop}
    if slo.kind == SLOKind.FRESHNESS:
        hours = UNIT_HOURS.get((slo.unit or "").lower())
        amount = _scalar(slo.value)
        if (
            hours is not None
            and isinstance(amount, int | float)
            and math.isclose(amount * hours, slo.threshold_hours or 0, rel_tol=1e-6)
        ):
            item.update(value=amount, unit=slo.unit)
        else:
            item.update(value=_plain_number(round(slo.threshold_hours or 0, 6)), unit="h")
        item["valueExt"] = _plain_number(slo.target_percent)
    elif slo.kind in (SLOKind.AVAILABILITY, SLOKind.QUALITY):
        item.update(value=_plain_number(slo.target_percent), unit="percent")
    elif slo.kind in STREAM_SLO_KINDS:
        item["value"] = _scalar(slo.value)
        if slo.unit:
            item["unit"] = slo.unit
        item["valueExt"] = _plain_number(slo.target_percent)
    else:
        item["value"] = _scalar(slo.value)
        if slo.unit:
            item["unit"] = slo.unit
    if slo.description:
        item["description"] = slo.description
    return item
