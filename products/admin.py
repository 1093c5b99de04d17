import copy

from django import forms
from django.contrib import admin

from products.catalog.services.ports import data_source_errors
from products.catalog.services.search_index import product_search_index_update
from products.models import (
    Column,
    DataProduct,
    DataSource,
    Domain,
    DomainMembership,
    OutputPort,
    SchemaRefreshRun,
    SourceAllowance,
    StorageAllowance,
    Tag,
)


class DomainMembershipInline(admin.TabularInline):
    model = DomainMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    list_display = ["name", "slug"]
    search_fields = ["name", "slug"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [DomainMembershipInline]


class OutputPortInline(admin.StackedInline):
    model = OutputPort
    extra = 0
    fields = [
        "name",
        "slug",
        "kind",
        "source",
        "schema_name",
        "table_name",
        "file_path",
        "file_format",
    ]


@admin.register(DataProduct)
class DataProductAdmin(admin.ModelAdmin):
    list_display = ["name", "domain", "status", "version", "updated_at"]
    list_filter = ["status", "domain", "audience"]
    search_fields = ["name", "slug", "summary"]
    autocomplete_fields = ["owners", "tags"]
    list_select_related = ["domain"]
    readonly_fields = ["published_at", "deprecated_at", "retired_at", "created_at", "updated_at"]
    inlines = [OutputPortInline]

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        product_search_index_update(product_ids=[form.instance.pk])


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    search_fields = ["name"]


class SourceAllowanceInline(admin.TabularInline):
    """Which domains may use the source, in which schema (`*`: all), which relations
    (empty: all of the schema)."""

    model = SourceAllowance
    extra = 0
    fields = ["domain", "schema_name", "relations"]


DATA_SOURCE_FIELDS = [
    "name",
    "kind",
    "description",
    "host",
    "port",
    "database",
    "username",
    "password_env",
    "cluster_id",
    "path",
]


class DataSourceAdminForm(forms.ModelForm):
    """The admin page checks a source's connection as the API does (the service's
    `data_source_errors`), each message on its field."""

    class Meta:
        model = DataSource
        fields = DATA_SOURCE_FIELDS

    def clean(self):
        cleaned = super().clean()
        if "kind" in self.errors:
            return cleaned  # every other check depends on the kind
        source = copy.copy(self.instance)  # the form's values, the instance untouched
        for field in DataSource._meta.concrete_fields:
            if field.name in cleaned:
                setattr(source, field.name, cleaned[field.name])
        for name, message in data_source_errors(source).items():
            if name not in self.fields:
                self.add_error(None, message)
            elif name not in self.errors:  # its own error says more than one about ""
                self.add_error(name, message)
        return cleaned


@admin.register(DataSource)
class DataSourceAdmin(admin.ModelAdmin):
    form = DataSourceAdminForm
    list_display = ["name", "kind", "host", "database", "path"]
    inlines = [SourceAllowanceInline]
    fields = DATA_SOURCE_FIELDS


@admin.register(SourceAllowance)
class SourceAllowanceAdmin(admin.ModelAdmin):
    list_display = ["source", "domain", "schema_name", "relations", "created_at"]
    list_filter = ["source", "domain"]
    list_select_related = ["source", "domain"]
    fields = ["source", "domain", "schema_name", "relations"]


@admin.register(StorageAllowance)
class StorageAllowanceAdmin(admin.ModelAdmin):
    list_display = ["domain", "path", "created_at"]
    list_filter = ["domain"]
    list_select_related = ["domain"]
    fields = ["domain", "path"]


@admin.register(Column)
class ColumnAdmin(admin.ModelAdmin):
    list_display = ["name", "port", "data_type", "classification"]
    list_filter = ["classification"]
    search_fields = ["name", "port__product__name"]
    list_select_related = ["port__product"]

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        product_search_index_update(product_ids=[obj.port.product_id])


@admin.register(SchemaRefreshRun)
class SchemaRefreshRunAdmin(admin.ModelAdmin):
    list_display = ["id", "port", "status", "created_at", "finished_at"]
    list_filter = ["status"]
    list_select_related = ["port__product"]
    readonly_fields = [f.name for f in SchemaRefreshRun._meta.fields]
