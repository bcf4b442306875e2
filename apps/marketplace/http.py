"""Listing images are served through Django, not as public media: each request checks that the
caller may see the listing (a draft's pictures stay with its seller), for the portal pages and
the API alike."""

from __future__ import annotations

from django.http import FileResponse, Http404

from apps.marketplace.models import ListingImage

CONTENT_TYPES = {"png": "image/png", "jpg": "image/jpeg", "webp": "image/webp"}


def image_file_response(image: ListingImage) -> FileResponse:
    """The picture with its type; an image's file never changes (a new one is a new image), so
    the browser may keep it."""
    extension = (image.image.name or "").rsplit(".", 1)[-1].lower()
    try:
        handle = image.image.open("rb")
    except (FileNotFoundError, ValueError):
        raise Http404("The picture's file is missing.") from None
    response = FileResponse(handle, content_type=CONTENT_TYPES.get(extension, "image/png"))
    response["Cache-Control"] = "private, max-age=31536000, immutable"
    response["X-Content-Type-Options"] = "nosniff"
    return response
