"""Reads of scheduled exports that carry rules: who sees which schedules and runs.

A product's schedules are seen in full by its managers (the domain's owners and
stewards, admins) and by whoever reads all of its rows anyway (domain members); everyone
else sees the schedules they created. A schedule or run someone may not see is a
DoesNotExist, like one that does not exist (404)."""

from __future__ import annotations

from django.db.models import QuerySet

from products.catalog.selectors import products_visible
from products.models import DataProduct
from sharing.exports.services.schedules import export_schedules_see_all
from sharing.models import ExportRun, ExportSchedule

RECENT_RUNS = 20


def export_schedules_for(*, user, product: DataProduct) -> QuerySet[ExportSchedule]:
    """The product's schedules `user` may see, active ones first."""
    qs = ExportSchedule.objects.filter(product=product).select_related(
        "product__domain", "port", "created_by"
    )
    if not export_schedules_see_all(user=user, product=product):
        qs = qs.filter(created_by_id=user.pk)
    return qs.order_by("ended_at", "name", "pk")


def _check_visible(*, user, product: DataProduct, created_by_id: int) -> None:
    if created_by_id != user.pk and not export_schedules_see_all(user=user, product=product):
        raise ExportSchedule.DoesNotExist


def export_schedule_get(*, user, schedule_id: int) -> ExportSchedule:
    schedule = ExportSchedule.objects.select_related("product__domain", "port", "created_by").get(
        pk=schedule_id, product__in=products_visible(user=user)
    )
    _check_visible(user=user, product=schedule.product, created_by_id=schedule.created_by_id)
    return schedule


def export_run_get(*, user, run_id: int) -> ExportRun:
    run = ExportRun.objects.select_related(
        "schedule__product__domain", "schedule__port", "schedule__created_by", "requested_by"
    ).get(pk=run_id, schedule__product__in=products_visible(user=user))
    schedule = run.schedule
    try:
        _check_visible(user=user, product=schedule.product, created_by_id=schedule.created_by_id)
    except ExportSchedule.DoesNotExist:
        raise ExportRun.DoesNotExist from None
    return run


def export_runs_of(*, schedule: ExportSchedule) -> QuerySet[ExportRun]:
    return ExportRun.objects.filter(schedule=schedule).select_related("requested_by")


def export_latest_runs(*, schedules: list[ExportSchedule]) -> dict[int, ExportRun]:
    """The latest run of each schedule, keyed by schedule id, in one query."""
    ids = [schedule.pk for schedule in schedules]
    if not ids:
        return {}
    runs = (
        ExportRun.objects.filter(schedule_id__in=ids)
        .order_by("schedule_id", "-created_at", "-pk")
        .distinct("schedule_id")
    )
    return {run.schedule_id: run for run in runs}
