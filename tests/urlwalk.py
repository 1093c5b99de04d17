"""Every route of the URLconf, with what is needed to call it: its kwargs (and the regex
each must match), the HTTP methods its view answers, and a way to build a path from
values. Tests that must cover every endpoint (CSRF, permissions) walk `routes()`, so a
route added later is covered without touching them."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.resolvers import RegexPattern, RoutePattern

WRITE_METHODS = ("post", "put", "patch", "delete")

# A value for a <uuid:...> kwarg (a query's id) that names nothing.
NOWHERE_UUID = "00000000-0000-4000-8000-000000000000"


@dataclass
class Part:
    """One piece of a route: a Django `path()` route or a regex (DRF routers)."""

    pattern: RoutePattern | RegexPattern

    def kwargs(self) -> dict[str, str]:
        """kwarg name -> the regex its value must match."""
        if isinstance(self.pattern, RoutePattern):
            return {name: conv.regex for name, conv in self.pattern.converters.items()}
        return {name: regex for name, regex in _named_groups(str(self.pattern))}

    def build(self, values: dict[str, str]) -> str:
        text = str(self.pattern)
        if isinstance(self.pattern, RoutePattern):
            return re.sub(r"<(?:\w+:)?(\w+)>", lambda m: values[m.group(1)], text)
        out, index = [], 0
        for start, end, name in _group_spans(text):
            out.append(text[index:start])
            out.append(values[name])
            index = end
        out.append(text[index:])
        built = "".join(out)
        built = built.removeprefix("^").removesuffix("$").removesuffix(r"\Z")
        return re.sub(r"\\(.)", r"\1", built)


def _group_spans(text: str):
    """(start, end, name) of each top-level `(?P<name>...)` group of a regex."""
    for match in re.finditer(r"\(\?P<(\w+)>", text):
        depth, position = 1, match.end()
        while depth and position < len(text):
            char = text[position]
            if char == "\\":
                position += 2
                continue
            depth += {"(": 1, ")": -1}.get(char, 0)
            position += 1
        yield match.start(), position, match.group(1)


def _named_groups(text: str):
    for start, end, name in _group_spans(text):
        inner = text[start:end]
        yield name, inner[inner.index(">") + 1 : -1]


@dataclass
class Route:
    name: str  # namespace:name, or the route when it has no name
    parts: list[Part]
    callback: object
    kwargs: dict[str, str] = field(default_factory=dict)

    @property
    def route(self) -> str:
        return "".join(str(part.pattern) for part in self.parts)

    @property
    def is_api(self) -> bool:
        return self.route.startswith("api/")

    @property
    def is_admin(self) -> bool:
        return self.route.startswith("admin/")

    @property
    def view_class(self):
        return getattr(self.callback, "view_class", None) or getattr(self.callback, "cls", None)

    def methods(self) -> list[str]:
        """The HTTP methods the view handles (lower case), OPTIONS and HEAD aside."""
        actions = getattr(self.callback, "actions", None)
        if actions:  # a DRF viewset route (DRF adds "head" to it once called)
            return sorted(m for m in actions if m in ("get", *WRITE_METHODS))
        cls = self.view_class
        if cls is None:  # a function view: it may answer anything
            return ["get", "post"]
        return [m for m in ("get", *WRITE_METHODS) if hasattr(cls, m)]

    def path(self, values: dict[str, str]) -> str | None:
        """The path for these kwarg values, or None when one does not fit its regex."""
        for name, regex in self.kwargs.items():
            if not re.fullmatch(regex, values[name]):
                return None
        path = "/" + "".join(part.build(values) for part in self.parts)
        match = resolve(path)
        assert match.func is self.callback, f"{path} resolved to {match.view_name}, not {self.name}"
        return path


def routes() -> list[Route]:
    found: list[Route] = []

    def walk(patterns, parts, namespaces):
        for entry in patterns:
            if isinstance(entry, URLResolver):
                space = namespaces + ([entry.namespace] if entry.namespace else [])
                walk(entry.url_patterns, [*parts, Part(entry.pattern)], space)
            elif isinstance(entry, URLPattern):
                chain = [*parts, Part(entry.pattern)]
                kwargs: dict[str, str] = {}
                for part in chain:
                    kwargs.update(part.kwargs())
                route = Route(
                    name=":".join([*namespaces, entry.name]) if entry.name else "",
                    parts=chain,
                    callback=entry.callback,
                    kwargs=kwargs,
                )
                route.name = route.name or route.route
                found.append(route)

    walk(get_resolver().url_patterns, [], [])
    return found


def page_routes(values: dict[str, str]) -> list[tuple[Route, str]]:
    """The page routes (not the API, not the admin, answering GET, not signing in or out)
    whose path can be built from `values` (kwarg name -> value), with that path. The
    browser walks (CSP, accessibility, phone width) open each; a caller still checks the
    answer is an HTML page, since downloads and HTMX fragments share these routes."""
    found = []
    for route in routes():
        if route.is_api or route.is_admin or "get" not in route.methods():
            continue
        if not set(route.kwargs) <= set(values):
            continue
        path = route.path({name: values[name] for name in route.kwargs})
        if path is None or path.startswith(("/logout", "/login", "/delta-sharing/")):
            continue
        found.append((route, path))
    return found
