"""OpenAPI generation tweaks shared by every app."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as BaseAutoSchema
from drf_spectacular.plumbing import is_basic_serializer
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers
from rest_framework.settings import api_settings


class ErrorDetailSerializer(serializers.Serializer[Any]):
    code = serializers.CharField()
    message = serializers.CharField()
    details = serializers.JSONField(allow_null=True)


class ErrorSerializer(serializers.Serializer[Any]):
    """The one JSON error format (`apps.core.api.error_body`), as the `Error` component."""

    error = ErrorDetailSerializer()


ERROR_DESCRIPTIONS = {
    "400": "Invalid request: a field, a query parameter or the body; `details` names each.",
    "401": "Not authenticated, or the token is invalid, expired or revoked.",
    "403": "Authenticated, but this role or account may not do this.",
    "404": "No such object (or not one this account may see), or no such page.",
    "409": "The request conflicts with the object's current state; `details` may say how.",
    "413": "The request body is larger than the server accepts.",
    "415": "The body's content type is not one this operation reads.",
    "429": "Too many requests; `details.retry_after_seconds` says when to try again.",
}
BODY_METHODS = {"POST", "PUT", "PATCH"}
WRITE_METHODS = BODY_METHODS | {"DELETE"}


def _empty_means_absent(parameter: dict[str, Any]) -> None:
    """Filters and query serializers read an optional `?name=` as not given (DRF and
    django-filter treat a blank form value so): say that "" is accepted."""
    schema = parameter["schema"]
    schema.pop("minLength", None)
    if schema.get("type") == "string" and not {"enum", "format", "pattern"} & set(schema):
        return  # any string, "" included, is valid already
    parameter["allowEmptyValue"] = True


class AutoSchema(BaseAutoSchema):
    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        # Views declare `InputSerializer` / `OutputSerializer` inside themselves (STYLE.md):
        # name each after its view: TokenObtainApi.InputSerializer -> TokenObtainInput.
        cls = type(serializer)
        owner, _, name = cls.__qualname__.rpartition(".")
        if owner and name in {"InputSerializer", "OutputSerializer"}:
            return owner.removesuffix("Api") + name.removesuffix("Serializer")
        return super().get_serializer_name(serializer, direction)

    def _process_override_parameters(self, direction: Any = "request") -> dict[Any, Any]:
        parameters: dict[Any, Any] = super()._process_override_parameters(direction)  # type: ignore[no-untyped-call]
        serializers_given = any(is_basic_serializer(p) for p in self.get_override_parameters())
        if serializers_given:
            for (_, location), parameter in parameters.items():
                if location == "query" and parameter and not parameter.get("required"):
                    _empty_means_absent(parameter)
        return parameters

    def _get_filter_parameters(self) -> list[dict[str, Any]]:
        parameters: list[dict[str, Any]] = super()._get_filter_parameters()  # type: ignore[no-untyped-call]
        for parameter in parameters:
            # (`ordering` is any string: an unknown or empty one keeps the default order.)
            optional = parameter.get("in") == "query" and not parameter.get("required")
            if optional and parameter["name"] != api_settings.ORDERING_PARAM:
                _empty_means_absent(parameter)
        return parameters

    def get_operation(self, *args: Any, **kwargs: Any) -> dict[str, Any] | None:
        """Every operation also documents the errors it can answer, in the one error format,
        so no view has to repeat them (a view's own `responses` for a code win)."""
        operation = super().get_operation(*args, **kwargs)
        if operation is None:
            return None
        responses = operation["responses"]
        for code in sorted(self._error_codes(operation)):
            if code not in responses:
                response = OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
                responses[code] = self._get_response_for_code(  # type: ignore[no-untyped-call]
                    response, code, media_types=["application/json"]
                )
        operation["responses"] = dict(sorted(responses.items()))
        return operation

    def _error_codes(self, operation: dict[str, Any]) -> set[str]:
        parameters = operation.get("parameters", [])
        has_body = "requestBody" in operation
        writes = self.method in WRITE_METHODS
        codes = {"401", "403"}  # any token can be bad; roles and services deny
        if writes or any(p["in"] == "query" for p in parameters):
            codes.add("400")  # a field, a parameter, or a rule a service checks
        if parameters or has_body or self._is_a_list():
            # An id in the path, the body or a query parameter can name no visible object; a
            # list's page past the last one is a 404 too.
            codes.add("404")
        if writes:
            codes.add("409")  # services refuse changes the current state forbids
        if has_body:
            codes |= {"413", "415"}
        if self.view.get_throttles():
            codes.add("429")
        return codes

    def _is_a_list(self) -> bool:
        return self.method == "GET" and self._is_list_view() and self._get_paginator() is not None  # type: ignore[no-untyped-call]
