"""The peers checkpoint-bench compares swift-checkpoint with, on the same data and the same disk.

    peers.py list                                    # the peers this environment can run, as JSON
    peers.py run --peer NAME --data X.npy --dir DIR  # save X.npy with NAME into DIR, restore it

`run` loads the array (from the page cache: checkpoint-bench has just written it), then times a
save that ends with every written file fsync'ed, and a restore from the warm page cache into a
NumPy array. It checks that the restored array equals the saved one and prints one JSON object:
save and restore seconds, stored bytes, whether the peer compresses, and its version and settings.
A peer that restores different data is an error (exit status 1), not a figure.

Settings: HDF5 datasets are chunked in 4 MiB chunks (swift-checkpoint's default chunk size);
compression levels are each library's fastest usual choice (zstd/blosc level 1, gzip level 1);
Blosc and Blosc2 use two threads (this machine's cores), the other codecs the one their HDF5 filter
has. Orbax is `StandardCheckpointer` with its defaults (OCDBT with zstd). ADIOS2's PyPI wheel has
no compression operator, and PyTorch's distributed checkpoint (DCP) does not compress: both count
as uncompressed peers, beside `np.save`.
"""

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

os.environ.setdefault("BLOSC_NTHREADS", "2")

CHUNK_BYTES = 4 << 20


def fsync_tree(path):
    """fsync every file under path (or path itself), then each directory."""
    if os.path.isfile(path):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return
    for root, _, files in os.walk(path):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def tree_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(root, name)) for root, _, files in os.walk(path) for name in files)


# Each peer: (compresses, version(), save(array, target), restore(target) -> array).


def npy_peer():
    def save(array, target):
        np.save(target, array)
        fsync_tree(target)

    return False, lambda: f"numpy {np.__version__}", save, lambda target: np.load(target)


def hdf5_peer(make_filter):
    import h5py
    import hdf5plugin

    def version():
        return (
            f"h5py {h5py.__version__}, HDF5 {h5py.version.hdf5_version}, hdf5plugin {hdf5plugin.version}, "
            f"{make_filter.__doc__}, 4 MiB chunks"
        )

    def save(array, target):
        chunk = max(1, CHUNK_BYTES // array.itemsize)
        with h5py.File(target, "w") as file:
            file.create_dataset(
                "field", data=array, chunks=(min(chunk, array.shape[0]),), **make_filter(hdf5plugin)
            )
        fsync_tree(target)

    def restore(target):
        with h5py.File(target, "r") as file:
            return file["field"][...]

    return True, version, save, restore


def bitshuffle_lz4(plugin):
    """Bitshuffle + LZ4"""
    return dict(plugin.Bitshuffle(cname="lz4"))


def bitshuffle_zstd(plugin):
    """Bitshuffle + zstd level 1"""
    return dict(plugin.Bitshuffle(cname="zstd", clevel=1))


def blosc2_zstd_shuffle(plugin):
    """Blosc2 zstd level 1 + byte shuffle, 2 threads"""
    return dict(plugin.Blosc2(cname="zstd", clevel=1, filters=plugin.Blosc2.SHUFFLE))


def blosc_lz4_shuffle(plugin):
    """Blosc lz4 level 5 + byte shuffle, 2 threads"""
    return dict(plugin.Blosc(cname="lz4", clevel=5, shuffle=plugin.Blosc.SHUFFLE))


def gzip_shuffle(_):
    """HDF5's own shuffle + gzip level 1"""
    return dict(shuffle=True, compression="gzip", compression_opts=1)


def orbax_peer():
    import jax
    import orbax.checkpoint as ocp

    checkpointer = ocp.StandardCheckpointer()

    def version():
        import importlib.metadata

        return f"orbax-checkpoint {importlib.metadata.version('orbax-checkpoint')}, jax {jax.__version__}, StandardCheckpointer defaults"

    def save(array, target):
        checkpointer.save(os.path.abspath(target), {"field": array})
        checkpointer.wait_until_finished()
        fsync_tree(target)

    def restore(target):
        return np.asarray(checkpointer.restore(os.path.abspath(target))["field"])

    return True, version, save, restore


def adios2_peer():
    import adios2

    def save(array, target):
        with adios2.Stream(target, "w") as stream:
            stream.write("field", array, array.shape, [0], array.shape)
        fsync_tree(target)

    def restore(target):
        with adios2.FileReader(target) as reader:
            return reader.read("field")

    return False, lambda: f"adios2 {adios2.__version__}, BP5, no operator (none in the PyPI wheel)", save, restore


def torch_dcp_peer():
    import torch
    import torch.distributed.checkpoint as dcp

    def save(array, target):
        dcp.save({"field": torch.from_numpy(array)}, checkpoint_id=target)
        fsync_tree(target)

    def restore(target):
        state = {"field": torch.empty(0)}
        meta = dcp.FileSystemReader(target).read_metadata()
        size = meta.state_dict_metadata["field"].size
        dtype = meta.state_dict_metadata["field"].properties.dtype
        state["field"] = torch.empty(size, dtype=dtype)
        dcp.load(state, checkpoint_id=target)
        return state["field"].numpy()

    return False, lambda: f"torch {torch.__version__}, torch.distributed.checkpoint, no process group", save, restore


PEERS = {
    "npy": npy_peer,
    "hdf5-bitshuffle-lz4": lambda: hdf5_peer(bitshuffle_lz4),
    "hdf5-bitshuffle-zstd": lambda: hdf5_peer(bitshuffle_zstd),
    "hdf5-blosc2-zstd-shuffle": lambda: hdf5_peer(blosc2_zstd_shuffle),
    "hdf5-blosc-lz4-shuffle": lambda: hdf5_peer(blosc_lz4_shuffle),
    "hdf5-gzip-shuffle": lambda: hdf5_peer(gzip_shuffle),
    "orbax": orbax_peer,
    "adios2": adios2_peer,
    "torch-dcp": torch_dcp_peer,
}


def available():
    found, missing = [], {}
    for name, make in PEERS.items():
        try:
            make()
            found.append(name)
        except Exception as error:  # an import that fails: the peer is missing here
            missing[name] = f"{type(error).__name__}: {error}"
    return found, missing


def run(name, data, directory):
    compresses, version, save, restore = PEERS[name]()
    array = np.load(data)
    target = os.path.join(directory, name + (".npy" if name == "npy" else ".h5" if name.startswith("hdf5") else ""))
    if os.path.isdir(target):
        shutil.rmtree(target)
    elif os.path.exists(target):
        os.remove(target)
    start = time.perf_counter()
    save(array, target)
    saved = time.perf_counter() - start
    start = time.perf_counter()
    restored = restore(target)
    restored_seconds = time.perf_counter() - start
    if restored.dtype != array.dtype or not np.array_equal(restored, array):
        print(json.dumps({"peer": name, "error": "restored array differs from the saved one"}))
        return 1
    print(
        json.dumps(
            {
                "peer": name,
                "compresses": compresses,
                "save_seconds": saved,
                "restore_seconds": restored_seconds,
                "stored_bytes": tree_bytes(target),
                "raw_bytes": array.nbytes,
                "version": version(),
            }
        )
    )
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("list")
    runner = commands.add_parser("run")
    runner.add_argument("--peer", required=True, choices=sorted(PEERS))
    runner.add_argument("--data", required=True)
    runner.add_argument("--dir", required=True)
    arguments = parser.parse_args()
    if arguments.command == "list":
        found, missing = available()
        print(json.dumps({"peers": found, "missing": missing}))
        return 0
    return run(arguments.peer, arguments.data, arguments.dir)


if __name__ == "__main__":
    sys.exit(main())
