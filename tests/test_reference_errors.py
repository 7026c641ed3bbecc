"""Every corrupt or foreign file is one ReferenceFileError naming the file.

A corpus of damaged, truncated, foreign and hand-edited files: each must be
refused by ``reference.load`` (and so by ``compare``) with
``ReferenceFileError`` -- never a zip, JSON, NumPy or KeyError exception --
and the message must name the file. Plus the writing rules of ``save``: no
silent overwrite, no write through a symbolic link, no ``foo.txt.npz``.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import numpy as np
import pytest

from ebm_ref import reference
from ebm_ref.energies import RBM
from ebm_ref.reference import ReferenceFileError


def _model():
    rng = np.random.default_rng(0)
    return RBM(rng.standard_normal((4, 2)), rng.standard_normal(4), rng.standard_normal(2))


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """Entries of an intact file (bytes of every member, and the arrays)."""
    path = tmp_path_factory.mktemp("good") / "good.npz"
    model = _model()
    x = np.random.default_rng(1).integers(0, 2, size=(5, 4)).astype(float)
    reference.save(path, model, x, ["energy", "grad_x", "grad_params", "log_partition"])
    with np.load(path) as data:
        arrays = {k: data[k] for k in data.files}
    return path, arrays


def _manifest(arrays):
    return json.loads(str(arrays["manifest"]))


def _with_manifest(arrays, manifest, rehash=True):
    out = dict(arrays)
    if rehash and isinstance(manifest, dict) and "checksum" in manifest:
        from ebm_ref.reference._schema import checksum

        manifest = dict(manifest, checksum=checksum(out))
    out["manifest"] = np.array(json.dumps(manifest))
    return out


def _edit(field, value):
    def make(arrays):
        m = _manifest(arrays)
        if value is _DELETE:
            del m[field]
        else:
            m[field] = value
        return _with_manifest(arrays, m)

    return make


_DELETE = object()


def _entry(key, value):
    """Replace (or with None, drop) an entry, re-hashing so only the entry is wrong."""

    def make(arrays):
        out = dict(arrays)
        if value is None:
            out.pop(key)
        else:
            out[key] = value(out[key]) if callable(value) else value
        return _with_manifest(out, _manifest(arrays))

    return make


def _raw_entry(key, value):
    """Change an entry without re-hashing: only the checksum can tell."""

    def make(arrays):
        out = dict(arrays)
        out[key] = value(out[key])
        return out

    return make


# ---- corpus: name -> function of (good path, good arrays) returning bytes
def _npz_bytes(arrays):
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _zip_bytes(members):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _npy_bytes(a):
    buf = io.BytesIO()
    np.save(buf, a, allow_pickle=True)
    return buf.getvalue()


def _bytes(path):
    return path.read_bytes()


def _flip_byte(blob, at):
    b = bytearray(blob)
    b[at] ^= 0xFF
    return bytes(b)


def _member_offset(blob, member):
    """Offset of the first data byte of a stored (uncompressed) zip member."""
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        info = zf.getinfo(member)
    start = info.header_offset
    name_len = int.from_bytes(blob[start + 26 : start + 28], "little")
    extra_len = int.from_bytes(blob[start + 28 : start + 30], "little")
    return start + 30 + name_len + extra_len


CORPUS = {
    # not archives at all
    "empty": lambda p, a: b"",
    "text": lambda p, a: b"energy,grad_x\n1.0,2.0\n",
    "json": lambda p, a: json.dumps({"format": "ebm_ref.reference/2"}).encode(),
    "random_bytes": lambda p, a: np.random.default_rng(3).bytes(4096),
    "npy_file": lambda p, a: _npy_bytes(np.zeros(3)),
    "pickle": lambda p, a: pickle.dumps({"manifest": "x"}),
    "pk_prefix_only": lambda p, a: b"PK",
    "zip_magic_then_garbage": lambda p, a: b"PK\x03\x04" + np.random.default_rng(4).bytes(200),
    "html": lambda p, a: b"<!doctype html><html><body>404</body></html>",
    # damaged archives
    "truncated_half": lambda p, a: _bytes(p)[: len(_bytes(p)) // 2],
    "truncated_tail": lambda p, a: _bytes(p)[:-10],
    "truncated_head": lambda p, a: _bytes(p)[:100],
    "crc_error": lambda p, a: _flip_byte(_bytes(p), _member_offset(_bytes(p), "value/energy.npy") + 130),
    "damaged_npy_header": lambda p, a: _flip_byte(_bytes(p), _member_offset(_bytes(p), "value/energy.npy") + 2),
    "empty_zip": lambda p, a: _zip_bytes({}),
    # archives that are not reference files
    "zip_of_text": lambda p, a: _zip_bytes({"readme.txt": b"hello"}),
    "npz_without_manifest": lambda p, a: _npz_bytes({"a": np.zeros(3)}),
    "manifest_not_json": lambda p, a: _npz_bytes(dict(a, manifest=np.array("{not json"))),
    "manifest_a_list": lambda p, a: _npz_bytes(_with_manifest(a, [1, 2, 3])),
    "manifest_a_string": lambda p, a: _npz_bytes(_with_manifest(a, "ebm_ref")),
    "manifest_numbers": lambda p, a: _npz_bytes(dict(a, manifest=np.arange(3.0))),
    "manifest_bytes_entry": lambda p, a: _zip_bytes({"manifest.npy": b"{}"}),
    "manifest_object_array": lambda p, a: _npz_bytes(dict(a, manifest=np.array([{"a": 1}], dtype=object))),
    "pickled_value": lambda p, a: _npz_bytes(dict(a, **{"value/energy": np.array([None, 1.0], dtype=object)})),
    # manifest fields
    "no_format": lambda p, a: _npz_bytes(_edit("format", _DELETE)(a)),
    "foreign_format": lambda p, a: _npz_bytes(_edit("format", "other.tool/1")(a)),
    "future_format": lambda p, a: _npz_bytes(_edit("format", "ebm_ref.reference/99")(a)),
    "format_a_number": lambda p, a: _npz_bytes(_edit("format", 2)(a)),
    "missing_params": lambda p, a: _npz_bytes(_edit("params", _DELETE)(a)),
    "missing_model": lambda p, a: _npz_bytes(_edit("model", _DELETE)(a)),
    "missing_quantities": lambda p, a: _npz_bytes(_edit("quantities", _DELETE)(a)),
    "missing_checksum": lambda p, a: _npz_bytes(_edit("checksum", _DELETE)(a)),
    "params_a_string": lambda p, a: _npz_bytes(_edit("params", "W")(a)),
    "params_of_numbers": lambda p, a: _npz_bytes(_edit("params", [1, 2])(a)),
    "params_repeated": lambda p, a: _npz_bytes(_edit("params", ["W", "W"])(a)),
    "n_features_a_string": lambda p, a: _npz_bytes(_edit("n_features", "4")(a)),
    "n_features_a_bool": lambda p, a: _npz_bytes(_edit("n_features", True)(a)),
    "n_features_zero": lambda p, a: _npz_bytes(_edit("n_features", 0)(a)),
    "fixed_a_list": lambda p, a: _npz_bytes(_edit("fixed", [])(a)),
    "seed_a_float": lambda p, a: _npz_bytes(_edit("seed", 0.5)(a)),
    "formula_version_old": lambda p, a: _npz_bytes(_edit("formula_version", 0)(a)),
    "formula_version_a_string": lambda p, a: _npz_bytes(_edit("formula_version", "1")(a)),
    "dtype_float32": lambda p, a: _npz_bytes(_edit("dtype", "float32")(a)),
    "unknown_model": lambda p, a: _npz_bytes(_edit("model", "Transformer")(a)),
    "unknown_quantity": lambda p, a: _npz_bytes(_edit("quantities", ["energy", "entropy"])(a)),
    "quantity_without_value": lambda p, a: _npz_bytes(_edit("quantities", ["energy", "hessian_diag"])(a)),
    "param_without_entry": lambda p, a: _npz_bytes(_edit("params", ["W", "b_v", "b_h", "c"])(a)),
    "fixed_array_without_entry": lambda p, a: _npz_bytes(_edit("fixed_arrays", ["means"])(a)),
    "n_features_wrong": lambda p, a: _npz_bytes(_edit("n_features", 5)(a)),
    # entries
    "no_input_x": lambda p, a: _npz_bytes(_entry("input/x", None)(a)),
    "no_weights": lambda p, a: _npz_bytes(_entry("input/weights", None)(a)),
    "no_param": lambda p, a: _npz_bytes(_entry("param/W", None)(a)),
    "value_float32": lambda p, a: _npz_bytes(_entry("value/energy", lambda v: v.astype(np.float32))(a)),
    "value_int": lambda p, a: _npz_bytes(_entry("value/energy", lambda v: v.astype(np.int64))(a)),
    "value_wrong_shape": lambda p, a: _npz_bytes(_entry("value/grad_x", lambda v: v.T.copy())(a)),
    "grad_param_wrong_shape": lambda p, a: _npz_bytes(_entry("value/grad_params/W", lambda v: v[:1])(a)),
    "x_one_dimensional": lambda p, a: _npz_bytes(_entry("input/x", lambda v: v.ravel())(a)),
    "x_empty": lambda p, a: _npz_bytes(_entry("input/x", lambda v: v[:0])(a)),
    "log_partition_a_vector": lambda p, a: _npz_bytes(_entry("value/log_partition", lambda v: v.reshape(1))(a)),
    "x_strings": lambda p, a: _npz_bytes(_entry("input/x", np.array([["a"] * 4] * 5))(a)),
    # checksum
    "value_edited": lambda p, a: _npz_bytes(_raw_entry("value/energy", lambda v: v + 1e-12)(a)),
    "param_edited": lambda p, a: _npz_bytes(_raw_entry("param/W", lambda v: -v)(a)),
    "input_edited": lambda p, a: _npz_bytes(_raw_entry("input/x", lambda v: 1.0 - v)(a)),
    "extra_entry": lambda p, a: _npz_bytes(dict(a, **{"value/extra": np.zeros(2)})),
    "checksum_garbage": lambda p, a: _npz_bytes(_with_manifest(a, dict(_manifest(a), checksum="sha256:00"), rehash=False)),
}


def test_corpus_is_large_enough():
    assert len(CORPUS) >= 40


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_corrupt_file_is_one_error_naming_the_file(tmp_path, good, case):
    path, arrays = good
    bad = tmp_path / f"corpus_{case}.npz"
    bad.write_bytes(CORPUS[case](path, arrays))
    with pytest.raises(ReferenceFileError) as info:
        reference.load(bad)
    assert str(bad) in str(info.value)
    assert isinstance(info.value, ValueError)  # code that caught ValueError still does
    # compare reads the file the same way
    with pytest.raises(ReferenceFileError):
        reference.compare(bad, {})


def test_corpus_controls_load(tmp_path, good):
    """The helpers themselves produce a loadable file when nothing is changed."""
    path, arrays = good
    same = tmp_path / "same.npz"
    same.write_bytes(_npz_bytes(_with_manifest(arrays, _manifest(arrays))))
    ref = reference.load(same)
    assert ref.manifest["quantities"] == ["energy", "grad_x", "grad_params", "log_partition"]
    assert reference.compare(same, {"energy": ref.values["energy"]}).passed


def test_format_1_without_checksum_is_read(tmp_path, good):
    path, arrays = good
    m = _manifest(arrays)
    del m["checksum"]
    m["format"] = "ebm_ref.reference/1"
    old = tmp_path / "old.npz"
    old.write_bytes(_npz_bytes(_with_manifest(arrays, m)))
    np.testing.assert_array_equal(reference.load(old).values["energy"], arrays["value/energy"])


def test_parameters_that_make_no_model(tmp_path, good):
    path, arrays = good
    bad = tmp_path / "nan_param.npz"
    bad.write_bytes(_npz_bytes(_entry("param/W", lambda v: np.full_like(v, np.nan))(arrays)))
    ref = reference.load(bad)  # the file is intact; the model it describes is not
    with pytest.raises(ReferenceFileError, match="nan_param.npz"):
        ref.model()


def test_missing_file_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        reference.load(tmp_path / "absent.npz")
    with pytest.raises(TypeError, match="`path`"):
        reference.load(3)


# ---- writing ----------------------------------------------------------------
def _save(path, **kw):
    model = _model()
    return reference.save(path, model, np.zeros((2, 4)), ["energy"], **kw)


def test_save_never_overwrites_silently(tmp_path):
    path = _save(tmp_path / "r.npz")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="overwrite=True"):
        _save(path, seed=1)
    assert path.read_bytes() == before
    _save(path, seed=1, overwrite=True)
    assert reference.load(path).manifest["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.npz"]  # no temporary file left


def test_save_refuses_symbolic_links(tmp_path):
    target = tmp_path / "precious.npz"
    target.write_bytes(b"keep me")
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    for overwrite in (False, True):
        with pytest.raises(ValueError, match="symbolic link"):
            _save(link, overwrite=overwrite)
    assert target.read_bytes() == b"keep me"
    dangling = tmp_path / "dangling.npz"
    dangling.symlink_to(tmp_path / "nowhere.npz")
    with pytest.raises(ValueError, match="symbolic link"):
        _save(dangling)
    assert not (tmp_path / "nowhere.npz").exists()


def test_save_suffix_rule(tmp_path):
    assert _save(tmp_path / "plain").name == "plain.npz"
    with pytest.raises(ValueError, match=r"\.npz"):
        _save(tmp_path / "foo.txt")
    assert not (tmp_path / "foo.txt").exists() and not (tmp_path / "foo.txt.npz").exists()


def test_save_into_a_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        _save(tmp_path / "no" / "such" / "r.npz")
    with pytest.raises(IsADirectoryError):
        _save(tmp_path / "dir.npz" if (tmp_path / "dir.npz").mkdir() is None else None)
