"""Reading and writing ODCS (and ODPS) documents: YAML in and out, JSON-schema validation,
semantic versions. No database here: products.contracts.services.contracts maps documents onto the
catalog.

YAML is read with a SafeLoader (no Python objects are ever constructed) that also leaves
unquoted dates as text, as YAML 1.2 and JSON do: `2022-10-03` in an ODCS `examples` list
is a string to the ODCS schema, not a date. A document must be JSON: text keys, finite
numbers, at most MAX_NODES values nested at most MAX_DEPTH deep (a YAML alias bomb is
refused, not expanded).
"""

from __future__ import annotations

import functools
import json
import math
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from jsonschema.exceptions import best_match

from portal.api.parsers import MAX_YAML_BYTES

STANDARDS_DIR = Path(__file__).resolve().parents[2] / "standards"
ODCS_SCHEMA_PATH = STANDARDS_DIR / "odcs" / "odcs-json-schema-v3.1.0.json"
ODPS_SCHEMA_PATH = STANDARDS_DIR / "odps" / "odps-json-schema-v1.0.0.json"

# An upload larger than this is refused (413 from the API, a form error on the page).
MAX_CONTRACT_BYTES = MAX_YAML_BYTES
MAX_NODES = 200_000
MAX_DEPTH = 64
# At most this many problems are listed; the last one says how many more there were.
MAX_PROBLEMS = 500
MESSAGE_CHARS = 300

