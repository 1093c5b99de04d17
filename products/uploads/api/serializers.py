"""Request and response bodies of the file-port upload endpoints."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from products.catalog.api.serializers import InputSerializer, OutputPortSerializer
from products.choices import FileFormat

FORMAT_HELP = (
    "`csv` or `parquet`: the file must be that. Empty or absent: detected from the content "
    "(Parquet starts and ends with `PAR1`; anything else is read as CSV)."
)


class _UploadFileSerializer(InputSerializer):
    file = serializers.FileField(
        allow_empty_file=True,  # the service says why an empty file is refused
        help_text="A CSV file (UTF-8, a header line naming the columns) or a Parquet file.",
    )
    format = serializers.ChoiceField(
        choices=FileFormat.choices, required=False, allow_blank=True, help_text=FORMAT_HELP
    )


class PortUploadSerializer(_UploadFileSerializer):
    name = serializers.CharField(
        max_length=120,
        required=False,
        allow_blank=True,
        help_text="The port's name. Default: the file's name without its extension.",
    )
    slug = serializers.SlugField(
        max_length=80, required=False, allow_blank=True, help_text="Default: made from the name."
    )
    description = serializers.CharField(required=False, allow_blank=True)


class PortFileReplaceSerializer(_UploadFileSerializer):
    pass


class UploadSummarySerializer(serializers.Serializer):
    file_name = serializers.CharField()
    format = serializers.ChoiceField(choices=FileFormat.choices)
    rows = serializers.IntegerField()
    columns = serializers.IntegerField()
    columns_added = serializers.ListField(child=serializers.CharField())
    columns_removed = serializers.ListField(child=serializers.CharField())
    notes = serializers.ListField(
        child=serializers.CharField(),
        help_text="What people should know about the stored file (NaN values, separator).",
    )


class PortUploadResultSerializer(OutputPortSerializer):
    """The port as stored, and what the upload's check found."""

    upload = serializers.SerializerMethodField()

    class Meta(OutputPortSerializer.Meta):
        fields = [*OutputPortSerializer.Meta.fields, "upload"]
        read_only_fields = fields

    @extend_schema_field(UploadSummarySerializer)
    def get_upload(self, port) -> dict:
        return self.context["upload"].as_dict()
