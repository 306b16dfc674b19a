"""The uv catalogs of an output folder, from the artifacts' reports (uv itself reads them in
tests/integration/test_ci_python.py)."""

from __future__ import annotations

import json
import os

from buildkit.container.uvcatalog import CATALOG, update_catalogs


def artifact(out, name, *, verified=True, when=0):
    (out / f"{name}.tar.gz").write_bytes(b"not really a tar")
    report = out / f"{name}.json"
    report.write_text(json.dumps({"artifact": f"{name}.tar.gz", "sha256": "ab" * 32, "verified": verified,
                                  "image": {"name": name.split("-")[-2]}}))
    os.utime(report, (1_700_000_000 + when, 1_700_000_000 + when))


def test_one_entry_per_version_and_one_catalog_per_distribution(tmp_path):
    artifact(tmp_path, "python-3.13.5-openssl-3.0.20-sqlite-3.40.1-debian12-x86_64", when=1)
    artifact(tmp_path, "python-3.13.5-openssl-3.0.20-sqlite-3.40.1-rocky9-x86_64", when=2)
    artifact(tmp_path, "python-3.14.0rc2-openssl-3.5.7-sqlite-3.46.1-rocky9-x86_64", when=3)
    artifact(tmp_path, "python-3.12.1-openssl-3.0.20-sqlite-3.40.1-centos7-x86_64", verified=False)
    (tmp_path / CATALOG).write_text(json.dumps({"pypy-3.10.14-linux-x86_64-gnu": {"name": "pypy", "url": "x"}}))
    said = []
    written = update_catalogs(tmp_path, said.append)
    assert [p.name for p in written] == [CATALOG, "download-metadata-debian12.json", "download-metadata-rocky9.json"]
    main = json.loads((tmp_path / CATALOG).read_text())
    assert set(main) == {"pypy-3.10.14-linux-x86_64-gnu", "cpython-3.13.5-linux-x86_64-gnu",
                         "cpython-3.14.0rc2-linux-x86_64-gnu"}  # a user's entry stays; the unverified is left out
    newest = main["cpython-3.13.5-linux-x86_64-gnu"]
    assert newest["buildkit"]["distribution"] == "rocky9"  # built last
    assert newest["url"] == (tmp_path / "python-3.13.5-openssl-3.0.20-sqlite-3.40.1-rocky9-x86_64.tar.gz").as_uri()
    assert (newest["major"], newest["minor"], newest["patch"], newest["prerelease"]) == (3, 13, 5, "")
    assert newest["arch"] == {"family": "x86_64", "variant": None} and newest["libc"] == "gnu"
    assert main["cpython-3.14.0rc2-linux-x86_64-gnu"]["prerelease"] == "rc2"
    assert any("also here: python-3.13.5-openssl-3.0.20-sqlite-3.40.1-debian12-x86_64.tar.gz" in s for s in said)
    debian = json.loads((tmp_path / "download-metadata-debian12.json").read_text())
    assert [e["buildkit"]["distribution"] for e in debian.values()] == ["debian12"]
    # An artifact deleted since leaves the catalogs; the user's entry still stays.
    for suffix in (".tar.gz", ".json"):
        (tmp_path / f"python-3.13.5-openssl-3.0.20-sqlite-3.40.1-rocky9-x86_64{suffix}").unlink()
    update_catalogs(tmp_path)
    main = json.loads((tmp_path / CATALOG).read_text())
    assert main["cpython-3.13.5-linux-x86_64-gnu"]["buildkit"]["distribution"] == "debian12"
    assert "pypy-3.10.14-linux-x86_64-gnu" in main


def test_nothing_verified_writes_nothing(tmp_path):
    artifact(tmp_path, "python-3.13.5-openssl-3.0.20-sqlite-3.40.1-debian12-x86_64", verified=False)
    assert update_catalogs(tmp_path) == [] and not (tmp_path / CATALOG).exists()


def test_an_optimized_build_is_the_same_version_to_uv(tmp_path):
    artifact(tmp_path, "python-3.13.5-pgo-lto-openssl-3.0.20-sqlite-3.40.1-debian12-x86_64", when=5)
    main = json.loads((update_catalogs(tmp_path)[0]).read_text())
    assert main["cpython-3.13.5-linux-x86_64-gnu"]["buildkit"]["optimized"] is True