# https://semver.org/#is-there-a-suggested-regular-expression-regex-to-check-a-semver-string
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Problem:
    """Something wrong with (or not mapped from) a document, at a JSON path such as
    `$.schema[0].properties[2].required`."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


class ContractInvalid(Exception):
    """The document does not parse, violates the schema or cannot be mapped; nothing was
    stored. `problems` lists each one with its path."""

    def __init__(self, problems: list[Problem], summary: str = "") -> None:
        self.problems = _capped(sorted(set(problems), key=_problem_order))
        count = len(problems)
        self.summary = summary or (
            f"The contract was not imported: {count} problem{'s' if count != 1 else ''}."
        )
        super().__init__(self.summary)


class ContractTooLarge(Exception):
    """The upload is larger than MAX_CONTRACT_BYTES."""

    def __init__(self, size: int | None = None) -> None:
        limit = f"{MAX_CONTRACT_BYTES // 1024} KiB"
        super().__init__(
            f"The contract is larger than {limit}"
            + (f" ({size:,} bytes)" if size else "")
            + ". Split it, or leave out what the portal does not need."
        )


def _problem_order(problem: Problem) -> tuple:
    # Numeric order of list indexes: $.schema[2] before $.schema[10].
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part)
        for part in re.split(r"[\[\].]+", problem.path)
        if part
    ), problem.message


def _capped(problems: list[Problem]) -> list[Problem]:
    if len(problems) <= MAX_PROBLEMS:
        return problems
    more = len(problems) - MAX_PROBLEMS + 1
    return [*problems[: MAX_PROBLEMS - 1], Problem("$", f"... and {more} more problems.")]


def path_join(path: str, key: str | int) -> str:
    """JSON path of a child: `$.a`, `$.a[0]`, `$['odd key']`."""
    if isinstance(key, int):
        return f"{path}[{key}]"
    if _IDENTIFIER.match(key):
        return f"{path}.{key}"
    return f"{path}[{json.dumps(key)}]"


def short(message: str) -> str:
    message = " ".join(str(message).split())
    return message if len(message) <= MESSAGE_CHARS else message[: MESSAGE_CHARS - 1] + "…"


# --- YAML in -----------------------------------------------------------------------------


# libyaml's parser when PyYAML was built with it (much faster), the same safe constructor.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class ContractLoader(_SafeLoader):
    """yaml.SafeLoader (or its libyaml twin) without the YAML 1.1 timestamp rule: dates
    stay text."""


ContractLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _yaml_problem(exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    what = getattr(exc, "problem", None) or str(exc)
    context = getattr(exc, "context", None)
    return Problem(
        "$", short(f"The YAML does not parse{where}: {what}" + (f" ({context})" if context else ""))
    )


def _json_problems(document: Any) -> list[Problem]:
    """Where the parsed YAML is not JSON (keys that are not text, NaN, binary, sets...)."""
    problems: list[Problem] = []
    stack: list[tuple[str, Any, int]] = [("$", document, 0)]
    nodes = 0
    while stack:
        path, value, depth = stack.pop()
        nodes += 1
        if nodes > MAX_NODES:
            return [Problem("$", f"The document holds more than {MAX_NODES:,} values.")]
        if depth > MAX_DEPTH:
            return [Problem(path, f"The document nests deeper than {MAX_DEPTH} levels.")]
        if isinstance(value, dict):
            for key, child in value.items():
                if not isinstance(key, str):
                    problems.append(
                        Problem(path, f'The key {key!r} is not text: quote it ("{key}").')
                    )
                    continue
                stack.append((path_join(path, key), child, depth + 1))
        elif isinstance(value, list):
            stack.extend((path_join(path, i), child, depth + 1) for i, child in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(Problem(path, "Infinite and NaN numbers are not allowed."))
        elif value is not None and not isinstance(value, str | int | float | bool):
            problems.append(
                Problem(path, f"A {type(value).__name__} value is not JSON: write it as text.")
            )
    return problems


def document_parse(text: str | bytes) -> dict:
    """The YAML (or JSON) text as a JSON-compatible mapping. Raises ContractTooLarge, or
    ContractInvalid with the problem and its line and column."""
    if isinstance(text, bytes):
        if len(text) > MAX_CONTRACT_BYTES:
            raise ContractTooLarge(len(text))
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ContractInvalid(
                [Problem("$", f"The file is not UTF-8 text (byte {exc.start:,} is not).")]
            ) from None
    elif len(text) > MAX_CONTRACT_BYTES:
        raise ContractTooLarge(len(text.encode()))
    if not text.strip():
        raise ContractInvalid([Problem("$", "The file is empty: upload an ODCS YAML contract.")])
    try:
        document = yaml.load(text, Loader=ContractLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ContractInvalid([_yaml_problem(exc)]) from None
    except RecursionError:
        raise ContractInvalid([Problem("$", "The YAML nests too deeply.")]) from None
    if not isinstance(document, dict):
        kind = "a list" if isinstance(document, list) else "a single value"
        raise ContractInvalid(
            [Problem("$", f"A contract is a YAML mapping (key: value lines), not {kind}.")]
        )
    problems = _json_problems(document)
    if problems:
        raise ContractInvalid(problems)
    return document


# --- YAML out ----------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    def increase_indent(self, flow=False, indentless=False):
        # Lists indented under their key, as in the ODCS examples.
        return super().increase_indent(flow, False)


# Django's TextChoices members are str subclasses: write them as the text they are.
_Dumper.add_multi_representer(str, lambda dumper, value: dumper.represent_str(str(value)))


def document_dump(document: dict) -> str:
    """YAML text of a document: keys in the order given, block style, Unicode kept."""
    return yaml.dump(
        document,
        Dumper=_Dumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=100,
    )


# --- JSON schema -------------------------------------------------------------------------


@functools.cache
def _validator(path: Path):
    schema = json.loads(path.read_text())
    cls = jsonschema.validators.validator_for(schema)  # Draft 2019-09, from its $schema
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def _leaf(error: jsonschema.ValidationError) -> jsonschema.ValidationError:
    """The most specific error under a oneOf/anyOf failure (its own path and reason),
    from a branch of the right type: a list of team members is wrong for what its items
    lack, not for not being an object."""
    while error.context:
        candidates = [e for e in error.context if e.validator != "type"] or error.context
        deeper = best_match(candidates)
        if deeper is None or deeper is error:
            break
        error = deeper
    return error


def _message(error: jsonschema.ValidationError) -> str:
    instance = error.instance
    if error.validator == "oneOf" and isinstance(instance, dict):
        # "valid under each of": several alternatives match, e.g. two operators.
        keys = [
            key
            for option in error.validator_value
            for key in option.get("required", [])
            if key in instance
        ]
        if len(keys) > 1:
            return f"Give only one of {', '.join(keys)}."
    message = error.message
    shown = repr(instance)
    if len(shown) > 40 and message.startswith(shown):
        message = "The value" + message[len(shown) :]
    return message


def _schema_problems(path: Path, document: dict) -> list[Problem]:
    problems = []
    for error in _validator(path).iter_errors(document):
        leaf = _leaf(error)
        where = leaf.json_path
        missing = re.match(r"^'(.+)' is a required property$", leaf.message)
        if leaf.validator == "required" and missing:
            # Point at the missing key itself: `$.schema[0].name`, not `$.schema[0]`.
            where = path_join(where, missing.group(1))
        problems.append((leaf.validator, Problem(where, short(_message(leaf)))))
    # "Unevaluated properties" at a path with another error is that error's echo (the
    # keys of a failed alternative count as unevaluated): keep the cause only.
    caused = {p.path for validator, p in problems if validator != "unevaluatedProperties"}
    kept = [
        p
        for validator, p in problems
        if validator != "unevaluatedProperties" or p.path not in caused
    ]
    return sorted(set(kept), key=_problem_order)


def odcs_validate(document: dict) -> list[Problem]:
    """Each violation of the ODCS v3.1.0 JSON schema, with its path (none: valid)."""
    return _schema_problems(ODCS_SCHEMA_PATH, document)


def odps_validate(document: dict) -> list[Problem]:
    """Each violation of the ODPS v1.0.0 JSON schema, with its path (none: valid)."""
    return _schema_problems(ODPS_SCHEMA_PATH, document)


# --- semantic versions -------------------------------------------------------------------


def semver_valid(version: str) -> bool:
    return bool(SEMVER.match(version or ""))


def semver_key(version: str) -> tuple:
    """Sort key of a semantic version: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0 < 1.0.1 < 2.0.0.
    Build metadata is ignored; versions that are not semantic sort first."""
    match = SEMVER.match(version or "")
    if not match:
        return (-1, -1, -1, 0, ())
    major, minor, patch, pre, _build = match.groups()
    if pre is None:
        return (int(major), int(minor), int(patch), 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in pre.split("."))
    return (int(major), int(minor), int(patch), 0, parts)


def semver_next_major(version: str) -> str:
    match = SEMVER.match(version or "")
    return f"{int(match.group(1)) + 1}.0.0" if match else "a new major version"
