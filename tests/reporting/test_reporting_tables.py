"""Tables and figures a chapter saves and shows in one call."""

import matplotlib
import matplotlib.pyplot as plt
import pandas as pd

from medtask.reporting.plots import save_figures
from medtask.reporting.tables import show_saved

matplotlib.use("Agg")


class Recorder:
    def __init__(self):
        self.tables, self.figures = {}, []

    def save_table(self, table, name):
        self.tables[name] = table

    def save_figure(self, fig, name):
        self.figures.append(name)


def test_show_saved_saves_unrounded_and_shows_rounded():
    chapter, t = Recorder(), pd.DataFrame({"x": [0.123456]})
    shown = show_saved(chapter, t, "t", 3)
    assert chapter.tables["t"] is t and shown["x"].iloc[0] == 0.123
    assert show_saved(chapter, t, "u") is t


def test_save_figures_in_order():
    chapter = Recorder()
    save_figures(chapter, {"b": plt.figure(), "a": plt.figure()})
    assert chapter.figures == ["b", "a"]
    plt.close("all")
