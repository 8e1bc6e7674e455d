"""aisys.save / aisys.load: the safetensors format (no pickle), round trips of tensors, state dicts and whole
checkpoints, files PyTorch's safetensors reads and writes, and clear refusals."""
from __future__ import annotations

import io
import json
import struct

import numpy as np
import pytest

import aisys
from aisys import nn, optim


def _checkpoint():
    aisys.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    opt = optim.Adam(model.parameters(), lr=0.01)
    model(aisys.randn(5, 3)).sum().backward()
    opt.step()
    return model, opt


def test_round_trip_of_a_checkpoint_with_model_optimizer_and_plain_values(tmp_path):
    model, opt = _checkpoint()
    half = aisys.tensor([[1.5, -2.0]], dtype=aisys.bfloat16)
    ck = {"epoch": 7, "model": model.state_dict(), "optimizer": opt.state_dict(), "best": 0.25, "tag": "run-1",
          "pair": (1, 2.5), "nothing": None, "half": half, "history": [1.0, 0.5]}
    aisys.save(ck, tmp_path / "ck.safetensors")
    back = aisys.load(tmp_path / "ck.safetensors")
    assert {k: back[k] for k in ("epoch", "best", "tag", "pair", "nothing", "history")} == \
        {"epoch": 7, "best": 0.25, "tag": "run-1", "pair": (1, 2.5), "nothing": None, "history": [1.0, 0.5]}
    assert back["half"].dtype is aisys.bfloat16 and back["half"].tolist() == [[1.5, -2.0]]
    for k, v in model.state_dict().items():
        assert back["model"][k].dtype is v.dtype and np.array_equal(back["model"][k].numpy(), v.numpy())
    assert sorted(back["optimizer"]["state"]) == [0, 1, 2, 3, 4, 5]             # int keys survive
    fresh, fresh_opt = _checkpoint()
    fresh.load_state_dict(back["model"])
    fresh_opt.load_state_dict(back["optimizer"])
    assert fresh_opt.param_groups[0]["betas"] == (0.9, 0.999)
    t = aisys.arange(6).reshape(2, 3)
    buf = io.BytesIO()
    aisys.save(t, buf)
    assert aisys.load(io.BytesIO(buf.getvalue())).tolist() == t.tolist()


def test_the_file_is_the_safetensors_layout():
    buf = io.BytesIO()
    aisys.save({"w": aisys.ones(2, 3), "step": aisys.tensor(4)}, buf)
    raw = buf.getvalue()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    assert n % 8 == 0 and header["w"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}
    assert header["step"] == {"dtype": "I64", "shape": [], "data_offsets": [24, 32]} and len(raw) == 8 + n + 32
    assert b"pickle" not in raw and "__metadata__" not in header          # a flat state dict: a plain file


def test_pytorch_reads_and_writes_the_same_files(tmp_path):
    st = pytest.importorskip("safetensors.torch")
    torch = pytest.importorskip("torch")
    model, _ = _checkpoint()
    aisys.save(model.state_dict(), tmp_path / "a.safetensors")
    theirs = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2))
    theirs.load_state_dict(st.load_file(str(tmp_path / "a.safetensors")))
    x = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    model.eval()
    theirs.eval()
    np.testing.assert_allclose(model(aisys.tensor(x)).numpy(), theirs(torch.tensor(x)).detach().numpy(), rtol=1e-5)
    st.save_file({k: v * 2 for k, v in theirs.state_dict().items()}, str(tmp_path / "b.safetensors"))
    back = aisys.load(tmp_path / "b.safetensors", map_location="cpu")
    np.testing.assert_allclose(back["0.weight"].numpy(), 2 * model[0].weight.numpy(), rtol=1e-6)
    meta = io.BytesIO()
    aisys.save({"model": model.state_dict(), "epoch": 2}, meta)
    assert set(st.load(meta.getvalue())) == {f"model.{k}" for k in model.state_dict()}


def test_refusals_are_clear(tmp_path):
    with pytest.raises(TypeError, match="is a Sequential. Save model.state_dict\\(\\) rather than the model"):
        aisys.save({"m": nn.Sequential()}, io.BytesIO())
    with pytest.raises(TypeError, match="stores tensors, numbers"):
        aisys.save({"f": open}, io.BytesIO())
    with pytest.raises(FileNotFoundError, match="no file at"):
        aisys.load(tmp_path / "missing.safetensors")
    (tmp_path / "junk.bin").write_bytes(b"\xff" * 40)
    with pytest.raises(ValueError, match="not a safetensors file"):
        aisys.load(tmp_path / "junk.bin")
    with pytest.raises(RuntimeError, match="runs on the CPU"):
        aisys.load(io.BytesIO(b""), map_location="cuda")
    torch = pytest.importorskip("torch")
    torch.save({"a": torch.ones(2)}, tmp_path / "p.pt")
    with pytest.raises(ValueError, match="torch.save checkpoint .* never unpickles"):
        aisys.load(tmp_path / "p.pt")


def test_module_npz_files_load_too(tmp_path):
    model, _ = _checkpoint()
    path = model.save(tmp_path / "m.npz")
    back = aisys.load(path)
    assert set(back) == set(model.state_dict())
