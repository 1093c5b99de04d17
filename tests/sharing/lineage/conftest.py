"""Fixtures of the OpenLineage sender: a real HTTP receiver on 127.0.0.1 (a thread) that
records each POST and answers what the test tells it to, and a validator of the vendored
OpenLineage schema built here, apart from the code under test."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest
from jsonschema import Draft202012Validator
from referencing import Registry, Resource

SCHEMA_DIR = Path(__file__).resolve().parents[3] / "sharing" / "lineage" / "schema"


@pytest.fixture
def receiver():
    """An OpenLineage endpoint: `received` holds each accepted body (JSON) and `headers`
    its headers, `paths` every request's path; it answers `statuses.pop(0)` while there
    are some (a 3xx with a Location), then 201. It has no GET: a followed redirect fails."""
    state = SimpleNamespace(received=[], headers=[], statuses=[], paths=[])
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with lock:
                status = state.statuses.pop(0) if state.statuses else 201
                if status < 300:
                    state.received.append(json.loads(body))
                    state.headers.append(dict(self.headers))
                state.paths.append(self.path)
            self.send_response(status)
            if 300 <= status < 400:
                self.send_header("Location", state.url.replace("/lineage", "/moved"))
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": "refused by the test receiver"}' if status >= 300 else b"")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/api/v1/lineage"
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def lineage_settings(settings, receiver):
    """The portal pointed at the receiver; no consumer woken by event_emit (each test
    runs the sender itself, as its task does)."""
    settings.OPENLINEAGE_URL = receiver.url
    settings.OPENLINEAGE_NAMESPACE = "portal"
    settings.OPENLINEAGE_PRODUCER = "https://portal.example.com"
    settings.EVENT_CONSUMER_TASKS = []
    return settings


@pytest.fixture(scope="session")
def spec_errors():
    """errors(body) -> the messages of the vendored spec's schema (its root, as published)
    and of each facet schema a facet names; [] for a valid run event."""
    spec = json.loads((SCHEMA_DIR / "OpenLineage.json").read_text())
    facets = {}
    for path in (SCHEMA_DIR / "facets").glob("*.json"):
        schema = json.loads(path.read_text())
        facets[schema["$id"]] = schema
    registry = Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in [spec, *facets.values()]
    )

    def check(schema, instance):
        validator = Draft202012Validator(
            schema, registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER
        )
        return [error.message for error in validator.iter_errors(instance)]

    def errors(body):
        found = check(spec, body)
        groups = [body["run"].get("facets", {}), body["job"].get("facets", {})]
        for dataset in body.get("inputs", []) + body.get("outputs", []):
            groups += [dataset.get(key, {}) for key in ("facets", "inputFacets", "outputFacets")]
        for group in groups:
            for name, facet in group.items():
                schema = facets[facet["_schemaURL"].split("#")[0]]
                assert name in schema["properties"], f"{name} is not what its schema names"
                found += check(schema, {name: facet})
        return found

    return errors
