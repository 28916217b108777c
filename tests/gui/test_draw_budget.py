"""The live plots' update interval follows the GUI thread's CPU share (workbench.gui.draw_budget)."""

from __future__ import annotations

from workbench.gui import draw_budget as db


class Clocks:
    def __init__(self):
        self.wall = 100.0
        self.cpu = 5.0

    def run(self, seconds: float, share: float) -> None:
        self.wall += seconds
        self.cpu += seconds * share


def ticks(budget: db.DrawBudget, clocks: Clocks, seconds: float, share: float, every: float = 0.1) -> float:
    t = 0.0
    while t < seconds:
        clocks.run(every, share)
        budget.tick()
        t += every
    return budget.interval


def test_expensive_drawing_slows_the_updates_down_to_the_slowest():
    c = Clocks()
    b = db.DrawBudget(0.06, cpu=lambda: c.cpu, clock=lambda: c.wall)
    assert b.tick() == db.FASTEST
    assert ticks(b, c, 1.5, 0.30) == db.FASTEST * db.STEP       # one window over budget: one step slower
    assert abs(b.share - 0.30) < 0.02
    assert ticks(b, c, 30, 0.30) == db.SLOWEST                   # never slower than the slowest


def test_cheap_drawing_speeds_them_up_again_and_the_middle_keeps_the_interval():
    c = Clocks()
    b = db.DrawBudget(0.06, cpu=lambda: c.cpu, clock=lambda: c.wall)
    ticks(b, c, 30, 0.5)
    assert b.interval == db.SLOWEST
    ticks(b, c, 1.5, b.budget * 0.75)                         # within budget, above half of it: unchanged
    assert b.interval == db.SLOWEST
    assert ticks(b, c, 30, 0.01) == db.FASTEST                 # cheap: back to four times a second


def test_idle_time_between_runs_is_not_counted():
    """After a pause longer than IDLE_GAP_S the window starts afresh: CPU the thread spent elsewhere (opening a
    file, recording units) while no plot was drawn does not slow the next run's plots."""
    c = Clocks()
    b = db.DrawBudget(0.06, cpu=lambda: c.cpu, clock=lambda: c.wall)
    ticks(b, c, 0.5, 0.01)
    c.run(db.IDLE_GAP_S + 5, 0.9)                             # busy with other things, no redraws
    b.tick()
    assert ticks(b, c, 0.8, 0.01) == db.FASTEST and b.share < b.budget


def test_the_budget_is_a_share_of_the_whole_machine():
    """Drawing takes a fixed share of all the cores' time: more of one core on a machine with more of them."""
    assert db.default_budget(2) == 2 * db.MACHINE_SHARE
    assert db.default_budget(8) == 8 * db.MACHINE_SHARE
    assert db.default_budget(64) == 0.5
