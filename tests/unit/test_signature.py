"""buildkit.kmod.signature: a module's signer read from PKCS#7 messages made by the openssl tool the way
kbuild's sign-file makes them (binary, detached, no attributes, no certificates), and matched against
certificates in DER and PEM."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from buildkit.errors import InputError
from buildkit.kmod.signature import (
    SIG_MARKER,
    Keyring,
    builtin_certificates,
    certificate_needles,
    module_signature,
    signer_of,
)


def make_key(work: Path, cn: str) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed: apt-get install openssl")
    key, cert = work / f"{cn}.pem", work / f"{cn}.der"
    subprocess.run(["openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={cn}/", "-keyout", str(key), "-outform", "DER", "-out", str(cert)],
                   check=True, capture_output=True)
    return key, cert


def signed_module(work: Path, key: Path, cert: Path, *, skid: bool = False, text: bytes = b"module body") -> bytes:
    """An ELF-looking body with sign-file's trailer: the PKCS#7 message, struct module_signature, the marker."""
    body = b"\x7fELF" + bytes(60) + text
    (work / "body").write_bytes(body)
    cmd = ["openssl", "cms", "-sign", "-binary", "-noattr", "-nocerts", "-nosmimecap", "-outform", "DER",
           "-md", "sha256", "-signer", str(cert), "-inkey", str(key), "-in", str(work / "body"),
           "-out", str(work / "sig")]
    subprocess.run(cmd + (["-keyid"] if skid else []), check=True, capture_output=True)
    message = (work / "sig").read_bytes()
    return body + message + struct.pack(">BBBBB3xI", 0, 0, 2, 0, 0, len(message)) + SIG_MARKER


def test_signer_by_issuer_and_serial_and_by_key_id(tmp_path):
    key, cert = make_key(tmp_path, "bk unit key")
    for skid, word in ((False, "serial 0x"), (True, "subject key id ")):
        data = signed_module(tmp_path, key, cert, skid=skid)
        message = module_signature(data)
        assert message and data.index(message) == 75
        signer = signer_of(message)
        assert signer is not None and word in signer.name and signer.needle in message
        assert signer.needle in certificate_needles(str(cert))
        ring = Keyring(certificate_needles(str(cert)), True)
        assert ring.holds(message) is True


def test_another_key_is_not_held_and_unknown_when_nothing_is_known(tmp_path):
    key, cert = make_key(tmp_path, "signer")
    _other_key, other_cert = make_key(tmp_path, "other")
    message = module_signature(signed_module(tmp_path, key, cert))
    assert Keyring(certificate_needles(str(other_cert)), True).holds(message) is False
    assert Keyring().holds(message) is None
    assert signer_of(message).name.startswith("CN=signer, serial 0x")


def test_pem_certificate_names_the_same_key(tmp_path):
    _key, cert = make_key(tmp_path, "pem")
    pem = tmp_path / "pem.crt"
    subprocess.run(["openssl", "x509", "-inform", "DER", "-in", str(cert), "-out", str(pem)], check=True)
    assert certificate_needles(str(pem)) == certificate_needles(str(cert))


def test_not_a_signature_and_not_a_certificate(tmp_path):
    assert module_signature(b"\x7fELF" + bytes(100)) == b""
    # a trailer whose id_type is not PKCS#7 (the old key-id scheme) is no message the kernel looks at
    assert module_signature(b"x" * 50 + struct.pack(">BBBBB3xI", 0, 0, 1, 0, 0, 10) + SIG_MARKER) == b""
    assert module_signature(b"x" + struct.pack(">BBBBB3xI", 0, 0, 2, 0, 0, 999) + SIG_MARKER) == b""
    assert signer_of(b"\x30\x03\x02\x01\x01") is None
    bad = tmp_path / "bad.der"
    bad.write_bytes(b"not a certificate")
    with pytest.raises(InputError, match="bad.der: not an X.509 certificate"):
        certificate_needles(str(bad))
    # a private key where the certificate belongs: said in one line (asn1crypto's messages span several)
    key, _cert = make_key(tmp_path, "k")
    with pytest.raises(InputError, match=r"k.pem: not an X.509 certificate \(its PEM block is a PRIVATE KEY\)"):
        certificate_needles(str(key))
    _kind_key = tmp_path / "k.der"
    subprocess.run(["openssl", "pkey", "-in", str(key), "-outform", "DER", "-out", str(_kind_key)], check=True)
    with pytest.raises(InputError) as raised:
        certificate_needles(str(_kind_key))
    assert "\n" not in str(raised.value) and "k.der: not an X.509 certificate (" in str(raised.value)
    with pytest.raises(InputError, match="missing.der: cannot read the certificate"):
        certificate_needles(str(tmp_path / "missing.der"))


def kernel_image(work: Path, payload: bytes, compress) -> Path:
    """A bzImage-shaped file: a setup header, then the compressed kernel, then a trailer."""
    image = work / "vmlinuz"
    image.write_bytes(b"MZ" + bytes(510) + b"HdrS" + bytes(64) + compress(payload) + bytes(16))
    return image


