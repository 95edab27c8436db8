"""Mean, sd and paired differences over seeds."""

import pandas as pd
import pytest

from medtask.metrics import spread


def test_seed_summary_and_paired_differences():
    df = pd.DataFrame({"lambda2": [0.0, 0.1, 0.0, 0.1, 0.0, 0.1], "seed": [0, 0, 1, 1, 2, 2],
                       "miou": [50.0, 52.0, 40.0, 43.0, 45.0, 46.0]})
    s = spread.seed_summary(df, ["lambda2"], ["miou"]).set_index("lambda2")
    assert s.loc[0.0, "miou"] == 45.0 and s.loc[0.1, "miou"] == pytest.approx(47.0)
    assert s.loc[0.0, "miou_sd"] == pytest.approx(5.0) and s.loc[0.1, "seeds"] == 3
    d = spread.paired_differences(df, "lambda2", 0.0, ["miou"]).set_index("lambda2")
    # same-seed differences 2, 3, 1: mean 2, sd 1 (far below the 5-point spread of the seeds themselves)
    assert d.loc[0.1, "miou_diff"] == pytest.approx(2.0) and d.loc[0.1, "miou_diff_sd"] == pytest.approx(1.0)
    one = spread.seed_summary(df[df.seed == 0], ["lambda2"], ["miou"])
    assert one["miou_sd"].isna().all() and (one["seeds"] == 1).all()

