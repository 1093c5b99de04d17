"""Forms of the upload pages: they parse input; products.uploads.services decides."""

from django import forms

from products.choices import FileFormat

FORMAT_CHOICES = [("", "Detect from the content"), *FileFormat.choices]


class _UploadFileForm(forms.Form):
    file = forms.FileField(
        label="File",
        allow_empty_file=True,  # the service says why an empty file is refused
        help_text="A CSV file (UTF-8, a header line naming the columns) or a Parquet file.",
        widget=forms.ClearableFileInput(attrs={"accept": ".csv,.parquet,text/csv"}),
    )
    file_format = forms.ChoiceField(
        label="Format", choices=FORMAT_CHOICES, required=False, initial=""
    )


class PortUploadForm(_UploadFileForm):
    name = forms.CharField(
        max_length=120,
        required=False,
        help_text="Default: the file's name without its extension.",
    )
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 3}))

    field_order = ["file", "name", "description", "file_format"]


class PortFileReplaceForm(_UploadFileForm):
    pass
