"""Check runs and export runs as OpenLineage run events: the translation of the outbox's
`portal.check_run.*` and `portal.export_run.*` events (portal.core.events) into
OpenLineage RunEvents, and their validation against the spec's JSON schema vendored in
schema/ (OpenLineage 1.52.0: spec 2-0-2 and the facets used here; see schema/README.md).

    portal.check_run.started   -> START
    portal.check_run.finished  -> COMPLETE (outcome passed or failed: the checks ran; the
                                  input's dataQualityAssertions facet says what they found)
                                  FAIL (outcome error: they could not run)
    portal.export_run.started  -> START
    portal.export_run.finished -> COMPLETE (succeeded, with the output's row count) / FAIL

A run's START and its COMPLETE/FAIL share one runId: a uuid5 of the portal's own run id.
Datasets are named by what the portal serves (the product key and port), never by the
host of the source behind it."""

from __future__ import annotations

import functools
import json
import uuid
from pathlib import Path

from django.conf import settings
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

from portal.models import Event
from products.catalog.selectors import port_for
from products.choices import CheckOutcome
from products.models import CheckResult
from sharing.models import ExportSchedule

SCHEMA_DIR = Path(__file__).resolve().parent / "schema"
SPEC_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
RUN_EVENT_SCHEMA_URL = f"{SPEC_URL}#/$defs/RunEvent"
JOB_TYPE_FACET_URL = "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json"
ASSERTIONS_FACET_URL = (
    "https://openlineage.io/spec/facets/1-1-0/DataQualityAssertionsDatasetFacet.json"
)
ERROR_FACET_URL = "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json"
OUTPUT_STATISTICS_FACET_URL = (
    "https://openlineage.io/spec/facets/1-0-2/OutputStatisticsOutputDatasetFacet.json"
)
# The outbox types sent as lineage; every other type is passed over.
LINEAGE_TYPES = frozenset(
    {
        "portal.check_run.started",
        "portal.check_run.finished",
        "portal.export_run.started",
        "portal.export_run.finished",
    }
)
# uuid5 namespace of run ids: fixed, so that a run's START and COMPLETE (sent apart, by
# different workers) carry the same runId.
RUN_ID_NAMESPACE = uuid.UUID("8a4c54b2-61a5-4b0e-9d4e-0f3c7d1f5a10")
ERROR_MESSAGE_MAX = 2000


class LineageEventInvalid(Exception):
    """An outbox event that cannot be sent as a valid OpenLineage run event: a bug in the
    event's emitter or in this translation, never the endpoint's fault."""

    def __init__(self, event: Event, problems: list[str]):
        self.event = event
        self.problems = problems
        super().__init__(
            f"outbox event {event.pk} ({event.type}) is not a valid OpenLineage run event: "
            + "; ".join(problems)
        )


# --- translation -------------------------------------------------------------------------


def run_event_for(event: Event) -> dict | None:
    """The OpenLineage RunEvent of outbox `event`; None when its type is not lineage.
    Raises LineageEventInvalid when the event lacks what a run event needs, or when the
    result does not validate against the vendored schema."""
    if event.type not in LINEAGE_TYPES:
        return None
    try:
        if event.type.startswith("portal.check_run."):
            run_event = _check_run_event(event)
        else:
            run_event = _export_run_event(event)
    except (KeyError, TypeError, ValueError) as exc:
        raise LineageEventInvalid(event, [f"its data lacks or mistypes {exc}"]) from exc
    problems = run_event_problems(run_event)
    if problems:
        raise LineageEventInvalid(event, problems)
    return run_event


def _check_run_event(event: Event) -> dict:
    data = event.data
    key = _product_key(event)
    port = str(data["port"])
    dataset = {"namespace": _namespace(), "name": f"{key}.{port}"}
    if event.type == "portal.check_run.started":
        event_type = "START"
        run_facets = {}
    elif data["outcome"] == "error":
        event_type = "FAIL"
        run_facets = {"errorMessage": _error_facet("The checks could not run.")}
    else:
        # Checks that ran and found failures still completed: what they found is in the
        # assertions facet, as OpenLineage's data-quality integrations report it.
        event_type = "COMPLETE"
        run_facets = {}
        dataset["inputFacets"] = {"dataQualityAssertions": _assertions_facet(data, port)}
    return _run_event(
        event,
        event_type=event_type,
        kind="check_run",
        job_name=f"checks.{key}.{port}",
        job_type="CHECK_RUN",
        run_facets=run_facets,
        inputs=[dataset],
        outputs=[],
    )


