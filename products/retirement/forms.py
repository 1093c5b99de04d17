"""Forms of the retirement page. They parse input; the retirement services decide."""

from __future__ import annotations

from django import forms

from products.retirement.services import NOTICE_DAYS_DEFAULT, NOTICE_DAYS_MIN

REASON_WIDGET = forms.Textarea(attrs={"rows": 3})


class RetirementProposeForm(forms.Form):
    reason = forms.CharField(
        widget=REASON_WIDGET,
        help_text="Why retire it, and what consumers should use instead. Everyone told "
        "about the proposal reads this.",
    )
    notice_days = forms.IntegerField(
        label="Notice period (days)",
        initial=NOTICE_DAYS_DEFAULT,
        help_text=f"At least {NOTICE_DAYS_MIN} days for consumers to object. Without "
        "objection the product is deprecated when it ends, then retired after the grace "
        "period.",
    )


class RetirementObjectForm(forms.Form):
    reason = forms.CharField(
        label="Why you still need it",
        widget=REASON_WIDGET,
        help_text="What you use it for. The product's owners read this and decide.",
    )


class RetirementWithdrawForm(forms.Form):
    reason = forms.CharField(
        required=False, widget=REASON_WIDGET, help_text="Optional: told to everyone concerned."
    )


class RetirementProceedForm(forms.Form):
    reason = forms.CharField(
        label="Your answer to the objections",
        widget=REASON_WIDGET,
        help_text="Told to the objectors and everyone with access.",
    )
