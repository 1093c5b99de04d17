"""The glossary's rules: members propose drafts, owners and stewards approve and
deprecate; every change is a version (who, what, when, why); drafts are seen by the
owning domain only; links to products and columns by the product's editors; search by
name, synonym and definition."""

import pytest
from django.core.exceptions import PermissionDenied, ValidationError

from portal.core.markdown import render_markdown
from products.choices import MembershipRole, TermStatus
from products.definitions.selectors import TermFilters, term_search, term_usage, terms_of_product
from products.definitions.services.glossary import (
    term_approve,
    term_create,
    term_deprecate,
    term_link_column,
    term_link_product,
    term_unlink_product,
    term_update,
)
from products.models import GlossaryTerm
from tests.factories import (
    ColumnFactory,
    DomainFactory,
    MembershipFactory,
    OutputPortFactory,
    ProductFactory,
    UserFactory,
)

DEFINITION = "What customers paid for **completed** order lines, in EUR, VAT included."


@pytest.fixture
def revenue(domain, member):
    return term_create(
        domain=domain,
        by=member,
        name="Net revenue",
        definition=DEFINITION,
        synonyms=["turnover", " sales ", "Turnover", ""],
        note="First draft.",
    )


def test_a_member_proposes_a_draft_with_its_first_version(revenue, member):
    assert (revenue.status, revenue.version, revenue.key) == ("draft", 1, "sales.net-revenue")
    assert revenue.synonyms == ["turnover", "sales"]  # trimmed, blanks and repeats dropped
    version = revenue.versions.get()
    assert (version.number, version.changed_by, version.changes) == (1, member, ["created"])
    assert version.change_note == "First draft." and version.definition == DEFINITION


def test_outsiders_cannot_propose_terms(domain, outsider):
    with pytest.raises(PermissionDenied):
        term_create(domain=domain, by=outsider, name="Churn", definition="x")
    assert not GlossaryTerm.objects.exists()


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"name": "  ", "definition": "x"}, "name"),
        ({"name": "Churn", "definition": " "}, "definition"),
        ({"name": "!!!", "definition": "x"}, "name"),
        ({"name": "Churn", "definition": "x", "synonyms": ["y" * 101]}, "synonyms"),
        (
            {"name": "Churn", "definition": "x", "synonyms": [f"s{i}" for i in range(21)]},
            "synonyms",
        ),
        ({"name": "Churn", "definition": "x", "synonyms": [{"a": 1}]}, "synonyms"),
    ],
)
def test_bad_terms_are_refused_naming_the_field(domain, member, fields, field):
    with pytest.raises(ValidationError) as refused:
        term_create(domain=domain, by=member, **fields)
    assert field in refused.value.message_dict
    assert not GlossaryTerm.objects.exists()


def test_names_are_unique_per_domain_ignoring_case(revenue, domain, member):
    with pytest.raises(ValidationError) as refused:
        term_create(domain=domain, by=member, name="net REVENUE", definition="x")
    assert "already has a term" in refused.value.message_dict["name"][0]
    other = DomainFactory(name="Finance", slug="finance")
    MembershipFactory(domain=other, user=member, role=MembershipRole.MEMBER)
    twin = term_create(domain=other, by=member, name="Net revenue", definition="x")
    assert twin.key == "finance.net-revenue"


def test_each_edit_is_a_version_saying_who_changed_what(revenue, member, steward):
    term_update(term=revenue, by=member, synonyms=["turnover"], note="sales is ambiguous")
    term_update(term=revenue, by=member, definition=DEFINITION)  # no change: no version
    revenue = term_update(term=revenue, by=steward, definition="Paid, returns deducted.")
    assert revenue.version == 3
    versions = list(revenue.versions.order_by("number"))
    assert [v.changes for v in versions] == [["created"], ["synonyms"], ["definition"]]
    assert [v.changed_by for v in versions] == [member, member, steward]
    assert versions[1].change_note == "sales is ambiguous"
    assert versions[1].definition == DEFINITION and versions[2].synonyms == ["turnover"]
    assert versions[0].changed_at < versions[2].changed_at


def test_owners_and_stewards_approve_and_deprecate(revenue, member, steward, owner):
    with pytest.raises(PermissionDenied):
        term_approve(term=revenue, by=member)
    revenue = term_approve(term=revenue, by=steward, note="Agreed with Finance.")
    assert (revenue.status, revenue.approved_by, revenue.version) == ("approved", steward, 2)
    with pytest.raises(ValidationError):
        term_approve(term=revenue, by=owner)  # already approved
    revenue = term_deprecate(term=revenue, by=owner, note="Use gross margin.")
    assert revenue.status == "deprecated"
    history = [(v.status, v.changes, v.change_note) for v in revenue.versions.order_by("number")]
    assert history[1:] == [
        ("approved", ["status"], "Agreed with Finance."),
        ("deprecated", ["status"], "Use gross margin."),
    ]


