"""Forms of the catalog pages. They parse input; the services in products.services decide
what is allowed and save it (their ValidationErrors are attached with
portal.core.forms.add_service_errors)."""

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q

from products.catalog.services.ports import PORT_FIELDS
from products.catalog.services.products import EDITABLE_FIELDS, MAX_TAGS
from products.choices import Audience, Classification, FileFormat, PortKind
from products.models import DataProduct, DataSource

DEFAULT_CHECK_SCHEDULE = DataProduct._meta.get_field("check_schedule").default
DEFAULT_FEEDBACK_RESPONSE_DAYS = DataProduct._meta.get_field("feedback_response_days").default
TEXTAREA_SMALL = forms.Textarea(attrs={"rows": 3})


class ProductForm(forms.Form):
    """The fields of a product its editors write (see products.services.EDITABLE_FIELDS)."""

    name = forms.CharField(max_length=200)
    summary = forms.CharField(
        max_length=300,
        required=False,
        help_text="One sentence, shown in search results.",
    )
    description = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text=(
            "Markdown. What one row is, where the data comes from, how often it changes, "
            "known caveats. Needed before publishing."
        ),
    )
    purpose_use_case = forms.CharField(
        label="Use case",
        required=False,
        widget=TEXTAREA_SMALL,
        help_text="Which question or process this product serves.",
    )
    purpose_intended_users = forms.CharField(
        label="Intended users", required=False, widget=TEXTAREA_SMALL
    )
    purpose_expected_outcome = forms.CharField(
        label="Expected outcome", required=False, widget=TEXTAREA_SMALL
    )
    audience = forms.ChoiceField(choices=Audience.choices, initial=Audience.INTERNAL)
    tags = forms.CharField(
        required=False,
        help_text="Comma-separated, for example: orders, revenue, daily.",
    )
    version = forms.CharField(max_length=40, initial="0.1.0")
    check_schedule = forms.CharField(
        label="Check schedule",
        max_length=120,
        initial=DEFAULT_CHECK_SCHEDULE,
        required=False,
        help_text="When the product's checks run unless a check says otherwise: cron, 5 "
        "fields, UTC (minute hour day-of-month month day-of-week). Blank: hourly.",
    )

    feedback_response_days = forms.IntegerField(
        label="Feedback response objective (business days)",
        min_value=1,
        max_value=30,
        initial=DEFAULT_FEEDBACK_RESPONSE_DAYS,
        required=False,
        help_text="Your team answers new feedback within this many business days (Monday "
        "to Friday). Threads left unanswered longer lower the trust score. Blank: 3.",
    )

    SERVICE_FIELDS = EDITABLE_FIELDS  # what product_create / product_update take

    def clean_feedback_response_days(self) -> int:
        value = self.cleaned_data["feedback_response_days"]
        return DEFAULT_FEEDBACK_RESPONSE_DAYS if value is None else value

    def clean_check_schedule(self) -> str:
        return self.cleaned_data["check_schedule"].strip() or DEFAULT_CHECK_SCHEDULE

    def clean_tags(self) -> list[str]:
        tags = [tag.strip() for tag in self.cleaned_data["tags"].split(",") if tag.strip()]
        if len(tags) > MAX_TAGS:
            raise forms.ValidationError(f"At most {MAX_TAGS} tags.")
        return tags

    def service_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.SERVICE_FIELDS}


