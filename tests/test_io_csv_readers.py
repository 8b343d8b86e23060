"""The fast pyarrow CSV path reads exactly what the reference pandas reader reads."""

from __future__ import annotations

import pandas as pd
import pytest

from cryobench.io import picks as P

CASES = {
    "plain": "experiment,particle_type,x,y,z\nTS_1,ribosome,1.5,2,3\nTS_2,apo-ferritin,4,5,6\n",
    "numeric_ids": ("id,experiment,particle_type,x,y,z\n"
                    "0,001,ribosome,1,2,3\n1,002,ribosome,1,2,3\n"),
    "spaces": "experiment, particle_type ,x,y,z\nTS_1, ribosome , 1.5 ,2,3\n",
    "empty_x": "experiment,particle_type,x,y,z\nTS_1,ribosome,,2,3\n",
    "nan_x": "experiment,particle_type,x,y,z\nTS_1,ribosome,NaN,2,3\n",
    "inf_x": "experiment,particle_type,x,y,z\nTS_1,ribosome,inf,2,3\n",
    "text_x": "experiment,particle_type,x,y,z\nTS_1,ribosome,abc,2,3\n",
    "empty_id": "experiment,particle_type,x,y,z\n,ribosome,1,2,3\n",
    "quoted": 'experiment,particle_type,x,y,z\n"TS_1","ribo,some",1,2,3\n',
    "crlf": "experiment,particle_type,x,y,z\r\nTS_1,ribosome,1,2,3\r\n",
    "blank_lines": "experiment,particle_type,x,y,z\n\nTS_1,ribosome,1,2,3\n\n",
    "NA_id": "experiment,particle_type,x,y,z\nNA,ribosome,1,2,3\n",
    "exponent": "experiment,particle_type,x,y,z\nTS_1,ribosome,1e3,2,3\n",
    "byu": "tomo_id,Motor axis 0,Motor axis 1,Motor axis 2\ntomo_00e047,-1,-1,-1\n12,3,4,5\n",
    # these must fall back to the reference reader
    "short_row": "experiment,particle_type,x,y,z\nTS_1,ribosome,1,2\n",
    "long_row": "experiment,particle_type,x,y,z\nTS_1,ribosome,1,2,3,4\n",
    "header_only": "experiment,particle_type,x,y,z\n",
    "bom": "\ufeffexperiment,particle_type,x,y,z\nTS_1,ribosome,1,2,3\n",
    "duplicate_header": "x,x,y,z\n1,2,3,4\n",
}
FALLBACK = {"short_row", "long_row", "header_only", "bom", "duplicate_header"}
USECOLS = [None, {"experiment", "particle_type", "x", "y", "z", "tomo_id", "Motor axis 0",
                  "Motor axis 1", "Motor axis 2"}]


@pytest.mark.parametrize("usecols", USECOLS, ids=["all", "usecols"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_arrow_reader_matches_the_pandas_reader(name, usecols, tmp_path):
    path = tmp_path / f"{name}.csv"
    path.write_bytes(CASES[name].encode("utf-8"))
    fast = P._read_arrow(path, usecols)
    if name in FALLBACK:
        assert fast is None
        return
    assert fast is not None
    pd.testing.assert_frame_equal(fast, P._read_pandas(path, usecols))


def test_text_ids_stay_text(tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("experiment,particle_type,x,y,z\n001,ribosome,1,2,3\n")
    assert P.read_picks_csv(path)["experiment"].tolist() == ["001"]
