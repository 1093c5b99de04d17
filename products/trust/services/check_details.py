"""What a check result shows to whom: the fixed sentences readers get when a check's
query fails or answers in another shape, and the keys of `CheckResult.details` kept for
the domain's members and admins. Apart from products.trust.services.custom_sql so that the
checks service and the API read them without loading sqlglot."""

SHAPE_MESSAGE = "The query must return one integer: the number of failing rows."
FAILED_MESSAGE = "The check's query failed on the source."

# Keys of CheckResult.details shown only to people who read every column (the domain's
# members and admins): the driver's error text, and a check's figures when it reads a
# confidential or restricted column.
TECHNICAL_DETAIL = "technical_detail"
MEMBER_MESSAGE = "member_message"
FIGURES_FOR_MEMBERS = "figures_for_members"
MEMBER_ONLY_DETAILS = (TECHNICAL_DETAIL, MEMBER_MESSAGE)
FIGURE_FIELDS = ("observed_value", "failing_rows", "failing_percent")
