#!/usr/bin/env python3
"""Writes the small HDF5 fixtures under fixtures/h5/ with h5py, for cross-checking Ingot's HDF5 reader against
files the reference library wrote. Run with a Python that has h5py and numpy:  python scripts/make_h5_fixtures.py
"""
import os
import h5py
import numpy as np

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "h5")
os.makedirs(out, exist_ok=True)

# A PyTorch-style state dict as h5py users save it: dataset path = name with '.' -> '/'.
with h5py.File(os.path.join(out, "h5py_state_dict.h5"), "w") as f:
    f.attrs["format"] = "pt"
    f["model/embed/weight"] = np.arange(24, dtype=np.float32).reshape(6, 4) / 8
    # chunked + gzip: read through libhdf5's filter pipeline
    f.create_dataset("model/layers/0/gz/weight", data=(np.arange(128, dtype=np.float32) * 0.25 - 3).reshape(16, 8),
                     chunks=(4, 8), compression="gzip", compression_opts=6)
    # bf16 stored as uint16 bits with a dtype attribute
    bf = (np.array([1, -2, 0.5, 3.140625], dtype=np.float32).view(np.uint32) >> 16).astype(np.uint16)
    d = f.create_dataset("model/layers/0/bf/weight", data=bf)
    d.attrs["dtype"] = "BF16"
    f["model/layers/0/half/weight"] = np.array([0.5, -1.5, 65504, 0], dtype=np.float16)
    f["model/ids"] = np.array([1, 2, 3], dtype=np.int64)

# Keras 3 .weights.h5 layout: layers/<name>/vars/<i>
with h5py.File(os.path.join(out, "keras_model.weights.h5"), "w") as f:
    g = f.create_group("layers/dense/vars")
    g["0"] = np.arange(12, dtype=np.float32).reshape(4, 3)
    g["1"] = np.zeros(3, dtype=np.float32)
    f.create_group("optimizer/vars")
print("wrote", sorted(os.listdir(out)))
