"""`SandboxState` in-process: balance transactions for every money movement, and the module split."""

from __future__ import annotations

import ast
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
