"""Stripe-shaped API errors: the status codes and JSON bodies Stripe returns, so SDK error classes map."""

from __future__ import annotations

from typing import Any

_DOC_BASE = "https://stripe.com/docs/error-codes/"


class StripeError(Exception):
    """An error answered as `{"error": {...}}` with Stripe's HTTP status."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        decline_code: str | None = None,
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.type = type
        self.code = code
        self.param = param
        self.decline_code = decline_code
        self.extra = extra or {}
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        """The JSON body Stripe sends; only set keys are included, as Stripe does."""
        err: dict[str, Any] = {"message": self.message, "type": self.type}
        if self.code:
            err["code"] = self.code
            err["doc_url"] = _DOC_BASE + self.code.replace("_", "-")
        if self.param:
            err["param"] = self.param
        if self.decline_code:
            err["decline_code"] = self.decline_code
        err.update(self.extra)
        return {"error": err}


def invalid(message: str, param: str | None = None, code: str | None = None) -> StripeError:
    """400 invalid_request_error, the most common Stripe failure."""
    return StripeError(message, param=param, code=code or ("parameter_invalid" if param else None))


def unknown_param(param: str) -> StripeError:
    return StripeError(f"Received unknown parameter: {param}", param=param, code="parameter_unknown")


def missing_param(param: str) -> StripeError:
    return StripeError(f"Missing required param: {param}.", param=param, code="parameter_missing")


def no_such(kind: str, object_id: str, param: str = "id") -> StripeError:
    """404 with Stripe's exact wording, e.g. "No such checkout.session: 'cs_x'"."""
    return StripeError(f"No such {kind}: '{object_id}'", status=404, code="resource_missing", param=param)


def unrecognized_url(method: str, path: str) -> StripeError:
    return StripeError(
        f"Unrecognized request URL ({method}: {path}). Please see https://stripe.com/docs "
        "or we can help at https://support.stripe.com/.",
        status=404,
    )
