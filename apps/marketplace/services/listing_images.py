"""A listing's pictures: add (checked by opening them), remove, and their order."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.db.models import Max
from PIL import Image, UnidentifiedImageError

from apps.marketplace.models import Listing, ListingImage
from apps.marketplace.services.listing_checks import _not_retired, _require_manage
from apps.marketplace.services.listings import _audit
from apps.users.models import User

MAX_IMAGES = 8
IMAGE_FORMATS = {"PNG": "png", "JPEG": "jpg", "WEBP": "webp"}


@transaction.atomic
def listing_image_add(
    *, by: User, listing: Listing, file: UploadedFile, alt: str = ""
) -> ListingImage:
    """A PNG, JPEG or WebP picture (checked by opening it, not by its name) of at most 5 MB;
    at most 8 per listing."""
    _require_manage(by=by, listing=listing)
    listing = Listing.objects.select_for_update().get(pk=listing.pk)
    _not_retired(listing)
    if listing.images.count() >= MAX_IMAGES:
        raise ValidationError({"image": [f"At most {MAX_IMAGES} images per listing."]})
    # (the front door bounds the request at this plus the multipart overhead: settings.py)
    limit = int(settings.MARKETPLACE_IMAGE_MAX_BYTES)
    if file.size is not None and file.size > limit:
        raise ValidationError({"image": [f"At most {limit / 1024 / 1024:g} MB."]})
    if len(alt) > 200:
        raise ValidationError({"alt": ["At most 200 characters."]})
    try:
        file.seek(0)
        with Image.open(file) as picture:
            kind = picture.format or ""
            width, height = picture.size
            picture.verify()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ValidationError({"image": ["Not an image: upload a PNG, JPEG or WebP."]}) from None
    if kind not in IMAGE_FORMATS:
        raise ValidationError(
            {"image": [f"{kind or 'This'} images aren't taken: PNG, JPEG or WebP."]}
        )
    file.seek(0)
    file.name = f"listing-{listing.pk}.{IMAGE_FORMATS[kind]}"
    position = (listing.images.aggregate(top=Max("position"))["top"] or 0) + 1
    image = ListingImage.objects.create(
        listing=listing,
        image=file,
        alt=alt.strip(),
        position=position,
        width=width,
        height=height,
    )
    _audit(by=by, listing=listing, what="image added", image=image.pk)
    return image


@transaction.atomic
def listing_image_delete(*, by: User, image: ListingImage) -> None:
    listing = image.listing
    _require_manage(by=by, listing=listing)
    _not_retired(listing)
    name, storage, pk = image.image.name or "", image.image.storage, image.pk
    image.delete()
    transaction.on_commit(lambda: storage.delete(name))
    _audit(by=by, listing=listing, what="image removed", image=pk)


@transaction.atomic
def listing_image_move(*, by: User, image: ListingImage, position: Any) -> ListingImage:
    """Puts the image at `position` (1 is the cover, shown on cards) among the listing's
    images and numbers them all 1..n again."""
    listing = image.listing
    _require_manage(by=by, listing=listing)
    listing = Listing.objects.select_for_update().get(pk=listing.pk)
    _not_retired(listing)
    images = list(listing.images.order_by("position", "id"))
    if isinstance(position, bool):
        position = None
    try:
        wanted = int(position)
    except (TypeError, ValueError):
        wanted = 0
    if not 1 <= wanted <= len(images):
        raise ValidationError({"position": [f"A whole number from 1 to {len(images)}."]})
    images = [i for i in images if i.pk != image.pk]
    images.insert(wanted - 1, image)
    for number, each in enumerate(images, start=1):
        each.position = number
    ListingImage.objects.bulk_update(images, ["position"])
    _audit(by=by, listing=listing, what="image moved", image=image.pk, position=wanted)
    image.position = wanted
    return image