def test_keys_built_into_the_kernel_image_are_held(tmp_path):
    """Debian's 5.10 signs no in-tree module: the keys it holds are the certificates in its xz image."""
    import gzip
    import lzma

    ca_key, ca = make_key(tmp_path, "distro secure boot CA")
    key, cert = make_key(tmp_path, "distro signer")
    other_key, other = make_key(tmp_path, "someone else")
    payload = b"\0kernel text\0" * 1000 + ca.read_bytes() + b"\0\0" + cert.read_bytes() + b"\0more text" * 100
    for compress in (lambda d: lzma.compress(d, format=lzma.FORMAT_XZ), gzip.compress):
        found = builtin_certificates(str(kernel_image(tmp_path, payload, compress)))
        expected = {**certificate_needles(str(ca)), **certificate_needles(str(cert))}
        assert found == {needle: f"{name} (built into the kernel image)" for needle, name in expected.items()}
        ring = Keyring.of(None, None, str(kernel_image(tmp_path, payload, compress)))
        assert ring.holds(module_signature(signed_module(tmp_path, key, cert))) is True
        assert ring.known  # the image was read for the first signer the ring lacked
        assert ring.holds(module_signature(signed_module(tmp_path, other_key, other))) is False
        # read in a thread started ahead (while modules are read), the answers are the same
        ahead = Keyring.of(None, None, str(kernel_image(tmp_path, payload, compress)))
        ahead.prefetch()
        assert ahead.holds(module_signature(signed_module(tmp_path, key, cert))) is True
        assert ahead.needles == ring.needles and ahead.vmlinuz is None
    # what the standard library cannot decompress (6.12's zstd), or no image: not told, never guessed
    assert builtin_certificates(str(kernel_image(tmp_path, payload, lambda d: b"\x28\xb5\x2f\xfd" + d))) is None
    assert builtin_certificates(str(tmp_path / "missing")) is None
    assert Keyring.of(None, None, str(tmp_path / "missing")).holds(b"anything") is None
    ahead = Keyring.of(None, None, str(tmp_path / "missing"))
    ahead.prefetch()
    assert ahead.holds(b"anything") is None


def test_keyring_remembers_signers_and_tells_two_apart(tmp_path, monkeypatch):
    """Keyring.signer: a tree's modules share a signer, read once; another signer's messages are read anew."""
    import buildkit.kmod.signature as signature

    one, two = make_key(tmp_path, "one"), make_key(tmp_path, "two")
    first, again = (module_signature(signed_module(tmp_path, *one, text=text)) for text in (b"a", b"b"))
    other = module_signature(signed_module(tmp_path, *two))
    assert first != again  # the same key signs each body anew; the signer part is what repeats
    parsed = []
    monkeypatch.setattr(signature, "signer_of", lambda m: parsed.append(m) or signer_of(m))
    ring = Keyring()
    assert ring.signer(first) is ring.signer(again) and ring.signer(first).name.startswith("CN=one,")
    assert ring.signer(other).name.startswith("CN=two,") and len(parsed) == 2
    assert ring.signer(b"\x30\x03\x02\x01\x01") is None


def test_a_loader_reads_the_image_ahead_only_for_a_key_it_does_not_know(tmp_path):
    """Loader.expect: a module signed by a key the in-tree modules do not show starts the image's reading
    (in a thread, beside the reading of the modules); one signed by the in-tree key, or unsigned, does not."""
    import lzma

    from buildkit.kmod.load import Loader
    from buildkit.kmod.symvers import Symvers
    from buildkit.kmod.target import KernelTarget

    build_key, build_cert = make_key(tmp_path, "build key")
    old_key, old_cert = make_key(tmp_path, "old build key")
    modules = tmp_path / "lib" / "modules" / "6.1.0-99-amd64"
    (modules / "kernel").mkdir(parents=True)
    (modules / "kernel" / "intree.ko").write_bytes(signed_module(tmp_path, build_key, build_cert))
    (modules / "vmlinuz").write_bytes(kernel_image(tmp_path, b"\0" * 64 + old_cert.read_bytes(), lambda d: lzma.compress(
        d, format=lzma.FORMAT_XZ)).read_bytes())
    target = KernelTarget("t", "6.1.0-99-amd64", (6, 1), "6.1.0-99-amd64 SMP mod_unload ", "t", {}, Symvers("t", "5.6", ()), "t",
                          None, str(modules), "debian", 62)
    ours, old, unsigned = tmp_path / "ours.ko", tmp_path / "old.ko", tmp_path / "unsigned.ko"
    ours.write_bytes(signed_module(tmp_path, build_key, build_cert))
    old.write_bytes(signed_module(tmp_path, old_key, old_cert))
    unsigned.write_bytes(b"\x7fELF" + bytes(60))
    for given, ahead in (([ours, unsigned], False), ([unsigned, old], True)):
        loader = Loader(target)
        loader.expect([str(p) for p in given])
        assert (loader.keyring()._reading is not None) is ahead
    assert loader.keyring().holds(module_signature(old.read_bytes())) is True  # the old key is in the image
