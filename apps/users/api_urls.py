from django.urls import path

from apps.users import api

urlpatterns = [
    path("auth/token/", api.TokenObtainApi.as_view(), name="token-obtain"),
    path("auth/token/refresh/", api.TokenRefreshApi.as_view(), name="token-refresh"),
    path("auth/logout/", api.LogoutApi.as_view(), name="logout"),
    path("auth/register/", api.RegisterApi.as_view(), name="register"),
    path("auth/verify-email/", api.VerifyEmailApi.as_view(), name="verify-email"),
    path("auth/me/", api.MeApi.as_view(), name="me"),
    path("roles/", api.RoleMatrixApi.as_view(), name="role-matrix"),
    path("organizations/", api.OrganizationListApi.as_view(), name="organization-list"),
    path(
        "organizations/<int:pk>/", api.OrganizationDetailApi.as_view(), name="organization-detail"
    ),
    path(
        "organizations/<int:pk>/share/",
        api.OrganizationShareApi.as_view(),
        name="organization-share",
    ),
    path("audit-log/", api.AuditLogListApi.as_view(), name="audit-log"),
    path("users/", api.UserListApi.as_view(), name="user-list"),
    path("users/<int:pk>/role/", api.UserRoleApi.as_view(), name="user-role"),
]
