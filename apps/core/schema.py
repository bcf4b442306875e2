"""OpenAPI generation tweaks shared by every app."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema as BaseAutoSchema


class AutoSchema(BaseAutoSchema):
    def get_serializer_name(self, serializer: Any, direction: Any) -> str:
        # Views declare `InputSerializer` / `OutputSerializer` inside themselves (STYLE.md):
        # name each after its view: TokenObtainApi.InputSerializer -> TokenObtainInput.
        cls = type(serializer)
        owner, _, name = cls.__qualname__.rpartition(".")
        if owner and name in {"InputSerializer", "OutputSerializer"}:
            return owner.removesuffix("Api") + name.removesuffix("Serializer")
        return super().get_serializer_name(serializer, direction)
