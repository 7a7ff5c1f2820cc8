"""Bad input through the real workflow: one clear error naming the file, nothing half-written."""

import numpy as np
import pytest
import yaml

from conftest import ROOT, run_snakemake
from segaug.data.canonical import ClassTable, write_image, write_label, write_split

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
    cfg["table1"]["splits"] = ["s"]
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
def test_bad_file_fails_the_pool_with_one_clear_line(tmp_path, breaker):
    data = tmp_path / "data"
    ids = make_dataset(data)
    fname, message = breaker(data, ids)
    cfg = config_for(tmp_path, data)
    pool = "results/demo/mine/s/pool"
    p = run_snakemake(pool, "--cores", "1", "--configfile", str(cfg), cwd=tmp_path, check=False)
    assert p.returncode != 0
    log = (tmp_path / "results/demo/logs/pool/mine/s.log").read_text()
    errors = [line for line in log.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and fname in errors[0] and message in errors[0], log
    assert "Traceback" not in log
    assert not (tmp_path / pool).exists()
    assert not list((tmp_path / "results/demo/mine/s").glob(".pool*"))  # no temp left behind


def test_empty_split_is_a_clear_error(tmp_path):
    data = tmp_path / "data"
    make_dataset(data)
    (data / "sets" / "train.txt").write_text("")
    cfg = config_for(tmp_path, data)
    target = "results/demo/mine/s/splits/train.txt"
    p = run_snakemake(target, "--cores", "1", "--configfile", str(cfg), cwd=tmp_path, check=False)
    assert p.returncode != 0
    log = (tmp_path / "results/demo/logs/make_split/mine/s.log").read_text()
    assert "train.txt: split list is empty" in log
    assert not (tmp_path / target).exists()
