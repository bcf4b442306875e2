"""Portal pages: one's alert channels and the organizations' one owns, their preferences,
"send test", the delivery log; and the PWA pieces (manifest, service worker) browser push
needs."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from apps.core.exceptions import error_messages
from apps.notify import selectors, services
from apps.notify.forms import (
    ChannelCreateForm,
    ChannelEditForm,
    DeliveryFilterForm,
    QuietHoursForm,
)
from apps.notify.models import Channel, QuietHours
from apps.notify.vapid import vapid_keys
from apps.users.types import AuthenticatedHttpRequest


def _errors_onto(form: ChannelCreateForm | ChannelEditForm, exc: ValidationError) -> None:
    for field, errors in exc.message_dict.items():
        if field == "rules":
            field = "event_kinds"
        form.add_error(field if field in form.fields else None, errors)


@login_required
def channel_list_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    organizations = list(selectors.organizations_managed(user=request.user).order_by("name"))
    form = ChannelCreateForm(request.POST or None, organizations=organizations)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        organization = None
        if data["owner"]:
            organization = get_object_or_404(
                selectors.organizations_managed(user=request.user), pk=int(data["owner"])
            )
        try:
            channel = services.channel_create(
                by=request.user,
                kind=data["kind"],
                name=data["name"],
                organization=organization,
                target=data["target"],
                secret=data["secret"],
                rules=form.rules(),
            )
        except ValidationError as exc:
            _errors_onto(form, exc)
        else:
            if channel.kind == Channel.Kind.WEBHOOK and not data["secret"]:
                messages.success(
                    request,
                    f"Channel saved. Its signing secret, shown this once: {channel.secret}",
                )
            else:
                messages.success(request, "Channel saved.")
            return redirect("notify:channels")
    channels = selectors.channel_list(user=request.user).order_by("organization__name", "name")
    quiet = QuietHours.objects.filter(user=request.user).first()
    return render(
        request,
        "notify/channels.html",
        {
            "channels": channels,
            "form": form,
            "quiet": quiet,
            "quiet_form": QuietHoursForm(
                initial={"start": quiet.start, "end": quiet.end, "timezone": quiet.timezone}
                if quiet
                else None
            ),
            "push_key": (keys.public_key if (keys := vapid_keys()) else ""),
        },
        status=400 if form.errors else 200,
    )


@login_required
def channel_detail_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    channel = selectors.channel_get_for_user(user=request.user, pk=pk)
    rules = list(channel.rules.all())
    initial = {
        "name": channel.name,
        "target": channel.target,
        "is_active": channel.is_active,
        "event_kinds": [r.event_kind for r in rules if r.event_kind],
        "min_severity": rules[0].min_severity if rules else "warning",
    }
    form = ChannelEditForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            services.channel_update(
                by=request.user,
                channel=channel,
                name=data["name"],
                target=data["target"],
                secret=data["secret"] or None,
                is_active=data["is_active"],
                rules=form.rules(),
            )
        except ValidationError as exc:
            _errors_onto(form, exc)
        else:
            messages.success(request, "Channel saved.")
            return redirect("notify:channel", pk=pk)
    recent = selectors.delivery_list(user=request.user).filter(channel=channel)[:10]
    return render(
        request,
        "notify/channel_detail.html",
        {"channel": channel, "rules": rules, "form": form, "recent": recent},
        status=400 if form.errors else 200,
    )


@login_required
@require_POST
def channel_test_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    channel = selectors.channel_get_for_user(user=request.user, pk=pk)
    try:
        delivery = services.channel_test(by=request.user, channel=channel)
    except (ValidationError, PermissionDenied) as exc:
        messages.error(request, " ".join(error_messages(exc)))
    else:
        delivery.refresh_from_db()
        messages.info(
            request,
            f"Test message queued; its outcome shows below ({delivery.get_status_display()}).",
        )
    return redirect("notify:channel", pk=pk)


@login_required
@require_POST
def channel_delete_view(request: AuthenticatedHttpRequest, pk: int) -> HttpResponse:
    channel = selectors.channel_get_for_user(user=request.user, pk=pk)
    services.channel_delete(by=request.user, channel=channel)
    messages.success(request, f"Channel “{channel.name}” deleted.")
    return redirect("notify:channels")


@login_required
def delivery_list_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    channels = selectors.channel_list(user=request.user).order_by("name")
    form = DeliveryFilterForm(request.GET or None, channels=channels)
    deliveries = selectors.delivery_list(user=request.user)
    if form.is_valid():
        if form.cleaned_data["status"]:
            deliveries = deliveries.filter(status=form.cleaned_data["status"])
        if form.cleaned_data["channel"]:
            deliveries = deliveries.filter(channel_id=form.cleaned_data["channel"])
    page = Paginator(deliveries, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "notify/deliveries.html",
        {"page": page, "form": form, "query": query.urlencode()},
        status=400 if form.errors else 200,
    )


def manifest_view(request: HttpRequest) -> JsonResponse:
    """The web app manifest: lets a phone add Imewe to its home screen and receive pushes."""
    return JsonResponse(
        {
            "name": "Imewe",
            "short_name": "Imewe",
            "start_url": "/",
            "scope": "/",
            "display": "standalone",
            "background_color": "#ffffff",
            "theme_color": "#1d4ed8",
            "icons": [
                {
                    "src": f"{settings.STATIC_URL}img/favicon.svg",
                    "sizes": "any",
                    "type": "image/svg+xml",
                }
            ],
        },
        content_type="application/manifest+json",
    )


def service_worker_view(request: HttpRequest) -> HttpResponse:
    """Served from the site's root so it may control every page (a file under /static/ could
    only control /static/)."""
    path = settings.BASE_DIR / "static" / "js" / "sw.js"
    response = HttpResponse(path.read_text(), content_type="text/javascript")
    response["Cache-Control"] = "no-cache"
    return response


@login_required
@require_POST
def quiet_hours_view(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.POST.get("clear"):
        services.quiet_hours_clear(user=request.user)
        messages.success(request, "Quiet hours removed.")
        return redirect("notify:channels")
    form = QuietHoursForm(request.POST)
    if form.is_valid():
        try:
            services.quiet_hours_set(
                user=request.user,
                start=form.cleaned_data["start"],
                end=form.cleaned_data["end"],
                tz=form.cleaned_data["timezone"],
            )
        except ValidationError as exc:
            messages.error(request, " ".join(error_messages(exc)))
        else:
            messages.success(request, "Quiet hours saved.")
    else:
        errors = "; ".join(
            f"{form.fields[f].label}: {' '.join(map(str, e))}" for f, e in form.errors.items()
        )
        messages.error(request, f"Quiet hours not saved: {errors}")
    return redirect("notify:channels")
