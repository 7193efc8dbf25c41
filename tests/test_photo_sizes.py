"""Photos served at the size they are drawn, content-addressed so the browser keeps them."""

import io
import re

import pytest
from PIL import Image
from sqlalchemy import select

from regbackoffice.extensions import db
from regbackoffice.models import Attachment, Role

from . import factories


@pytest.fixture
def application():
    return factories.make_submitted_application(factories.make_unit("500112"), items=10)


@pytest.fixture
def acceptor(login_as):
    return login_as(Role.ACCEPTOR, district_code="500112")


def test_thumbnails_come_in_the_size_drawn_with_a_srcset_and_name_the_cylinder(
    client, acceptor, application
):
    html = client.get(f"/bureau/applications/{application.id}/audit").get_data(as_text=True)
    images = re.findall(r"<img [^>]*class=\"photo-thumb[^>]*>", html)
    assert len(images) == 20
    first = images[0]
    assert re.search(r'src="/files/attachments/\d+/small\?v=[0-9a-f]{16}"', first)
    assert re.search(r"small\?v=[0-9a-f]{16} 240w, [^\"]+thumb\?v=[0-9a-f]{16} 480w", first)
    assert 'alt="产品编号 ' in first and "的钢印照片" in first
    assert sum('loading="lazy"' in image for image in images) == 14  # below the first 3


def test_a_versioned_photo_url_is_kept_by_the_browser_and_a_bare_one_revalidated(
    client, acceptor, application
):
    photo = db.session.scalars(select(Attachment)).first()
    url = f"/files/attachments/{photo.id}/small"
    kept = client.get(f"{url}?v={photo.sha256[:16]}")
    assert kept.status_code == 200
    assert kept.headers["Cache-Control"] == "private, max-age=31536000, immutable"
    bare = client.get(url)
    assert bare.headers["Cache-Control"] == "private, no-cache"
    again = client.get(url, headers={"If-None-Match": bare.headers["ETag"]})
    assert again.status_code == 304


@pytest.mark.parametrize("variant,longest", [("small", 240), ("side", 360), ("view", 640)])
def test_sized_variants_are_jpegs_no_larger_than_their_size(
    app, client, acceptor, application, variant, longest
):
    photo = db.session.scalars(select(Attachment)).first()
    response = client.get(f"/files/attachments/{photo.id}/{variant}")
    assert response.status_code == 200 and response.mimetype == "image/jpeg"
    image = Image.open(io.BytesIO(response.data))
    assert max(image.size) <= longest
    assert max(image.size) == min(longest, max(photo.width, photo.height))


def test_sized_variants_are_refused_outside_the_district(client, login_as, application):
    login_as(Role.ACCEPTOR, district_code="500105")
    photo = db.session.scalars(select(Attachment)).first()
    for variant in ("small", "side", "view"):
        response = client.get(f"/files/attachments/{photo.id}/{variant}?v={photo.sha256[:16]}")
        assert response.status_code == 404


def test_logout_clears_the_browsers_photo_cache(client, acceptor):
    from .conftest import csrf_token_from

    token = csrf_token_from(client.get("/").get_data(as_text=True))
    response = client.post("/logout", data={"csrf_token": token})
    assert response.headers["Clear-Site-Data"] == '"cache"'


def test_the_worker_makes_the_sized_variants_after_an_upload_and_twice_is_harmless(
    app, application
):
    from regbackoffice import photo_files, storage

    photo = db.session.scalars(select(Attachment)).first()
    keys = [photo_files._variant_key(photo.sha256, v) for v in ("small", "side", "view")]
    for key in keys:
        storage.delete(key)
    assert photo_files.make_variants([photo.id]) == 3
    assert all(storage.exists(key) for key in keys)
    assert photo_files.make_variants([photo.id]) == 3  # already there: nothing remade
    assert all(storage.exists(key) for key in keys)