def _export_run_event(event: Event) -> dict:
    data = event.data
    key = _product_key(event)
    export = str(data["export"])
    output = {"namespace": _namespace(), "name": f"{key}.exports.{export}"}
    port = _export_port(data)
    inputs = [{"namespace": _namespace(), "name": f"{key}.{port}"}] if port else []
    run_facets = {}
    if event.type == "portal.export_run.started":
        event_type = "START"
    elif data["outcome"] == "succeeded":
        event_type = "COMPLETE"
        if isinstance(data.get("rows"), int):
            output["outputFacets"] = {
                "outputStatistics": {
                    **_facet_base(
                        OUTPUT_STATISTICS_FACET_URL, "OutputStatisticsOutputDatasetFacet"
                    ),
                    "rowCount": data["rows"],
                }
            }
    else:
        event_type = "FAIL"
        message = str(data.get("error") or "The export failed.")
        run_facets = {"errorMessage": _error_facet(message)}
    return _run_event(
        event,
        event_type=event_type,
        kind="export_run",
        job_name=f"exports.{key}.{export}",
        job_type="EXPORT",
        run_facets=run_facets,
        inputs=inputs,
        outputs=[output],
    )


def _run_event(
    event: Event,
    *,
    event_type: str,
    kind: str,
    job_name: str,
    job_type: str,
    run_facets: dict,
    inputs: list,
    outputs: list,
) -> dict:
    run = {"runId": str(lineage_run_id(kind=kind, run_id=event.data["run_id"]))}
    if run_facets:
        run["facets"] = run_facets
    return {
        "eventType": event_type,
        "eventTime": event.time.isoformat().replace("+00:00", "Z"),
        "producer": lineage_producer(),
        "schemaURL": RUN_EVENT_SCHEMA_URL,
        "run": run,
        "job": {
            "namespace": _namespace(),
            "name": job_name,
            "facets": {
                "jobType": {
                    **_facet_base(JOB_TYPE_FACET_URL, "JobTypeJobFacet"),
                    "processingType": "BATCH",
                    "integration": "DATA_PRODUCT_PORTAL",
                    "jobType": job_type,
                }
            },
        },
        "inputs": inputs,
        "outputs": outputs,
    }


def lineage_run_id(*, kind: str, run_id) -> uuid.UUID:
    """The OpenLineage runId of the portal's run `run_id` of `kind` (check_run,
    export_run): the same for its START and its COMPLETE/FAIL, distinct per namespace."""
    if run_id in (None, ""):
        raise ValueError("'run_id'")
    return uuid.uuid5(RUN_ID_NAMESPACE, f"{_namespace()}:{kind}:{run_id}")


def lineage_producer() -> str:
    return settings.OPENLINEAGE_PRODUCER


def _namespace() -> str:
    return settings.OPENLINEAGE_NAMESPACE


def _product_key(event: Event) -> str:
    if not event.subject:
        raise ValueError("'subject' (the product key)")
    return event.subject


def _facet_base(schema_id: str, definition: str) -> dict:
    return {"_producer": lineage_producer(), "_schemaURL": f"{schema_id}#/$defs/{definition}"}


def _error_facet(message: str) -> dict:
    return {
        **_facet_base(ERROR_FACET_URL, "ErrorMessageRunFacet"),
        "message": message[:ERROR_MESSAGE_MAX],
        "programmingLanguage": "PYTHON",
    }


def _assertions_facet(data: dict, port: str) -> dict:
    """The run's counts as one assertion over the port (its params hold passed, failed,
    errored), then one assertion per check when the run's results are still there."""
    counts = {name: int(data["counts"][name]) for name in ("passed", "failed", "errored")}
    assertions = [
        {
            "assertion": "checks",
            "name": f"checks of {port}",
            "success": counts["failed"] == 0 and counts["errored"] == 0,
            "params": counts,
        }
    ]
    assertions += _check_assertions(data["run_id"])
    return {
        **_facet_base(ASSERTIONS_FACET_URL, "DataQualityAssertionsDatasetFacet"),
        "assertions": assertions,
    }


