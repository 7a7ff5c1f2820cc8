"""Bad input through the real workflow: one clear error naming the file, nothing half-written."""

import numpy as np
import pytest
import yaml

from conftest import ROOT, run_snakemake
from segaug.data.canonical import ClassTable, write_image, write_label, write_split

pytestmark = pytest.mark.workflow  # every test here runs Snakemake

NAMES = ("grass", "road", "car")


def make_dataset(root, n=6):
    """A tiny canonical dataset: grass with a road band and one car per image."""
    ClassTable(NAMES, ((0, 128, 0), (128, 128, 128), (255, 0, 0))).save(root / "classes.json")
    ids = [f"img{i}" for i in range(n)]
    for k, i in enumerate(ids):
        label = np.zeros((40, 48), np.uint8)
        label[15:30] = 1
        label[18:26, 5 + k * 3 : 17 + k * 3] = 2
        image = np.stack([label * 60, 100 + label * 20, 50 + label * 10], -1).astype(np.uint8)
        write_image(root / "images" / f"{i}.png", image)
        write_label(root / "labels" / f"{i}.png", label)
    write_split(root / "sets" / "train.txt", ids[:4])
    write_split(root / "sets" / "val.txt", ids[4:])
    return ids


def config_for(tmp_path, data_root):
    cfg = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    cfg["datasets"] = {"mine": {"kind": "canonical", "path": str(data_root)}}
    cfg["splits"] = {"s": {"dataset": "mine", "train": "set:train", "val": "set:val"}}
    cfg["pool"]["classes"] = ["car"]
    cfg["pool"]["min_area"] = 4
    cfg["context"]["surfaces"]["names"] = ["road"]  # this dataset has no water and no boats
    cfg["context"]["rules"] = {"car": cfg["context"]["rules"]["car"]}
    cfg["table1"]["splits"] = ["s"]
    cfg["ablations"]["split"] = "s"
    cfg["thesis"]["split"] = "s"
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def corrupt_image(root, ids):
    (root / "images" / f"{ids[1]}.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return f"{ids[1]}.png", "cannot read image"


def label_out_of_table(root, ids):
    lab = np.zeros((40, 48), np.uint8)
    lab[18:26, 10:20] = 2
    lab[0, 0] = 9
    write_label(root / "labels" / f"{ids[2]}.png", lab)
    return f"{ids[2]}.png", "label values [9] are outside the class table"


def size_mismatch(root, ids):
    lab = np.zeros((20, 20), np.uint8)
    lab[5:10, 5:10] = 2
    write_label(root / "labels" / f"{ids[0]}.png", lab)
    return f"{ids[0]}.png", "does not match image"


@pytest.mark.parametrize("breaker", [corrupt_image, label_out_of_table, size_mismatch])
def test_bad_file_stops_the_workflow_at_verification_with_one_clear_line(tmp_path, breaker):
    """A canonical dataset is checked once, before its splits exist: the pool is never started."""
    data = tmp_path / "data"
    ids = make_dataset(data)
    fname, message = breaker(data, ids)
    cfg = config_for(tmp_path, data)
    pool = "results/demo/mine/s/pool"
    p = run_snakemake(pool, "--cores", "1", "--configfile", str(cfg), cwd=tmp_path, check=False)
    assert p.returncode != 0
    log = (tmp_path / "results/demo/logs/verify_dataset/mine.log").read_text()
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fname in errors[0] and message in errors[0], log
    assert "Traceback" not in log
    assert not (tmp_path / pool).exists() and not (tmp_path / "results/demo/mine/verified.json").exists()
    assert not list((tmp_path / "results/demo/mine").glob(".verified*"))  # no temp left behind


def test_empty_split_is_a_clear_error(tmp_path):
    data = tmp_path / "data"
    make_dataset(data)
    (data / "sets" / "train.txt").write_text("")
    cfg = config_for(tmp_path, data)
    target = "results/demo/mine/s/splits/train.txt"
    p = run_snakemake(target, "--cores", "1", "--configfile", str(cfg), cwd=tmp_path, check=False)
    assert p.returncode != 0
    log = (tmp_path / "results/demo/logs/verify_dataset/mine.log").read_text()
    assert "train.txt: split list is empty" in log
    assert not (tmp_path / target).exists()


def test_model_missing_from_the_offline_cache_is_one_clear_line(tmp_path):
    """A hub id whose prefetch marker exists but whose files are not in hf_home (e.g. another
    HF_HOME on the nodes): the captions job fails with the id and how to download it."""
    data = tmp_path / "data"
    make_dataset(data)
    cfg = yaml.safe_load(config_for(tmp_path, data).read_text())
    cfg["hf_home"] = str(tmp_path / "hf")
    cfg["generative"]["captioner"]["model"] = "Salesforce/blip2-opt-2.7b"
    marker = tmp_path / "hf/.segaug/hub/Salesforce--blip2-opt-2.7b.ready"
    marker.parent.mkdir(parents=True)
    marker.write_text("{}\n")
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    target = "results/demo/mine/s/gen/captions.json"
    p = run_snakemake(target, "--cores", "1", "--configfile", str(path), cwd=tmp_path, check=False)
    assert p.returncode != 0
    log = (tmp_path / "results/demo/logs/captions/mine/s.log").read_text()
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, log
    assert "'Salesforce/blip2-opt-2.7b' is not in the Hugging Face cache" in errors[0]
    assert "snakemake prefetch" in errors[0] and "Traceback" not in log
    assert not (tmp_path / target).exists()


@pytest.mark.parametrize(
    "edit,message",
    [
        (lambda c: c["table1"].update(d_final="gen-nope"), "key 'table1.d_final': no variant 'nope'"),
        (
            lambda c: c["generative"]["variants"]["default"].update(generator="dalle"),
            "key 'generative.variants.default.generator': unknown generator 'dalle'",
        ),
        (
            lambda c: c["generative"]["variants"]["default"].update(prior="none"),
            "key 'generative.variants.default.prior': use prior 'none' with an sdxl_inpaint generator",
        ),
        (
            lambda c: c["generative"]["variants"]["default"].update(n_balance=0),
            "key 'generative.variants.default.n_balance'",
        ),
        (lambda c: c["generative"].update(stepz=3), "unknown key 'generative.stepz'"),
        (lambda c: c["ablations"].update(model="unet"), "key 'ablations.model': unknown model 'unet'"),
    ],
)
def test_bad_generative_config_is_one_clear_error(tmp_path, edit, message):
    cfg = yaml.safe_load((ROOT / "config" / "demo.yaml").read_text())
    edit(cfg)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    p = run_snakemake("-n", "--configfile", str(path), cwd=tmp_path, check=False)
    assert p.returncode != 0
    assert message in p.stdout + p.stderr, (p.stdout + p.stderr)[-2000:]


def test_unknown_class_to_exclude_from_balancing(tmp_path):
    """Checked against the dataset's own class table when the workflow starts, not in a job."""
    data = tmp_path / "data"
    make_dataset(data)
    cfg = yaml.safe_load(config_for(tmp_path, data).read_text())
    cfg["generative"]["balance_exclude"] = ["background"]  # this dataset has no background
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(cfg))
    target = "results/demo/mine/s/gen/plans/balance-auto.json"
    p = run_snakemake(target, "--cores", "1", "--configfile", str(path), cwd=tmp_path, check=False)
    assert p.returncode != 0
    assert "generative.balance_exclude[0]: unknown class 'background'; known: grass, road, car" in p.stdout + p.stderr
    assert not (tmp_path / "results").exists()
