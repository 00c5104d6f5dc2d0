"""The case folder: staging, atomic writes, refusal to overwrite, locking, schema versions."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import SimpleITK as sitk

from cardioplan.case import CASE_FILE, SCHEMA_VERSION, Case
from cardioplan.errors import CaseError, CaseExistsError, OutputError, SchemaVersionError


def _image(size=(8, 9, 10), spacing=(0.5, 0.7, 2.0)) -> sitk.Image:
    arr = np.arange(np.prod(size[::-1]), dtype=np.int16).reshape(size[::-1])
    img = sitk.GetImageFromArray(arr)
    img.SetSpacing(spacing)
    img.SetOrigin((-10.0, 20.0, 30.5))
    img.SetDirection((1, 0, 0, 0, -1, 0, 0, 0, 1))
    return img


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_create_commits_only_when_complete(tmp_path: Path) -> None:
    target = tmp_path / "case1"
    with Case.create(target) as case:
        case.write_image(_image(), produced_by="test", modality="CT")
        assert not target.exists(), "a case must not appear before it is complete"
    assert Case.is_case(target)
    opened = Case.open(target)
    img = opened.read_image()
    assert img.GetSpacing() == pytest.approx((0.5, 0.7, 2.0))
    assert img.GetOrigin() == pytest.approx((-10.0, 20.0, 30.5))
    assert img.GetDirection() == pytest.approx((1, 0, 0, 0, -1, 0, 0, 0, 1))
    assert img.GetPixelID() == sitk.sitkInt16
    assert opened.image_info["modality"] == "CT"
    assert opened.files["image"]["path"] == "image.nii"
    assert opened.files["image"]["produced_by"] == "test"
    assert opened.manifest["schema_version"] == SCHEMA_VERSION
    assert [p.name for p in tmp_path.iterdir()] == ["case1"], "no staging folder left behind"
    assert target.stat().st_mode & 0o077 == 0o077 & ~_umask(), "others may read the case"


def test_failed_creation_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="boom"), Case.create(tmp_path / "c") as case:
        case.write_image(_image(), produced_by="test")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_existing_case_is_not_overwritten_without_force(tmp_path: Path) -> None:
    target = tmp_path / "case"
    with Case.create(target) as case:
        case.write_image(_image(), produced_by="first")
    with pytest.raises(CaseExistsError, match="--force"):
        Case.create(target)
    with Case.create(target, force=True) as case:
        case.write_image(_image(size=(4, 4, 4)), produced_by="second")
    assert Case.open(target).read_image().GetSize() == (4, 4, 4)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case"], "no backup left behind"


def test_results_in_a_case_need_force_to_be_replaced(tmp_path: Path) -> None:
    with Case.create(tmp_path / "c") as case:
        case.write_image(_image(), produced_by="import")
    case = Case.open(tmp_path / "c")
    labels = sitk.Cast(_image() > 100, sitk.sitkUInt8)
    case.write_labels(labels, produced_by="segment")
    with pytest.raises(CaseExistsError, match="labels.nii.gz"):
        case.write_labels(labels, produced_by="segment")
    case.write_labels(labels, produced_by="segment again", force=True)
    assert Case.open(tmp_path / "c").files["labels"]["produced_by"] == "segment again"
    assert Case.open(tmp_path / "c").read_labels().GetPixelID() == sitk.sitkUInt8


def test_open_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(CaseError, match="cardioplan import"):
        Case.open(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CaseError, match="not a CardioPlan case"):
        Case.open(tmp_path / "empty")
    with Case.create(tmp_path / "c"):
        pass
    with pytest.raises(CaseError, match="cardioplan segment"):
        Case.open(tmp_path / "c").read_labels()


def test_newer_and_corrupt_manifests_are_refused_and_kept(tmp_path: Path) -> None:
    with Case.create(tmp_path / "c"):
        pass
    manifest = tmp_path / "c" / CASE_FILE
    data = json.loads(manifest.read_text())
    data["schema_version"] = SCHEMA_VERSION + 1
    manifest.write_text(json.dumps(data))
    with pytest.raises(SchemaVersionError, match="newer CardioPlan"):
        Case.open(tmp_path / "c")
    manifest.write_text('{"schema": "cardioplan.case", "sche')
    with pytest.raises(CaseError, match="corrupt"):
        Case.open(tmp_path / "c")
    assert manifest.read_text() == '{"schema": "cardioplan.case", "sche', "input kept as it was"


def _add_structure(path: str, name: str, n: int) -> None:
    case = Case.open(path)
    for i in range(n):
        case.set_structures({f"{name}{i}": {"volume_ml": float(i)}})


def test_concurrent_manifest_updates_keep_every_change(tmp_path: Path) -> None:
    with Case.create(tmp_path / "c"):
        pass
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_add_structure, args=(str(tmp_path / "c"), name, 15))
             for name in ("a", "b")]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    structures = Case.open(tmp_path / "c").structures
    assert len(structures) == 30, "edits from two processes must not overwrite each other"


def _mount_tmpfs(mount: Path, options: str) -> bool:
    mount.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount)],
                         capture_output=True)
    return res.returncode == 0


def test_unwritable_output_folder_gives_clear_error(tmp_path: Path) -> None:
    locked = tmp_path / "ro"
    if os.geteuid() == 0:  # root writes through permission bits: use a read-only mount
        if not _mount_tmpfs(locked, "ro,size=64k"):
            pytest.skip("cannot mount a read-only tmpfs here")
    else:
        locked.mkdir()
        locked.chmod(0o500)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            Case.create(locked / "case")
    finally:
        if os.geteuid() == 0:
            subprocess.run(["umount", str(locked)], check=False)
        else:
            locked.chmod(0o700)


@pytest.fixture
def tiny_disk(tmp_path: Path):
    mount = tmp_path / "tiny"
    if not _mount_tmpfs(mount, "size=256k"):
        pytest.skip("needs root to mount a tiny tmpfs for the full-disk test")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def test_full_disk_leaves_no_half_written_case(tiny_disk: Path) -> None:
    rng = np.random.default_rng(0)
    noisy = sitk.GetImageFromArray(rng.integers(-1000, 1000, (64, 128, 128), dtype=np.int16))
    with pytest.raises(OutputError, match="no space left"), \
            Case.create(tiny_disk / "case") as case:
        case.write_image(noisy, produced_by="test")
    assert list(tiny_disk.iterdir()) == [], "no staging folder or temp file left on a full disk"