def _check_assertions(run_id) -> list[dict]:
    """One assertion per check of the run: its kind, column, severity, name and whether
    it passed. No observed values or messages: they may quote the data."""
    try:
        run_pk = int(run_id)
    except (TypeError, ValueError):
        return []
    results = (
        CheckResult.objects.filter(run_id=run_pk)
        .select_related("quality_check")
        .order_by("quality_check__name", "pk")
    )
    assertions = []
    for result in results:
        check = result.quality_check
        assertion = {
            "assertion": check.kind,
            "name": check.name,
            "success": result.outcome == CheckOutcome.PASS,
            "severity": result.severity,
            "params": {"outcome": result.outcome},
        }
        if check.column:
            assertion["column"] = check.column
        assertions.append(assertion)
    return assertions


def _export_port(data: dict) -> str:
    """The port an export reads: from the event when it names it, else its schedule's
    (as the export run chooses it: the schedule's port, or the product's first); none
    when the export was deleted since."""
    if data.get("port"):
        return str(data["port"])
    schedule = (
        ExportSchedule.objects.filter(pk=data.get("export_id"))
        .select_related("port", "product")
        .first()
    )
    if schedule is None:
        return ""
    port = schedule.port or port_for(product=schedule.product)
    return port.slug if port is not None else ""


# --- validation --------------------------------------------------------------------------


@functools.cache
def _validators() -> tuple[Draft202012Validator, dict[str, Draft202012Validator]]:
    """The spec's validator, and one per vendored facet schema by its $id; every schema is
    in one registry, so the facets' references to the spec resolve offline."""
    spec = json.loads((SCHEMA_DIR / "OpenLineage.json").read_text())
    facets = [
        json.loads(path.read_text()) for path in sorted((SCHEMA_DIR / "facets").glob("*.json"))
    ]
    registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in [spec, *facets]
    )
    checker = Draft202012Validator.FORMAT_CHECKER

    def validator(schema: dict) -> Draft202012Validator:
        return Draft202012Validator(schema, registry=registry, format_checker=checker)

    # The spec's RunEvent definition (its root is oneOf run, dataset and job events): the
    # same verdict for a run event, with messages that name the field at fault.
    run_event = validator({"$ref": RUN_EVENT_SCHEMA_URL})
    return run_event, {schema["$id"]: validator(schema) for schema in facets}


def run_event_problems(run_event: dict) -> list[str]:
    """What makes `run_event` invalid (empty: valid): the spec's schema, then each facet
    against the vendored schema its `_schemaURL` names (a facet naming none is invalid:
    we send only facets we can check)."""
    spec_validator, facet_validators = _validators()
    problems = [_problem(error) for error in spec_validator.iter_errors(run_event)]
    for where, facets in _facet_groups(run_event):
        for name, facet in facets.items():
            schema_id = str(facet.get("_schemaURL", "")).split("#")[0]
            facet_validator = facet_validators.get(schema_id)
            if facet_validator is None:
                problems.append(f"{where}.{name}: no vendored schema for {schema_id!r}")
                continue
            if name not in facet_validator.schema.get("properties", {}):
                problems.append(f"{where}.{name}: {schema_id} defines another facet name")
                continue
            problems += [
                f"{where}.{_problem(error)}" for error in facet_validator.iter_errors({name: facet})
            ]
    return problems


def _facet_groups(run_event: dict):
    yield "run.facets", run_event.get("run", {}).get("facets", {})
    yield "job.facets", run_event.get("job", {}).get("facets", {})
    for side, key in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        for index, dataset in enumerate(run_event.get(side, [])):
            yield f"{side}[{index}].facets", dataset.get("facets", {})
            yield f"{side}[{index}].{key}", dataset.get(key, {})


def _problem(error) -> str:
    path = ".".join(str(part) for part in error.absolute_path) or "(the event)"
    return f"{path}: {error.message}"
