"""Forms of the embeds pages: a new embed, a host application with its first key, another
key, a token to deny. They parse input (lines into parameters and origins, the source
into a metric or a port); sharing.embeds services hold the rules and name each bad
field (their messages go beside the field, nothing is saved)."""

from __future__ import annotations

from django import forms

from products.choices import MetricGrain
from sharing.choices import EmbedChart, EmbedKeyAlgorithm
from sharing.embeds.services.embeds import (
    MAX_CACHE_SECONDS,
    MAX_ORIGINS,
    MAX_PARAMS,
    MAX_ROW_CAP,
    MAX_TABLE_COLUMNS,
)

METRIC_PREFIX = "metric:"
PORT_PREFIX = "port:"
SCOPE_EMBED, SCOPE_DOMAIN = "embed", "domain"  # whom an application signs tokens for
PEM_PLACEHOLDER = "-----BEGIN PUBLIC KEY-----\n…\n-----END PUBLIC KEY-----"

# The services' names of fields this form shows under another name.
FORM_FIELD_OF = {"metric": "source", "port": "source", "port_slug": "source"}


class EmbedForm(forms.Form):
    title = forms.CharField(
        max_length=200,
        help_text="Shown above the chart on the host's page, e.g. “Your orders this month”.",
    )
    chart = forms.ChoiceField(
        label="Show as",
        choices=EmbedChart.choices,
        widget=forms.RadioSelect,
        initial=EmbedChart.TABLE,
    )
    source = forms.ChoiceField(
        label="What it shows",
        help_text="A metric of this product (its values, computed as its page computes "
        "them), or the rows of one of its output ports.",
    )
    columns = forms.CharField(
        required=False,
        widget=forms.TextInput(
            attrs={"autocomplete": "off", "spellcheck": "false", "placeholder": "country, amount"}
        ),
        help_text="Port rows only, separated by commas. A table: the columns it shows (1 to "
        f"{MAX_TABLE_COLUMNS}). A chart: its x column first, then one or more numeric y columns.",
    )
    grain = forms.ChoiceField(
        label="Per",
        required=False,
        choices=[("", "No time grain"), *MetricGrain.choices],
        help_text="A metric only: one value per day, week or month (the metric needs a time "
        "column). A line or area chart needs one; a KPI tile draws it as its sparkline.",
    )
    dimension = forms.ChoiceField(
        label="By",
        required=False,
        help_text="A metric only: one value per value of this dimension (a bar chart or a "
        "table). Choose a grain or a dimension, not both.",
    )
    locked_params = forms.CharField(
        label="Locked parameters",
        required=False,
        widget=forms.Textarea(
            attrs={"rows": 2, "spellcheck": "false", "placeholder": "tenant = customer_id"}
        ),
        help_text="One per line: a parameter the host's token must carry, = the column it "
        "filters on (equality). A viewer then sees only the rows of their own value, "
        f"e.g. “tenant = customer_id”. At most {MAX_PARAMS}.",
    )
    allowed_origins = forms.CharField(
        label="Allowed origins",
        error_messages={
            "required": "Name at least one origin that may show the embed "
            "(https://app.example.com)."
        },
        widget=forms.Textarea(
            attrs={"rows": 2, "spellcheck": "false", "placeholder": "https://app.example.com"}
        ),
        help_text="One per line: the sites that may show the embed (scheme, host and port, no "
        f"path). Any other site gets nothing. At most {MAX_ORIGINS}.",
    )
    cache_seconds = forms.IntegerField(
        label="Cache (seconds)",
        required=False,
        initial=60,
        widget=forms.NumberInput(attrs={"min": 0, "max": MAX_CACHE_SECONDS}),
        help_text=f"How long an answer is reused for the same parameters: 0 to "
        f"{MAX_CACHE_SECONDS:,}.",
    )
    row_cap = forms.IntegerField(
        label="At most rows",
        required=False,
        initial=500,
        widget=forms.NumberInput(attrs={"min": 1, "max": MAX_ROW_CAP}),
        help_text=f"Rows (or values) one answer holds: 1 to {MAX_ROW_CAP:,}.",
    )
    allow_csv = forms.BooleanField(
        label="Offer a CSV download of what the viewer sees",
        required=False,
    )
    show_last_good = forms.BooleanField(
        label="Show the last good values during an incident",
        required=False,
        help_text="While the product has an open incident or a failing error check, show the "
        "last values served without one, with their date, instead of a notice.",
    )

    def __init__(self, *args, ports: list, metrics: list, **kwargs):
        super().__init__(*args, **kwargs)
        self.metrics = {metric.key: metric for metric in metrics}
        self.ports = {port.slug: port for port in ports}
        choices = []
        if metrics:
            choices.append(
                (
                    "Metrics",
                    [
                        (f"{METRIC_PREFIX}{metric.key}", f"{metric.name} ({metric.key})")
                        for metric in metrics
                    ],
                )
            )
        if ports:
            choices.append(
                (
                    "Rows of a port",
                    [(f"{PORT_PREFIX}{port.slug}", port.name) for port in ports],
                )
            )
        self.fields["source"].choices = choices
        dimensions = sorted({name for metric in metrics for name in metric.dimensions})
        self.fields["dimension"].choices = [("", "No dimension"), *((d, d) for d in dimensions)]
        if not dimensions:
            del self.fields["dimension"]
        if not any(metric.time_column for metric in metrics):
            del self.fields["grain"]

    @property
    def has_metrics(self) -> bool:
        return bool(self.metrics)

    def metric_fields(self) -> list:
        return [self[name] for name in ("grain", "dimension") if name in self.fields]

    def clean_locked_params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data["locked_params"].splitlines(), 1):
            if not line.strip():
                continue
            name, equals, column = line.partition("=")
            name, column = name.strip(), column.strip()
            if not equals or not name or not column:
                raise forms.ValidationError(
                    f"Line {number}: write the parameter, = and its column, e.g. "
                    "“tenant = customer_id”."
                )
            if name in params:
                raise forms.ValidationError(f"Line {number}: {name!r} is named twice.")
            params[name] = column
        return params

    def clean_allowed_origins(self) -> list[str]:
        return [line.strip() for line in self.cleaned_data["allowed_origins"].split() if line]

    def clean_columns(self) -> list[str]:
        text = self.cleaned_data["columns"]
        return [part.strip() for part in text.split(",") if part.strip()]

    def service_kwargs(self) -> dict:
        """embed_create's arguments (the product and who aside)."""
        data = self.cleaned_data
        source = data["source"]
        kwargs = {
            "title": data["title"],
            "chart": data["chart"],
            "locked_params": data["locked_params"],
            "allowed_origins": data["allowed_origins"],
            "cache_seconds": data["cache_seconds"],
            "row_cap": data["row_cap"],
            "allow_csv": data["allow_csv"],
            "show_last_good": data["show_last_good"],
        }
        if source.startswith(METRIC_PREFIX):
            kwargs["metric"] = self.metrics[source.removeprefix(METRIC_PREFIX)]
            kwargs["grain"] = data.get("grain") or ""
            kwargs["dimension"] = data.get("dimension") or ""
        else:
            kwargs["port_slug"] = source.removeprefix(PORT_PREFIX)
            kwargs["columns"] = data["columns"]
        return kwargs


