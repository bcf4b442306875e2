from django.urls import path

from apps.notify import api

urlpatterns = [
    path("notify/channels/", api.ChannelListApi.as_view(), name="notify-channel-list"),
    path("notify/channels/<int:pk>/", api.ChannelDetailApi.as_view(), name="notify-channel-detail"),
    path(
        "notify/channels/<int:pk>/test/", api.ChannelTestApi.as_view(), name="notify-channel-test"
    ),
    path("notify/deliveries/", api.DeliveryListApi.as_view(), name="notify-delivery-list"),
    path("notify/events/", api.EventKindListApi.as_view(), name="notify-event-kinds"),
    path("notify/push/", api.PushSubscriptionApi.as_view(), name="notify-push"),
    path("notify/quiet-hours/", api.QuietHoursApi.as_view(), name="notify-quiet-hours"),
    path("notify/rotas/<int:pk>/", api.RotaApi.as_view(), name="notify-rota"),
]
