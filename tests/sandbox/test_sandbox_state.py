"""`SandboxState` in-process: balance transactions for every money movement, and the module split."""

from __future__ import annotations

import ast
import json
from graphlib import TopologicalSorter
from pathlib import Path
from typing import Any

from app.sandbox import SandboxConfig, SandboxState
from app.sandbox.state import HOSTED
from tests.sandbox.conftest import session_params

SANDBOX = Path(__file__).resolve().parents[2] / "app" / "sandbox"


def _paid(state: SandboxState, card: str) -> dict[str, Any]:
    session = state.create_session(session_params(), HOSTED, "http://sandbox.test")
    assert state.pay_session(session["id"], card_number=card).status == "succeeded"
    charge = state.charges.dump()[-1]
    assert charge["payment_intent"] == state.sessions.by_id[session["id"]]["payment_intent"]
    return charge


def test_every_money_movement_books_one_balance_transaction() -> None:
    state = SandboxState(SandboxConfig())
    charge = _paid(state, "4242424242424242")
    refund = state.create_refund({"charge": charge["id"], "amount": 700}, HOSTED)
    disputed = _paid(state, "4000000000000259")
    dispute = state.disputes.dump()[-1]
    state.close_dispute(dispute["id"], won=True)

    rows = [
        (t["type"], t["reporting_category"], t["amount"], t["net"], t["source"])
        for t in state.balance_transactions.dump()
    ]
    assert rows == [
        ("charge", "charge", 2500, 2500, charge["id"]),
        ("refund", "refund", -700, -700, refund["id"]),
        ("charge", "charge", 2500, 2500, disputed["id"]),
        ("adjustment", "dispute", -2500, -2500, dispute["id"]),
        ("adjustment", "dispute_reversal", 2500, 2500, dispute["id"]),
    ]
    txns = state.balance_transactions.dump()
    assert charge["balance_transaction"] == txns[0]["id"]
    assert refund["balance_transaction"] == txns[1]["id"]
    assert disputed["balance_transaction"] == txns[2]["id"]
    assert [t["id"] for t in dispute["balance_transactions"]] == [txns[3]["id"], txns[4]["id"]]
    assert all(t["currency"] == "eur" and state.fetch(t["id"]) is t for t in txns)


def _imports(path: Path) -> set[str]:
    """Absolute names of the modules a sandbox module imports (relative ones resolved)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                names.add(node.module or "")
            elif node.module:
                names.add(f"app.sandbox.{node.module}")
            else:
                names.update(f"app.sandbox.{alias.name}" for alias in node.names)
    return names


def test_sandbox_imports_nothing_of_the_shop_and_no_cycles() -> None:
    modules = {f"app.sandbox.{p.stem}": _imports(p) for p in SANDBOX.glob("*.py") if p.stem != "__init__"}
    shop = {
        m: sorted(n for n in names if n.startswith("app.") and not n.startswith("app.sandbox"))
        for m, names in modules.items()
    }
    assert {m: n for m, n in shop.items() if n} == {}
    graph = {m: {n for n in names if n in modules} for m, names in modules.items()}
    TopologicalSorter(graph).prepare()  # raises CycleError naming the cycle


def test_catalogue_customers_discounts_and_tax_survive_a_restart(tmp_path: Path) -> None:
    config = SandboxConfig(state_file=tmp_path / "sandbox.json")
    state = SandboxState(config)
    product = state.create_product(
        {"name": "Coins", "default_price_data": {"currency": "eur", "unit_amount": 500}}, HOSTED
    )
    customer = state.create_customer({"email": "kept@example.com"}, HOSTED)
    coupon = state.create_coupon({"amount_off": 100, "currency": "eur"}, HOSTED)
    promo = state.create_promotion_code({"coupon": coupon["id"], "code": "KEPT"}, HOSTED)
    rate = state.automatic_tax_for("DE", 1000, False).rate
    assert rate is not None
    state.save_now()
    again = SandboxState(config)
    assert again.product(product["id"]) == product
    assert again.price(product["default_price"])["unit_amount"] == 500
    assert again.customer(customer["id"]) == customer
    assert again.find_promotion_code("kept") == promo
    assert again.tax_rate(rate["id"]) == rate
    assert again.automatic_tax_for("DE", 1000, False).rate == rate


def test_a_version_1_state_file_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "sandbox.json"
    state = SandboxState(SandboxConfig(state_file=path))
    session = state.create_session(session_params(), HOSTED, "http://sandbox.test")
    data = json.loads(state.dump())
    for name in ("products", "prices", "customers", "coupons", "promotion_codes", "tax_rates"):
        del data[name]
    path.write_text(json.dumps({**data, "version": 1, "prices": {}}))
    loaded = SandboxState(SandboxConfig(state_file=path))
    assert loaded.sessions.get(session["id"]) == session
    assert len(loaded.prices) == 0
