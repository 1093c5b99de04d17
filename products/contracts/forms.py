"""Forms of the contract pages: they turn an upload and choices into the values the
contract services take; the services decide."""

from django import forms

from products.contracts.services.documents import MAX_CONTRACT_BYTES
from products.models import DataSource


class _ContractFileForm(forms.Form):
    file = forms.FileField(
        label="ODCS contract (YAML)",
        help_text=f"An Open Data Contract Standard v3.1 file, at most "
        f"{MAX_CONTRACT_BYTES // 1024} KiB.",
        widget=forms.ClearableFileInput(attrs={"accept": ".yaml,.yml,application/yaml"}),
    )
    source = forms.ModelChoiceField(
        queryset=DataSource.objects.order_by("name"),
        required=False,
        label="Data source for new output ports",
        empty_label="The one the contract's servers name",
        help_text="Where output ports the product does not have yet read from, when the "
        "contract's servers match no registered data source.",
    )
    allow_missing_relations = forms.BooleanField(
        required=False,
        label="Allow missing relations",
        help_text="Add output ports even for tables the data source does not have yet; each "
        "one is kept with a warning in the version's notes. Otherwise the import is refused "
        "and names them.",
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > MAX_CONTRACT_BYTES:
            raise forms.ValidationError(
                f"The file is {upload.size // 1024:,} KiB; the limit is "
                f"{MAX_CONTRACT_BYTES // 1024:,} KiB."
            )
        return upload

    def text(self) -> bytes:
        return self.cleaned_data["file"].read()


class ContractImportForm(_ContractFileForm):
    pass


class ProductFromContractForm(_ContractFileForm):
    domain = forms.ModelChoiceField(
        queryset=None,
        required=False,
        empty_label="The one the contract names",
        help_text="The domain of the new product; by default the contract's `domain`.",
    )
    name = forms.CharField(
        max_length=200,
        required=False,
        help_text="Only when the contract has no `name`.",
    )
    field_order = ["file", "domain", "name", "source", "allow_missing_relations"]

    def __init__(self, *args, domains, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["domain"].queryset = domains


class ContractPublishForm(forms.Form):
    confirm_breaking = forms.BooleanField(
        required=False,
        label="I understand these changes break what consumers rely on; publish and email "
        "the people with access.",
    )
