"""The CryoET Data Portal: bounded offline errors, `fetch-portal` on a portal-shaped local root
(resume, names, ground truth), the `czii-portal` split wiring. Only the network test at the end
talks to the portal; it is deselected by default (`-m network` runs it)."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner
from copick_builders import croissant_project, fake_portal_root

from cryobench.cli import cli
from cryobench.data import load_split, open_project, remote
from cryobench.data import portal as portal_mod
from cryobench.data.portal import fetch_portal, portal_manifest, portal_run_datasets
from cryobench.errors import ConfigError, DataError, DataUnavailableError
from cryobench.particles import CZII_PARTICLES

OFFLINE_HOST = "cryobench-offline.invalid"  # RFC 2606: .invalid never resolves


@pytest.fixture()
def offline(monkeypatch):
    """Point the portal hosts at a name that cannot resolve, wherever the tests run."""
    monkeypatch.setattr(remote, "PORTAL_GRAPHQL_HOST", OFFLINE_HOST)
    monkeypatch.setattr(remote, "PORTAL_S3_HOST", OFFLINE_HOST)


# ---------------------------------------------------------------- the network check


def test_probe_respects_its_deadline_when_connect_hangs(monkeypatch):
    import threading

    release = threading.Event()

    def hang(*args, **kwargs):  # a resolver or a SYN that never answers
        release.wait(30)
        raise OSError("released")

    monkeypatch.setattr(socket, "create_connection", hang)
    monkeypatch.setenv("CRYOBENCH_PROBE_TIMEOUT", "0.3")
    t0 = time.perf_counter()
    reason = remote.probe("example.org")
    elapsed = time.perf_counter() - t0
    release.set()
    assert elapsed < 2.0  # the daemon thread is abandoned at the deadline
    assert reason == "no answer from example.org:443 within 0.3 s"


def test_probe_reports_resolution_failures():
    assert remote.probe(OFFLINE_HOST).startswith(f"cannot resolve {OFFLINE_HOST}")


def test_url_hosts():
    assert remote.url_host("/data/x") is None
    assert remote.url_host("local:///data/x") is None
    assert remote.url_host("file:///data/x") is None
    assert remote.url_host("s3://cryoet-data-portal-public/10440/") == (
        "cryoet-data-portal-public.s3.amazonaws.com", 443)
    assert remote.url_host("https://example.org:8443/a") == ("example.org", 8443)
    assert remote.url_host("http://example.org/a") == ("example.org", 80)
    assert remote.url_host("ssh://host.lab/data") == ("host.lab", 22)
    assert remote.url_host("smb://nas:1445/share") == ("nas", 1445)
    assert remote.url_host("gs://bucket/x") == ("storage.googleapis.com", 443)


def _one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    return lines[0]


def test_fetch_portal_offline_is_one_line_and_writes_nothing(offline, tmp_path):
    out = tmp_path / "czii"
    t0 = time.perf_counter()
    r = CliRunner().invoke(cli, ["data", "fetch-portal", "--dataset", "10440", "--out",
                                 str(out), "--quiet"])
    elapsed = time.perf_counter() - t0
    line = _one_line_error(r)
    assert line.startswith("error: fetching from the CryoET Data Portal needs the network: "
                           f"cannot resolve {OFFLINE_HOST} (")
    assert elapsed < 10
    assert not out.exists()


def test_portal_backed_config_offline_is_one_line(offline, tmp_path):
    cfg = tmp_path / "cdp.json"
    cfg.write_text(json.dumps({
        "config_type": "cryoet_data_portal", "name": "p", "dataset_ids": [10440],
        "overlay_root": "local://" + str(tmp_path / "overlay"),
        "pickable_objects": [{"name": "ribosome", "is_particle": True, "radius": 150,
                              "label": 1}]}))
    t0 = time.perf_counter()
    r = CliRunner().invoke(cli, ["data", "init-split", str(cfg), "--out",
                                 str(tmp_path / "s.json"), "--test", "x"])
    assert time.perf_counter() - t0 < 10
    line = _one_line_error(r)
    assert line.startswith(f"error: {cfg}: this CryoET Data Portal project needs the network")
    assert not (tmp_path / "overlay").exists()


def test_croissant_over_remote_data_offline_is_one_line(tmp_path):
    manifest = croissant_project(tmp_path, {"test": ["TS_a"]})
    doc = json.loads(manifest.read_text())
    doc["copick:baseUrl"] = f"https://{OFFLINE_HOST}/popsicle/phantom/"
    manifest.write_text(json.dumps(doc))
    with pytest.raises(DataUnavailableError, match="this project's remote data needs the "
                                                   f"network: cannot resolve {OFFLINE_HOST}"):
        open_project(manifest)


def test_czii_portal_without_data_says_how_to_fetch(monkeypatch):
    monkeypatch.delenv("CRYOBENCH_CZII_PORTAL", raising=False)
    with pytest.raises(DataUnavailableError) as exc:
        load_split("czii-portal")
    msg = str(exc.value)
    assert "fetch-portal --dataset 10440 --dataset 10445 --dataset 10446 --out DIR" in msg
    assert "CRYOBENCH_CZII_PORTAL" in msg


# ---------------------------------------------------------------- fetch (portal-shaped root)


@pytest.fixture(scope="module")
def portal_root(tmp_path_factory):
    return fake_portal_root(tmp_path_factory.mktemp("portal"))


def _source_points(root, rid: int, obj: str) -> np.ndarray:
    picks = root.get_run(str(rid)).get_picks(object_name=obj)
    return np.asarray(picks[0].full_positions(), dtype=float).reshape(-1, 3)


def test_fetch_maps_czii_names_types_and_ground_truth(portal_root, tmp_path):
    out = tmp_path / "czii"
    summary = fetch_portal([10440, 10445, 10446], out, source=portal_root, progress=False)
    assert summary.fetched == ["TS_5_4", "TS_6_4", "TS_86_3", "TS_100_3", "TS_200_1"]
    assert summary.skipped_objects == ["membrane-protein"]  # no CZII class
    assert summary.picks == {"apo-ferritin": 5, "ribosome": 10, "beta-amylase": 15}
    project = open_project(out / "copick.json")
    assert project.runs == sorted(summary.fetched)
    # the six CZII classes with the official radii and weights (weights stored in metadata)
    assert [(p.name, p.radius, p.weight) for p in project.particles] == [
        (p.name, p.radius, p.weight) for p in CZII_PARTICLES]
    cfg = json.loads((out / "copick.json").read_text())
    assert {o["name"]: o["metadata"]["score_weight"] for o in cfg["pickable_objects"]} == {
        p.name: p.weight for p in CZII_PARTICLES}
    handle = project.run("TS_5_4")
    assert (handle.tomo_type, handle.voxel_spacing) == ("denoised", 10.012)
    src = portal_root.get_run("16463").get_voxel_spacing(10.012)
    src_vol = np.asarray(__import__("zarr").open_group(
        src.get_tomograms("wbp-denoised-denoiset-ctfdeconv")[0].zarr(), mode="r")["0"][...])
    np.testing.assert_array_equal(handle.tomogram(), src_vol)  # level 0 as published
    assert handle.levels == 3
    truth = handle.picks()  # curation / 0
    for portal_name, local in (("ferritin-complex", "apo-ferritin"),
                               ("cytosolic-ribosome", "ribosome")):
        got = truth.loc[truth["particle_type"] == local, ["x", "y", "z"]].to_numpy()
        np.testing.assert_allclose(np.sort(got, 0), np.sort(_source_points(
            portal_root, 16463, portal_name), 0))
    manifest = portal_manifest(out)
    assert manifest["runs"]["TS_5_4"]["annotations"] == {
        "apo-ferritin": ["data-portal/74183"], "ribosome": ["data-portal/74184"],
        "beta-amylase": ["data-portal/74185"]}
    assert manifest["runs"]["TS_5_4"]["run_id"] == 16463
    assert portal_run_datasets(out / "copick.json") == {
        "TS_5_4": 10440, "TS_86_3": 10440, "TS_6_4": 10440, "TS_100_3": 10445,
        "TS_200_1": 10446}
    assert not (out / ".staging").exists()


def test_fetch_resumes_after_an_interruption(portal_root, tmp_path, monkeypatch):
    out = tmp_path / "czii"
    real = portal_mod._read_level0
    calls = []

    def flaky(tomo, where):
        calls.append(where)
        if len(calls) == 2:
            raise DataError(f"cannot read the portal tomogram of {where} (connection reset)")
        return real(tomo, where)

    monkeypatch.setattr(portal_mod, "_read_level0", flaky)
    with pytest.raises(DataError, match="connection reset"):
        fetch_portal([10440], out, source=portal_root, progress=False)
    assert open_project(out / "copick.json").runs == ["TS_5_4"]  # no half-written run
    assert list(portal_run_datasets(out)) == ["TS_5_4"]
    again = fetch_portal([10440], out, source=portal_root, progress=False)
    assert again.already == ["TS_5_4"] and again.fetched == ["TS_6_4", "TS_86_3"]
    assert open_project(out / "copick.json").runs == ["TS_5_4", "TS_6_4", "TS_86_3"]
    third = fetch_portal([10440], out, source=portal_root, progress=False)
    assert third.fetched == [] and len(third.already) == 3


def test_fetch_selected_runs_and_bad_requests(portal_root, tmp_path):
    out = tmp_path / "one"
    s = fetch_portal([10440], out, runs=["16465"], source=portal_root, progress=False)
    assert s.fetched == ["TS_6_4"]
    assert fetch_portal([10440], out, runs=["TS_86_3"], source=portal_root,
                        progress=False).fetched == ["TS_86_3"]
    with pytest.raises(DataError, match="no run TS_9_9 in dataset"):
        fetch_portal([10440], out, runs=["TS_9_9"], source=portal_root, progress=False)
    with pytest.raises(DataError, match="was fetched with voxel_spacing 10.0, not 20.0"):
        fetch_portal([10440], out, voxel_spacing=20, source=portal_root, progress=False)
    with pytest.raises(DataError, match="no voxel spacing 20 Å; available: 10.012"):
        fetch_portal([10440], tmp_path / "vs", voxel_spacing=20, source=portal_root,
                     progress=False)
    with pytest.raises(DataError, match="no tomogram type 'isonet'.*available: wbp, "
                                        "wbp-denoised-denoiset-ctfdeconv"):
        fetch_portal([10440], tmp_path / "tt", tomo_type="isonet", source=portal_root,
                     progress=False)
    with pytest.raises(DataError, match="returned no runs of dataset.*10999"):
        fetch_portal([10999], tmp_path / "ds", source=portal_root, progress=False)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="not empty and not a fetched portal project"):
        fetch_portal([10440], busy, source=portal_root, progress=False)


def test_fetch_other_datasets_keeps_portal_names_and_warns_about_radii(tmp_path):
    root = fake_portal_root(tmp_path, runs=[(501, "tomo_1", 10301)])
    summary = fetch_portal([10301], tmp_path / "out", tomo_type="wbp", source=root,
                           progress=False)
    assert summary.placeholder_radii == ["beta-amylase", "cytosolic-ribosome",
                                         "ferritin-complex", "membrane-protein"]
    assert summary.skipped_objects == ["membrane"]
    project = open_project(tmp_path / "out" / "copick.json")
    assert {p.name for p in project.particles} == set(summary.placeholder_radii)
    assert project.run("tomo_1").tomo_type == "wbp"
    with pytest.raises(DataError, match="has 2 tomogram types .*choose one with --tomo-type"):
        fetch_portal([10301], tmp_path / "out2", source=root, progress=False)


def test_ambiguous_ground_truth_is_refused(tmp_path):
    root = fake_portal_root(tmp_path, runs=[(16463, "TS_5_4", 10440)],
                            extra_picks={16463: {("ferritin-complex", "99999"): [[1, 2, 3]]}})
    with pytest.raises(DataError, match="2 candidate ground-truth annotations of "
                                        "'ferritin-complex' \\(data-portal/74183, "
                                        "data-portal/99999\\)"):
        fetch_portal([10440], tmp_path / "out", source=root, progress=False)


def _fake_picks(session, gt=None, rec=None):
    ann = SimpleNamespace(ground_truth_status=gt, is_curator_recommended=rec)
    return SimpleNamespace(user_id="data-portal", session_id=session,
                           meta=SimpleNamespace(portal_metadata=SimpleNamespace(
                               portal_annotation=ann)))


def test_ground_truth_flags_choose_among_annotations():
    def run_with(*picks):
        source = SimpleNamespace(get_picks=lambda object_name: list(picks))
        return portal_mod._PortalRun(source, "TS_1", 10440, 1)

    a, b, c = _fake_picks("1", gt=False), _fake_picks("2", gt=True), _fake_picks("3", gt=True,
                                                                                  rec=True)
    assert portal_mod._ground_truth_picks(run_with(a, b), "x") == [b]
    assert portal_mod._ground_truth_picks(run_with(a, b, c), "x") == [c]
    assert portal_mod._ground_truth_picks(run_with(a), "x") == [a]
    with pytest.raises(DataError, match="2 candidate"):
        portal_mod._ground_truth_picks(run_with(b, _fake_picks("4", gt=True)), "x")


# ---------------------------------------------------------------- the czii-portal split


def test_czii_portal_split_uses_the_fetched_project(portal_root, tmp_path, monkeypatch):
    out = tmp_path / "czii"
    fetch_portal([10440, 10445, 10446], out, source=portal_root, progress=False)
    split = load_split("czii-portal", data_dir=out)
    assert (split.train, split.val, split.test) == (["TS_5_4", "TS_6_4"], ["TS_86_3"],
                                                    ["TS_200_1"])
    assert split.parts == {"test-public": ["TS_100_3"]}
    assert split.runs("test")[0].tomo_type == "denoised"
    assert split.solution("test-public")["experiment"].unique().tolist() == ["TS_100_3"]
    public = load_split("czii-portal/test-public", data_dir=out)
    assert public.name == "czii-portal/test-public" and public.test == ["TS_100_3"]
    assert public.fingerprint != split.fingerprint
    assert split.with_part("test-public").test == ["TS_100_3"]
    monkeypatch.setenv("CRYOBENCH_CZII_PORTAL", str(out))
    assert load_split("czii-portal").test == ["TS_200_1"]
    with pytest.raises(ConfigError, match="no part 'test-privat'"):
        load_split("czii-portal/test-privat", data_dir=out)


def test_czii_portal_without_the_test_dataset(portal_root, tmp_path):
    out = tmp_path / "train-only"
    fetch_portal([10440, 10445], out, source=portal_root, progress=False)
    split = load_split("czii-portal", data_dir=out)
    assert split.train == ["TS_5_4", "TS_6_4"]
    with pytest.raises(DataUnavailableError, match="'test' of split 'czii-portal' is portal "
                                                   "dataset\\(s\\) 10446.*fetch-portal "
                                                   "--dataset 10446"):
        split.runs("test")
    assert load_split("czii-portal/test-public", data_dir=out).role_runs("test") == [
        "TS_100_3"]


def test_czii_portal_on_a_project_that_was_not_fetched(tmp_path):
    from copick_builders import OBJECTS, copick_project

    cfg = copick_project(tmp_path, OBJECTS[:1], runs=("TS_86_3",))
    with pytest.raises(DataError, match="not a project written by `cryobench data "
                                        "fetch-portal`"):
        load_split("czii-portal", data_dir=cfg)


# ---------------------------------------------------------------- the real portal


@pytest.mark.network
def test_fetch_one_czii_training_run_from_the_portal(tmp_path):
    """Downloads one tomogram (about 300 MB) of dataset 10440 and its ground truth."""
    summary = fetch_portal([10440], tmp_path / "czii", runs=["TS_69_2"], progress=False)
    assert summary.fetched == ["TS_69_2"]
    project = open_project(tmp_path / "czii" / "copick.json")
    handle = project.run("TS_69_2")
    assert handle.tomo_type == "denoised" and abs(handle.voxel_spacing - 10.012) < 1e-6
    assert handle.shape == (184, 630, 630)
    truth = handle.picks()
    assert {"apo-ferritin", "ribosome", "virus-like-particle"} <= set(truth["particle_type"])
    assert Path(tmp_path / "czii" / "cryobench-portal.json").is_file()


def test_a_manifest_over_the_portal_bucket_reads_it_anonymously(tmp_path):
    from cryobench.data.croissant import croissant_config

    doc = {"@context": {}, "copick:config": {}, "copick:baseUrl": "s3://cryoet-data-portal-public/"}
    assert croissant_config(tmp_path / "metadata.json", doc)["static_fs_args"] == {"anon": True}
    doc["copick:baseUrl"] = "/data/mine/"
    assert "static_fs_args" not in croissant_config(tmp_path / "metadata.json", doc)


def test_splits_listing_shows_the_portal_split():
    r = CliRunner().invoke(cli, ["data", "splits"])
    assert r.exit_code == 0
    row = next(line for line in r.output.splitlines() if line.startswith("czii-portal "))
    assert "fetch-portal ($CRYOBENCH_CZII_PORTAL)" in row
    assert "dataset 10440/1/dataset 10446 (test-public: dataset 10445)" in row


def test_a_fetched_10440_is_what_the_czii_split_reads(tmp_path):
    kaggle = ["TS_5_4", "TS_6_4", "TS_6_6", "TS_69_2", "TS_73_6", "TS_86_3", "TS_99_9"]
    root = fake_portal_root(tmp_path, runs=[(16463 + k, n, 10440) for k, n in enumerate(kaggle)])
    fetch_portal([10440], tmp_path / "czii", source=root, progress=False)
    split = load_split("czii", data_dir=tmp_path / "czii")
    assert sorted(split.all_runs) == sorted(kaggle)
    assert split.runs("test")[0].voxel_spacing == 10.012
    assert load_split("czii/fold4", data_dir=tmp_path / "czii").test == ["TS_73_6"]


def test_fetch_portal_command(portal_root, tmp_path, monkeypatch):
    monkeypatch.setattr(portal_mod, "_open_portal_root", lambda ids, out: portal_root)
    out = tmp_path / "czii"
    args = ["data", "fetch-portal", "--dataset", "10440,10445", "--runs", "TS_5_4",
            "--runs", "20001", "--out", str(out), "--quiet"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.output
    assert r.output.splitlines() == [
        f"fetched 2 runs (0 already there) into {out / 'copick.json'}",
        "ground-truth picks: apo-ferritin 2, ribosome 4, beta-amylase 6",
        "objects not fetched: membrane-protein"]
    again = CliRunner().invoke(cli, args)
    assert again.output.splitlines()[0] == (f"fetched 0 runs (2 already there) into "
                                            f"{out / 'copick.json'}")
    bad = CliRunner().invoke(cli, ["data", "fetch-portal", "--dataset", "ten", "--out",
                                   str(tmp_path / "x")])
    assert _one_line_error(bad) == "error: --dataset needs numeric ids, got ten"
