"""The ``cost`` scenario with more than one server (``--cost-server``, benchmarks/cost.py
and cost_report.py) on made-up steps: chatroom's steps and the relay's (the floor) are
grouped apart, each against its own one-process steps, and shown side by side."""

from __future__ import annotations

from benchmarks.cost import cost_settings
from benchmarks.cost_report import add_ratios, cost_medians, cost_rows, cost_table, server_of
from benchmarks.run import _fmt

from tests.test_benchmark_cost_report import parse, step


def on(server: str, result: dict) -> dict:
    """``result`` as a step of ``server``, as ``cost_step`` records it."""
    result["server"] = result["params"]["server"] = server
    return result


def chatroom_and_relay() -> list[dict]:
    """Interleaved as ``--cost-server both`` runs them: chatroom then the relay, per count."""
    return [
        on("chatroom", step(1, 80.0, 200.0)),
        on("relay", step(1, 40.0, 100.0)),
        on("chatroom", step(4, 112.0, 220.0)),
        on("relay", step(4, 50.0, 120.0)),
    ]


def test_each_server_is_its_own_group_against_its_own_one_process_step():
    medians = cost_medians(chatroom_and_relay())
    assert [(g["server"], g["processes"]) for g in medians] == [
        ("chatroom", 1),
        ("relay", 1),
        ("chatroom", 4),
        ("relay", 4),
    ]
    assert medians[2]["ratio_to_one_process"]["server"] == 1.4  # 112 / 80
    assert medians[3]["ratio_to_one_process"]["server"] == 1.25  # 50 / 40
    assert medians[3]["ratio_to_one_process"]["redis"] == 1.2  # 120 / 100


def test_a_relay_step_ratio_is_to_the_relays_one_process_step():
    steps = chatroom_and_relay()
    add_ratios(steps)
    assert [s["ratio_to_one_process"]["server"] for s in steps] == [1.0, 1.0, 1.4, 1.25]


def test_a_step_recorded_without_a_server_is_chatroom():
    old = step(1, 80.0, 200.0)
    del old["server"]
    assert server_of(old) == "chatroom"
    assert server_of(on("relay", step(1, 1.0, 1.0))) == "relay"


def test_the_tables_name_the_server_of_each_row():
    steps = chatroom_and_relay()
    add_ratios(steps)
    table = cost_table(steps)
    assert "| server | topology | placement | processes |" in table
    assert "| chatroom | single | spread | 4 | 6 | 960 |" in table
    assert "| relay | single | spread | 4 | 6 | 960 |" in table
    rounds = steps + [on(s["server"], {**s, "params": {**s["params"], "round": 2}}) for s in steps]
    assert "| relay | single | spread | 4 | 2 | 960 | 0 | 50.0 |" in cost_table(rounds)


def test_the_summary_puts_the_relay_beside_chatroom_in_the_same_row():
    rows = cost_rows(chatroom_and_relay(), _fmt)
    assert len(rows) == 2  # one per count: the relay's figures in chatroom's row
    assert rows[1]["ratio"] == 1.4
    assert rows[1]["baseline"].startswith("relay (floor): 50.0 (40.0) µs;")
    assert rows[1]["baseline"].endswith("×4 / ×1 1.25")


def test_the_relay_alone_has_rows_of_its_own():
    rows = cost_rows([on("relay", step(1, 40.0, 100.0)), on("relay", step(4, 50.0, 120.0))], _fmt)
    assert [row["target"].startswith("cost relay (single, spread): ×") for row in rows] == [
        True,
        True,
    ]
    assert rows[1]["ratio"] == 1.25 and rows[1]["baseline"] is None


def test_cost_server_option():
    assert cost_settings(parse()).servers == ("chatroom",)
    assert cost_settings(parse("--cost-server", "relay")).servers == ("relay",)
    assert cost_settings(parse("--cost-server", "both")).servers == ("chatroom", "relay")