def test_approved_terms_are_edited_by_owners_and_stewards_only(revenue, member, steward):
    term_approve(term=revenue, by=steward)
    revenue.refresh_from_db()
    with pytest.raises(PermissionDenied):
        term_update(term=revenue, by=member, definition="Something else.")
    assert GlossaryTerm.objects.get().definition == DEFINITION
    term_update(term=revenue, by=steward, definition="Something else.")
    assert GlossaryTerm.objects.get().status == "approved"


def test_drafts_are_seen_by_the_owning_domain_only(revenue, member, outsider, admin_user):
    assert GlossaryTerm.objects.visible_to(outsider).count() == 0
    assert GlossaryTerm.objects.visible_to(member).count() == 1
    assert GlossaryTerm.objects.visible_to(admin_user).count() == 1
    assert GlossaryTerm.objects.visible_to(None).count() == 0
    term_approve(term=revenue, by=admin_user)
    assert GlossaryTerm.objects.visible_to(outsider).count() == 1


def test_search_finds_names_then_synonyms_then_definitions(domain, steward, outsider):
    def approved(name, definition, synonyms=()):
        term = term_create(
            domain=domain, by=steward, name=name, definition=definition, synonyms=list(synonyms)
        )
        return term_approve(term=term, by=steward)

    approved("Churn rate", "Share of customers who left.")
    approved("Customer", "Someone who ordered at least once; see churn rate.")
    approved("Attrition", "Customers lost in a period.", synonyms=["churn"])
    approved("Basket", "Order lines of one order.")
    term_create(domain=domain, by=steward, name="Churn draft", definition="Not yet.")

    def names(q):
        return [t.name for t in term_search(user=outsider, filters=TermFilters(q=q))]

    assert names("churn") == ["Churn rate", "Attrition", "Customer"]
    assert names("CUSTOMERS lost") == ["Attrition"]  # every word, any case
    assert names("nothing like it") == []
    assert [t.name for t in term_search(user=steward, filters=TermFilters(q="churn"))][:2] == [
        "Churn draft",
        "Churn rate",
    ]
    by_status = term_search(user=steward, filters=TermFilters(status=TermStatus.DRAFT))
    assert [t.name for t in by_status] == ["Churn draft"]


def test_links_are_made_by_the_products_editors(revenue, domain, owner, member, steward):
    term_approve(term=revenue, by=steward)
    product = ProductFactory(domain=domain, name="Orders")
    column = ColumnFactory(port=OutputPortFactory(product=product), name="net_amount")
    with pytest.raises(PermissionDenied):
        term_link_product(term=revenue, product=product, by=member)
    term_link_product(term=revenue, product=product, by=owner)
    term_link_column(term=revenue, column=column, by=owner)
    usage = term_usage(term=revenue, user=UserFactory())
    assert usage.products == [product] and usage.columns == [column]
    assert [t.on_product for t in terms_of_product(product=product, user=owner)] == [1]
    term_unlink_product(term=revenue, product=product, by=owner)
    assert [t.on_product for t in terms_of_product(product=product, user=owner)] == [0]


def test_a_term_from_another_domain_links_but_a_deprecated_one_does_not(
    revenue, domain, owner, steward
):
    finance = DomainFactory(name="Finance", slug="finance")
    boss = UserFactory(username="cfo")
    MembershipFactory(domain=finance, user=boss, role=MembershipRole.OWNER)
    margin = term_approve(
        term=term_create(domain=finance, by=boss, name="Gross margin", definition="x"), by=boss
    )
    product = ProductFactory(domain=domain)
    term_link_product(term=margin, product=product, by=owner)
    term_deprecate(term=revenue, by=steward)
    revenue.refresh_from_db()
    with pytest.raises(ValidationError) as refused:
        term_link_product(term=revenue, product=product, by=owner)
    assert "deprecated" in str(refused.value)


def test_usage_lists_only_products_the_reader_may_see(revenue, domain, owner, steward):
    term_approve(term=revenue, by=steward)
    draft = ProductFactory(domain=domain, name="Secret", status="draft")
    term_link_product(term=revenue, product=draft, by=owner)
    assert term_usage(term=revenue, user=UserFactory()).products == []
    assert term_usage(term=revenue, user=owner).products == [draft]


def test_a_script_in_a_definition_is_rendered_harmless(domain, member):
    term = term_create(
        domain=domain,
        by=member,
        name="XSS",
        definition="<script>alert(1)</script> [x](javascript:alert(2)) "
        '<img src=x onerror="alert(3)">',
    )
    html = render_markdown(term.definition)
    assert "<script" not in html and "javascript:" not in html and "onerror" not in html