class ProductCreateForm(ProductForm):
    domain = forms.ModelChoiceField(
        queryset=None, empty_label=None, help_text="Domains where you are an owner or steward."
    )
    slug = forms.SlugField(
        max_length=80,
        required=False,
        help_text="Part of the product's address and key. Made from the name when empty.",
    )

    field_order = ["domain", "name", "slug"]

    def __init__(self, *args, domains, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["domain"].queryset = domains


class ProductEditForm(ProductForm):
    owners = forms.ModelMultipleChoiceField(
        queryset=None,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="People consumers contact about this product. Chosen from the domain's team.",
    )

    def __init__(self, *args, product: DataProduct, **kwargs):
        super().__init__(*args, **kwargs)
        # The domain's team, plus anyone already an owner (who may have left the team).
        self.fields["owners"].queryset = (
            get_user_model()
            .objects.filter(
                Q(domain_memberships__domain_id=product.domain_id) | Q(owned_products=product)
            )
            .distinct()
            .order_by("username")
        )
        self.fields["owners"].label_from_instance = lambda user: (
            f"{user.get_full_name()} ({user.username})" if user.get_full_name() else user.username
        )

    @classmethod
    def initial_for(cls, product: DataProduct) -> dict:
        initial = {name: getattr(product, name) for name in cls.SERVICE_FIELDS}
        initial["tags"] = ", ".join(tag.name for tag in product.tags.all())
        initial["owners"] = list(product.owners.all())
        return initial


class OutputPortForm(forms.Form):
    name = forms.CharField(max_length=120, help_text="For example: orders table, daily export.")
    description = forms.CharField(required=False, widget=TEXTAREA_SMALL)
    kind = forms.ChoiceField(choices=PortKind.choices, widget=forms.RadioSelect)
    source = forms.ModelChoiceField(
        queryset=DataSource.objects.order_by("name"),
        required=False,
        empty_label="Choose a data source",
        help_text="Sources are registered by admins, who make each available to domains and "
        "schemas: a port may name only a table its domain was allowed.",
    )
    schema_name = forms.CharField(
        label="Schema",
        max_length=120,
        required=False,
        widget=forms.TextInput(attrs={"list": "schema-options", "autocomplete": "off"}),
    )
    table_name = forms.CharField(
        label="Table or view",
        max_length=120,
        required=False,
        widget=forms.TextInput(attrs={"list": "table-options", "autocomplete": "off"}),
        help_text="The tables your domain may use on the chosen source are offered as you type.",
    )
    file_path = forms.CharField(
        label="Path in storage",
        max_length=500,
        required=False,
        help_text="Relative to the portal's file storage: a file uploaded to this domain "
        "(uploads/<domain>/...) or in a folder an admin made available to it.",
    )
    file_format = forms.ChoiceField(
        label="File format",
        choices=[("", "Choose a format"), *FileFormat.choices],
        required=False,
    )
    stream_name = forms.CharField(
        label="Stream",
        max_length=120,
        required=False,
        help_text="The NATS JetStream stream, as named on the portal's NATS server; it "
        "starts with your domain's prefix (SALES_ for Sales).",
    )
    stream_subject = forms.CharField(
        label="Subject",
        max_length=255,
        required=False,
        help_text="The subject within the stream whose messages (JSON objects) the port "
        "serves, for example sales.live-orders.",
    )

    freshness_column = forms.CharField(
        label="Freshness column",
        max_length=255,
        required=False,
        help_text="A timestamp column whose newest value tells how fresh the data is "
        "(monitors and freshness SLOs read it).",
    )

    save_anyway = forms.BooleanField(
        label="Save even if the table or file is not there yet",
        required=False,
        help_text="The portal checks that the table or file exists when you save; tick this "
        "to declare a port whose data is still being built.",
    )

    FIELDS = PORT_FIELDS  # what output_port_create / output_port_update take
    LOCATION_FIELDS = (
        "kind",
        "source",
        "schema_name",
        "table_name",
        "file_path",
        "file_format",
        "stream_name",
        "stream_subject",
    )

    def service_fields(self) -> dict:
        return {name: self.cleaned_data[name] for name in self.FIELDS}

    def relation_must_exist(self, port=None) -> bool:
        """Check the table or file on save unless "save anyway" is ticked, and, for an
        existing port, only when its location changed (a description edit on a port whose
        table is gone still saves)."""
        if self.cleaned_data.get("save_anyway"):
            return False
        if port is None:
            return True
        return any(
            self.cleaned_data.get(name) != getattr(port, name) for name in self.LOCATION_FIELDS
        )

    @classmethod
    def initial_for(cls, port) -> dict:
        return {name: getattr(port, name) for name in cls.FIELDS}


class ColumnForm(forms.Form):
    description = forms.CharField(
        required=False,
        widget=TEXTAREA_SMALL,
        help_text="What a value means, its unit, and how it is computed.",
    )
    classification = forms.ChoiceField(
        choices=Classification.choices,
        help_text="How sensitive the values in this column are.",
    )
