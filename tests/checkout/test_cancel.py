"""The cancel link: only the link Stripe was given (with its per-order token) cancels on GET.

Order ids are sequential, so ``/checkout/cancel?order=N`` alone must not change anything: a
link or image on another site would otherwise cancel a signed-in buyer's open order.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

from tests.support.shop import Shop


def _cancel_form(page: str) -> re.Match[str] | None:
    return re.search(r'<form method="post" action="/checkout/cancel"[^>]*>(.*?)</form>', page, re.S)


def test_cancel_link_without_token_changes_nothing_and_offers_a_post(shop: Shop) -> None:
    buyer = shop.buyer().sign_up()
    sid = buyer.start("coins-100")
    order_id = shop.order(sid)["id"]
    for params in (
        {"order": order_id},
        {"order": order_id, "token": "forged"},
        {"order": order_id, "token": "\u00e9"},
    ):
        page = buyer.client.get("/checkout/cancel", params=params)
        assert page.status_code == 200
        assert shop.order(sid)["status"] == "open"
        assert shop.session(sid)["status"] == "open"
        form = _cancel_form(page.text)
        assert form, page.text
        assert 'name="_csrf_token"' in form.group(1)
        assert f'name="order" value="{order_id}"' in form.group(1)
        assert '<meta http-equiv="refresh"' not in page.text, "no reload under the buyer's finger"
    # A cross-site form post has no CSRF token: refused, nothing changes.
    forged = buyer.client.post("/checkout/cancel", data={"order": str(order_id)})
    assert forged.status_code == 403
    assert shop.order(sid)["status"] == "open"
    # The buyer's own button cancels.
    confirmed = buyer.post("/checkout/cancel", {"order": str(order_id)})
    assert confirmed.status_code == 200
    assert 'data-status="canceled"' in confirmed.text
    assert shop.order(sid)["status"] == "canceled"
    assert shop.session(sid)["status"] == "expired"
    assert not _cancel_form(confirmed.text)


def test_the_link_stripe_got_cancels_and_is_unguessable(shop: Shop) -> None:
    buyer = shop.buyer().sign_up()
    first, second = buyer.start("coins-100"), buyer.start("coins-500")
    links = [shop.session(sid)["cancel_url"] for sid in (first, second)]
    tokens = [parse_qs(urlparse(link).query)["token"][0] for link in links]
    assert len(tokens[0]) >= 20
    assert tokens[0] != tokens[1]
    # One order's token does not cancel another order.
    wrong = buyer.client.get(
        "/checkout/cancel", params={"order": shop.order(second)["id"], "token": tokens[0]}
    )
    assert wrong.status_code == 200
    assert shop.order(second)["status"] == "open"
    page = buyer.client.get(links[0].removeprefix(shop.url))
    assert 'data-status="canceled"' in page.text
    assert shop.order(first)["status"] == "canceled"
    assert shop.order(second)["status"] == "open"


def test_only_the_buyer_may_cancel(shop: Shop) -> None:
    owner = shop.buyer().sign_up()
    sid = owner.start("coins-100")
    link = shop.session(sid)["cancel_url"].removeprefix(shop.url)
    stranger = shop.buyer().sign_up()
    assert stranger.client.get(link).status_code == 404
    assert stranger.post("/checkout/cancel", {"order": str(shop.order(sid)["id"])}).status_code == 404
    assert stranger.post("/checkout/cancel", {"order": "nope"}).status_code == 404
    assert shop.order(sid)["status"] == "open"


def test_chinese_confirmation(sqlite_shop: Shop) -> None:
    buyer = sqlite_shop.buyer(locale="zh").sign_up()
    sid = buyer.start("coins-100")
    page = buyer.client.get("/checkout/cancel", params={"order": sqlite_shop.order(sid)["id"]})
    form = _cancel_form(page.text)
    assert form
    assert "取消" in form.group(1)