class _KeyFields(forms.Form):
    kid = forms.CharField(
        label="Key id (kid)",
        max_length=100,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text="The kid your tokens' header names, e.g. “shop-2025-01”: letters, digits "
        "and . _ : -, unique across the portal.",
    )
    algorithm = forms.ChoiceField(
        choices=EmbedKeyAlgorithm.choices,
        initial=EmbedKeyAlgorithm.EDDSA,
        help_text="Ed25519 (EdDSA) is short and fast; RSA keys have at least 2,048 bits.",
    )
    public_key = forms.CharField(
        label="Public key (PEM)",
        widget=forms.Textarea(
            attrs={"rows": 4, "spellcheck": "false", "placeholder": PEM_PLACEHOLDER}
        ),
        help_text="The public half only. The private key stays on your application's "
        "server: the portal never asks for it.",
    )


class EmbedAppForm(_KeyFields):
    name = forms.CharField(
        label="Application",
        max_length=120,
        help_text="The host application, as your team calls it, e.g. “Customer portal”.",
    )
    scope = forms.ChoiceField(
        label="Signs tokens for",
        required=False,  # this embed, unless the whole domain is chosen
        widget=forms.RadioSelect,
        initial=SCOPE_EMBED,
    )
    field_order = ["name", "scope", "kid", "algorithm", "public_key"]

    def __init__(self, *args, embed_title: str, domain_name: str | None, **kwargs):
        super().__init__(*args, **kwargs)
        if domain_name is None:  # not a manager of the domain: this embed only
            del self.fields["scope"]
        else:
            self.fields["scope"].choices = [
                (SCOPE_EMBED, f"This embed only (“{embed_title}”)"),
                (SCOPE_DOMAIN, f"Every embed of the {domain_name} domain's products"),
            ]


class EmbedKeyForm(_KeyFields):
    pass


class EmbedDenyForm(forms.Form):
    jti = forms.CharField(
        label="Token id (jti)",
        max_length=200,
        widget=forms.TextInput(attrs={"autocomplete": "off", "spellcheck": "false"}),
        help_text="The jti claim of a token that leaked: it is refused from its next "
        "request on, though it has not expired.",
    )
