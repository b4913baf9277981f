#!/usr/bin/env python3
"""An independent reader for swift-checkpoint directories (shard format 1.x and 2.x, manifest versions 1
and 2: a file per rank, or aggregated files of one node each).

It is written from Documentation/FileFormat.md alone and applies every validation rule the
specification lists, so it doubles as a check that the specification is complete.

    python3 Scripts/ckpt_read.py DIR [--step N] [--rank R] [--entry NAME] [--verify] [--assemble NAME]
                                     [--key-file FILE ...]

Without --step it picks the newest committed checkpoint that verifies, falling back past damaged
ones (reported on stderr), as a restore does. It decodes the entries of one rank (every chunk's
SHA-256 is checked) and prints a JSON summary; --verify also decodes every entry of every rank;
--assemble puts the blocks every rank saved of a distributed array together into the global array
(section 10, rules R1-R5) and prints its summary with the SHA-256 of its bytes. Chunks an
incremental (2.x) shard uses from older checkpoints are read from their shards there. With
--key-file (repeatable), a checkpoint must also be sealed by one of the keys (FileFormat.md,
section 3, The seal): its manifest's HMAC-SHA256 in manifest.json.hmac; an unsealed, forged or
differently keyed one is treated as damaged.
Exit status 0 on success; 1 with `error: ...` on stderr on any failure.

Needs only the standard library plus zstd decompression: the `zstandard` module when importable,
otherwise the `zstd` command-line tool; and for format 3.0 shards (XXH3-128 chunk checksums) the
`xxhash` module, otherwise the `xxhsum` tool. NumPy is used, when present, to view arrays by dtype.
"""

import argparse
import hashlib
import hmac
import itertools
import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys

try:
    import zstandard
except ImportError:
    zstandard = None
try:
    import numpy
except ImportError:
    numpy = None
try:
    import xxhash
except ImportError:
    xxhash = None

SHARD_MAGIC, FOOTER_MAGIC = b"CKPTSNAP", b"CKPTEND\x00"
HEADER_SIZE, FOOTER_SIZE, DIGEST_SIZE = 16, 56, 32
MAJOR_VERSION, MANIFEST_VERSION = 3, 2
AGG_MAGIC, AGG_END_MAGIC, AGG_HEADER, AGG_ENTRY, AGG_FOOTER, AGG_MAX_REGIONS = b"CKPTAGG\x00", b"CKPTAGGE", 16, 56, 56, 1 << 16
AGG_NAME = re.compile(r"node-([0-9]{5,9})\.agg")
MAX_NAME, MAX_TYPE_NAME, MAX_DIMENSIONS = 255, 1024, 32
MAX_CHUNK_RAW, MAX_RATIO, CHUNK_RECORD_SIZE = 1 << 30, 32768, 8 + 8 + 8 + 1 + DIGEST_SIZE
CHUNK_RECORD_SIZE_2, BASE_RECORD_SIZE = CHUNK_RECORD_SIZE + DIGEST_SIZE + 4, 8 + DIGEST_SIZE
MAX_MANIFEST, MAX_CHECKSUM = 256 << 20, 4096
MAX_FIELDS, MAX_FIELD_NAME = 256, 64
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"

# On-disk scalar code -> (name, bytes per scalar, struct format, NumPy dtype).
SCALARS = {
    0: ("opaque", 0, None, None), 1: ("bool", 1, "?", "|b1"), 2: ("int8", 1, "b", "|i1"),
    3: ("uint8", 1, "B", "|u1"), 4: ("int16", 2, "h", "<i2"), 5: ("uint16", 2, "H", "<u2"),
    6: ("int32", 4, "i", "<i4"), 7: ("uint32", 4, "I", "<u4"), 8: ("int64", 8, "q", "<i8"),
    9: ("uint64", 8, "Q", "<u8"), 10: ("float16", 2, "e", "<f2"), 11: ("float32", 4, "f", "<f4"),
    12: ("float64", 8, "d", "<f8"),
}
ENCODINGS, FILTERS, CODECS = {0: "raw", 1: "json"}, {0: "none", 1: "shuffle", 2: "delta"}, {0: "raw", 1: "zstd"}
NAME_COMPONENT = re.compile(rb"[A-Za-z0-9_.\-]+")
COMMITTED = re.compile(r"ckpt-([0-9]{1,20})")
# The manifest's required fields: a type, [element shape], {key: shape}, or {str: value shape} for maps.
MANIFEST_SHAPE = {
    "manifestVersion": int, "shardFormat": str, "library": str, "zstdVersion": str, "step": int,
    "createdAt": str, "rankCount": int, "hostName": str, "metadata": {str: str},
    "settings": {"compression": str, "filter": str, "chunkSize": int, "threads": int},
    "shards": [{"rank": int, "file": str, "fileBytes": int, "indexSHA256": str,
                "rawBytes": int, "storedBytes": int,
                "entries": [{"name": str, "type": str, "scalar": str, "shape": [int], "filter": str,
                             "rawBytes": int, "storedBytes": int, "chunks": int}]}],
    "timings": dict.fromkeys(
        ["stageSeconds", "encodeSeconds", "writeSeconds", "syncSeconds", "commitSeconds"], float),
}


KEYS = []  # (key id, secret) pairs from --key-file: with any, every manifest must be sealed by one
MAX_KEY, MIN_KEY = 1024, 32
HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")


def read_key(path):
    """Reads a key file (FileFormat.md section 3): this user's, mode 0600 or stricter, raw or hex."""
    with open(path, "rb") as f:
        info = os.fstat(f.fileno())
        data = f.read(2 * MAX_KEY + 3)
    if info.st_uid != os.geteuid():
        raise CheckpointError(f"{path}: key file is owned by user {info.st_uid}, not by this user")
    if info.st_mode & 0o077:
        raise CheckpointError(f"{path}: key file is readable or writable by others; run 'chmod 600' on it")
    trimmed = data.strip(b" \t\r\n")
    secret = bytes.fromhex(trimmed.decode()) if HEX.fullmatch(trimmed.decode("latin-1")) else data
    if not MIN_KEY <= len(secret) <= MAX_KEY:
        raise CheckpointError(f"{path}: a key must have {MIN_KEY} to {MAX_KEY} bytes, not {len(secret)}")
    return hmac.new(secret, b"swift-checkpoint key id", hashlib.sha256).hexdigest()[:16], secret


def check_seal(directory, data, m=None):
    """With keys: before parsing, the seal must match one key; after, the manifest must name it."""
    try:
        with open(f"{directory}/manifest.json.hmac", "rb") as f:
            seal = f.read(MAX_CHECKSUM + 1)
    except FileNotFoundError:
        raise Damaged(f"{directory}: checkpoint is not authenticated (no manifest.json.hmac) "
                      "but a key is given") from None
    for key_id, secret in KEYS:
        mac = hmac.new(secret, data, hashlib.sha256).hexdigest().encode()
        if len(seal) >= 64 and hmac.compare_digest(seal[:64], mac):
            return key_id
    raise Damaged(f"{directory}/manifest.json: its MAC matches none of the given keys; it was changed "
                  "after it was written, or sealed with another key")


class CheckpointError(Exception):
    """A failure that stops the reader (unsupported version, missing entry, I/O trouble)."""


class Damaged(CheckpointError):
    """The checkpoint fails validation; a restore falls back to an older one."""


class Unsupported(CheckpointError):
    """The file is of a newer major version than this reader knows."""


class Cursor:
    """Reads little-endian integers and u16-length strings, checking every length first."""

    def __init__(self, data, what):
        self.data, self.pos, self.what = data, 0, what

    @property
    def remaining(self):
        return len(self.data) - self.pos

    def fail(self, message):
        return Damaged(f"{self.what} is damaged: {message} (at byte {self.pos})")

    def take(self, count):
        if count > self.remaining:
            raise self.fail(f"needs {count} bytes, {self.remaining} remain")
        self.pos += count
        return self.data[self.pos - count:self.pos]

    def uint(self, width):
        return int.from_bytes(self.take(width), "little")

    def string16(self, limit):
        count = self.uint(2)
        if count > limit:
            raise self.fail(f"a string of {count} bytes exceeds the limit of {limit}")
        try:
            return self.take(count).decode("utf-8")
        except UnicodeDecodeError:
            raise self.fail("a string is not valid UTF-8") from None


def name_problem(name):
    """Why `name` breaks the entry-name rules, or None when it follows them."""
    raw = name.encode("utf-8")
    if not 1 <= len(raw) <= MAX_NAME:
        return f"length {len(raw)} is outside 1...{MAX_NAME}"
    for component in raw.split(b"/"):
        if component in (b"", b".", b"..") or not NAME_COMPONENT.fullmatch(component):
            return f"bad component {component!r}"
    return None


def parse_index(data, data_end, path, major=1):
    """Parses and validates a shard index whose chunk data lies in [HEADER_SIZE, data_end).

    Returns (bases, entries): bases is a list of (step, index digest) (2.x; empty for 1.x); each
    chunk is (offset, stored, raw, codec, digest, raw digest or None, location), where location 0
    is this shard and i > 0 is bases[i - 1].
    """
    cur = Cursor(data, f"shard index of {path}")
    incremental = major == 2  # 1.x and 3.x share one layout; 3.x checksums chunks with XXH3-128
    bases, record_size = [], CHUNK_RECORD_SIZE_2 if incremental else CHUNK_RECORD_SIZE
    if incremental:
        nbases = cur.uint(4)
        if nbases > cur.remaining // BASE_RECORD_SIZE:
            raise cur.fail(f"index claims {nbases} base shards")
        for _ in range(nbases):
            step, digest = cur.uint(8), cur.take(DIGEST_SIZE)
            if bases and step <= bases[-1][0]:
                raise cur.fail("base shards are not in ascending order of step")
            bases.append((step, digest))
    count = cur.uint(4)
    if count > len(data) // 26:
        raise cur.fail(f"index claims {count} entries")
    entries, names = [], set()
    for _ in range(count):
        name = cur.string16(MAX_NAME)
        if name_problem(name):
            raise cur.fail(f"invalid entry name {name!r}: {name_problem(name)}")
        if name in names:
            raise cur.fail(f"entry {name!r} appears twice")
        names.add(name)
        e = {"name": name, "checksum": "xxh3" if major == 3 else "sha256"}
        for key, table in (("encoding", ENCODINGS), ("scalar", SCALARS), ("filter", FILTERS)):
            code = cur.uint(1)
            if code not in table:
                raise cur.fail(f"unknown {key} code {code} of {name!r}")
            e[key] = code
        e["width"], e["size"] = cur.uint(1), cur.uint(4)
        e["type"] = cur.string16(MAX_TYPE_NAME)
        scalar_size = SCALARS[e["scalar"]][1]
        if e["size"] == 0:
            raise cur.fail(f"element size of {name!r} is zero")
        if scalar_size and e["size"] % scalar_size:
            raise cur.fail(f"element size {e['size']} of {name!r} is not a multiple of its scalar")
        if e["width"] < 1 or e["size"] % e["width"]:
            raise cur.fail(f"filter width {e['width']} of {name!r} does not divide its element size")
        if e["filter"] == 2 and major != 3:
            raise cur.fail(f"{name!r} uses the delta filter, which only format 3.x shards may use")
        if e["filter"] == 2 and e["width"] not in (1, 2, 4, 8):
            raise cur.fail(f"the delta filter of {name!r} has width {e['width']}, not 1, 2, 4 or 8")
        dims = cur.uint(1)
        if dims > MAX_DIMENSIONS:
            raise cur.fail(f"{name!r} has {dims} dimensions")
        e["shape"], elements = [], 1
        for _ in range(dims):  # every dimension and partial product must fit a signed 64-bit integer
            e["shape"].append(cur.uint(8))
            elements *= e["shape"][-1]
            if e["shape"][-1] >= 1 << 63 or elements >= 1 << 63:
                raise cur.fail(f"shape of {name!r} overflows")
        e["raw"] = cur.uint(8)
        if elements * e["size"] >= 1 << 63 or e["raw"] != elements * e["size"]:
            raise cur.fail(f"{name!r} holds {e['raw']} bytes but its shape {e['shape']} "
                           f"needs {elements * e['size']}")
        nchunks = cur.uint(4)
        if nchunks > cur.remaining // record_size:
            raise cur.fail(f"{name!r} claims {nchunks} chunks, more than the index holds")
        e["chunks"], covered = [], 0
        for _ in range(nchunks):
            offset, stored, raw, codec = cur.uint(8), cur.uint(8), cur.uint(8), cur.uint(1)
            if codec not in CODECS:
                raise cur.fail(f"unknown codec {codec} in {name!r}")
            digest = cur.take(DIGEST_SIZE)
            raw_digest, location = (cur.take(DIGEST_SIZE), cur.uint(4)) if incremental else (None, 0)
            if location > len(bases):
                raise cur.fail(f"a chunk of {name!r} refers to base shard {location} of {len(bases)}")
            if offset < HEADER_SIZE or (location == 0 and offset + stored > data_end):
                raise cur.fail(f"a chunk of {name!r} lies outside the data region")
            if not 0 < raw <= MAX_CHUNK_RAW or raw % e["size"]:
                raise cur.fail(f"a chunk of {name!r} has an invalid size {raw}")
            if codec == 0 and stored != raw:
                raise cur.fail(f"a raw chunk of {name!r} changes size")
            if codec == 1 and (stored == 0 or raw // MAX_RATIO > stored):
                raise cur.fail(f"a chunk of {name!r} claims an impossible compression ratio")
            covered += raw
            if covered > e["raw"]:
                raise cur.fail(f"chunks of {name!r} hold more than its size")
            e["chunks"].append((offset, stored, raw, codec, digest, raw_digest, location))
        if covered != e["raw"]:
            raise cur.fail(f"chunks of {name!r} hold {covered} bytes but the entry has {e['raw']}")
        entries.append(e)
    if cur.remaining:
        raise cur.fail(f"{cur.remaining} unexpected bytes after the index")
    # I22 and R6: a file's stored bytes belong to one chunk each, so a small file cannot claim more
    # than it holds; in a base, several records may name the very same stored chunk.
    for location in range(len(bases) + 1):
        regions = sorted({c for e in entries for c in e["chunks"] if c[6] == location} if location
                         else [c for e in entries for c in e["chunks"] if c[6] == 0])
        for previous, following in zip(regions, regions[1:]):
            if previous[0] + previous[1] > following[0]:
                where = f"checkpoint {bases[location - 1][0]}'s shard" if location else "this shard"
                raise cur.fail(f"two chunks in {where} overlap at byte {following[0]}")
    return bases, entries


class Window:
    """A region of an open file read as a file of its own: a rank's shard in an aggregated file."""

    def __init__(self, f, start, length):
        self.f, self.start, self.length, self.position = f, start, length, 0

    def seek(self, position, whence=0):
        self.position = min(max(0, position + (self.length if whence == 2 else 0)), self.length)
        return self.position

    def read(self, count):
        count = max(0, min(count, self.length - self.position))
        self.f.seek(self.start + self.position)
        data = self.f.read(count)
        self.position += len(data)
        return data


def read_table(path, f):
    """Reads and checks an aggregated file's region table (A1-A5); returns {rank: (offset, length, sha256)}."""
    size = f.seek(0, 2)
    if size < AGG_HEADER + AGG_FOOTER:
        raise Damaged(f"{path}: aggregated file is {size} bytes, smaller than a header and footer")
    f.seek(0)
    header = f.read(AGG_HEADER)
    if header[:8] != AGG_MAGIC:
        raise Damaged(f"{path}: not a swift-checkpoint aggregated file (wrong magic bytes)")
    major, minor = struct.unpack_from("<HH", header, 8)
    if major != 1:
        raise Unsupported(f"{path}: aggregated file uses format {major}.{minor}; this reader reads 1.x")
    f.seek(size - AGG_FOOTER)
    footer = f.read(AGG_FOOTER)
    if footer[48:] != AGG_END_MAGIC:
        raise Damaged(f"{path}: aggregated file has no footer; it was cut short")
    table_offset, count = struct.unpack_from("<QI", footer)
    if count > AGG_MAX_REGIONS or table_offset < AGG_HEADER or table_offset + count * AGG_ENTRY != size - AGG_FOOTER:
        raise Damaged(f"{path}: aggregated file's footer is inconsistent with its size")
    f.seek(table_offset)
    table = f.read(count * AGG_ENTRY)
    if hashlib.sha256(table).digest() != footer[16:48]:
        raise Damaged(f"{path}: aggregated file's region table fails its checksum")
    regions, end, last = {}, AGG_HEADER, -1
    for index in range(count):
        rank, _, offset, length = struct.unpack_from("<IIQQ", table, index * AGG_ENTRY)
        if offset != end or length > table_offset - offset or rank <= last:
            raise Damaged(f"{path}: aggregated file's region table is inconsistent")
        regions[rank] = (offset, length, table[index * AGG_ENTRY + 24:index * AGG_ENTRY + 56])
        end, last = offset + length, rank
    if end != table_offset:
        raise Damaged(f"{path}: aggregated file's regions do not end at its table")
    return regions


def region_of(path, f, record):
    """The window of `record`'s shard in an aggregated file, once its table agrees with the manifest."""
    region = read_table(path, f).get(record["rank"])
    if region is None or region[:2] != (record["offset"], record["fileBytes"]):
        raise Damaged(f"{path}: the region table does not place rank {record['rank']} where the manifest does")
    return Window(f, record["offset"], record["fileBytes"])


def open_shard(path, record=None):
    """Reads and validates a shard's header, footer and index (in its own file, or its region of an
    aggregated file when `record` has an offset)."""
    try:
        with open(path, "rb") as f:
            if record is not None and "offset" in record:
                return check_shard(path, region_of(path, f, record))
            return check_shard(path, f)
    except FileNotFoundError:
        raise Damaged(f"{path}: shard is missing") from None


def check_shard(path, f):
    """The checks of `open_shard`, in the order the specification lists them."""
    size = f.seek(0, 2)
    f.seek(0)
    header = f.read(HEADER_SIZE)
    if size < HEADER_SIZE + FOOTER_SIZE:
        if size >= 8 and header[:8] != SHARD_MAGIC:
            raise Damaged(f"{path}: not a swift-checkpoint shard (wrong magic bytes)")
        raise Damaged(f"{path}: shard is {size} bytes, smaller than a header and footer; it was cut short")
    if header[:8] != SHARD_MAGIC:
        raise Damaged(f"{path}: not a swift-checkpoint shard (wrong magic bytes)")
    major, minor, flags = struct.unpack_from("<HHI", header, 8)
    if major > MAJOR_VERSION:
        raise Unsupported(f"{path}: shard uses format {major}.{minor}; this reader reads format "
                          f"{MAJOR_VERSION}.x at most (upgrade the reader)")
    if major == 0:
        raise Damaged(f"{path}: shard declares format version 0")
    if flags:
        raise Damaged(f"{path}: shard header's reserved flags are not zero; the header is damaged")
    f.seek(size - FOOTER_SIZE)
    footer = f.read(FOOTER_SIZE)
    if footer[48:] != FOOTER_MAGIC:
        raise Damaged(f"{path}: shard has no valid footer: the file was cut short or its end is damaged")
    index_offset, index_length = struct.unpack_from("<QQ", footer)
    index_end = size - FOOTER_SIZE
    if not HEADER_SIZE <= index_offset <= index_end or index_length != index_end - index_offset:
        raise Damaged(f"{path}: shard footer points outside the file")
    f.seek(index_offset)
    index = f.read(index_length)
    if hashlib.sha256(index).digest() != footer[16:48]:
        raise Damaged(f"{path}: shard index fails its SHA-256 checksum")
    bases, entries = parse_index(index, index_offset, path, major)
    return {"path": path, "size": size, "version": (major, minor), "indexSHA256": footer[16:48].hex(),
            "bases": bases, "entries": entries, "files": [(path, 0)]}


def open_base(path, step, digest, user, record=None):
    """Opens a base shard (R2-R4): it exists, ends in a footer whose digest is the recorded one.

    Returns the end of its data region.
    """
    try:
        with open(path, "rb") as f:
            if record is not None and "offset" in record:
                f = region_of(path, f, record)
            size = f.seek(0, 2)
            f.seek(0)
            magic = f.read(8)
            f.seek(max(0, size - FOOTER_SIZE))
            footer = f.read(FOOTER_SIZE)
    except FileNotFoundError:
        raise Damaged(f"{user}: uses chunks stored in checkpoint {step}, whose shard {path} is missing") from None
    if size < HEADER_SIZE + FOOTER_SIZE or magic != SHARD_MAGIC:
        raise Damaged(f"{user}: uses chunks stored in checkpoint {step}, whose shard {path} is damaged")
    if footer[48:] != FOOTER_MAGIC or footer[16:48] != digest:
        raise Damaged(f"{user}: uses chunks stored in checkpoint {step}, but {path} is not the shard "
                      "they were stored in (it was replaced, or its footer is damaged)")
    index_offset = struct.unpack_from("<Q", footer)[0]
    if not HEADER_SIZE <= index_offset <= size - FOOTER_SIZE:
        raise Damaged(f"{path}: shard footer points outside the file")
    return index_offset


def zstd_frame(frame):
    """Parses a zstd frame header and walks its blocks.

    Returns (declared content size, frame length); the length is None when the blocks run past
    the end of `frame`.
    """
    if len(frame) < 6 or frame[:4] != ZSTD_MAGIC:
        raise Damaged("chunk is not a zstd frame with a declared size")
    descriptor = frame[4]
    fcs_flag, single, dict_flag = descriptor >> 6, (descriptor >> 5) & 1, descriptor & 3
    if descriptor & 0x08:
        raise Damaged("zstd frame header has its reserved bit set")
    pos = 5 + (0 if single else 1)
    dict_length, fcs_length = (0, 1, 2, 4)[dict_flag], ((1 if single else 0), 2, 4, 8)[fcs_flag]
    if fcs_length == 0 or pos + dict_length + fcs_length > len(frame):
        raise Damaged("chunk is not a zstd frame with a declared size")
    if int.from_bytes(frame[pos:pos + dict_length], "little"):
        raise Damaged("zstd frame needs a dictionary")
    pos += dict_length
    content = int.from_bytes(frame[pos:pos + fcs_length], "little") + (256 if fcs_length == 2 else 0)
    pos += fcs_length
    last = 0
    while not last and pos + 3 <= len(frame):
        block = int.from_bytes(frame[pos:pos + 3], "little")
        last, kind, block_size = block & 1, (block >> 1) & 3, block >> 3
        if kind == 3:
            raise Damaged("zstd frame has a reserved block type")
        pos += 3 + (1 if kind == 1 else block_size)  # an RLE block stores its byte once
    pos += 4 if descriptor & 0x04 else 0  # the XXH64 content checksum
    return content, (pos if last and pos <= len(frame) else None)


def zstd_decompress(frame):
    """Decodes one zstd frame (its XXH64 content checksum is verified by the decoder)."""
    if zstandard is not None:
        try:
            return zstandard.ZstdDecompressor().decompress(frame)
        except zstandard.ZstdError as error:
            raise Damaged(f"zstd could not decode a chunk: {error}") from None
    if shutil.which("zstd") is None:
        raise CheckpointError("needs the Python module `zstandard` or the `zstd` command-line tool")
    run = subprocess.run(["zstd", "-d", "-c", "-q", "--memory=2048MB"], input=frame, capture_output=True)
    if run.returncode != 0:
        raise Damaged(f"zstd could not decode a chunk: {run.stderr.decode(errors='replace').strip()}")
    return run.stdout


def unshuffle(data, width):
    """Undoes the byte shuffle: byte j of element i was stored at position j * n + i."""
    if width == 1:
        return bytes(data)
    n, out = len(data) // width, bytearray(len(data))
    for j in range(width):
        out[j::width] = data[j * n:(j + 1) * n]
    return bytes(out)


def chunk_checksum(data, kind):
    """The 32-byte checksum field of a chunk's stored bytes: SHA-256, or (format 3.x) XXH3-128 in
    its canonical big-endian form followed by 16 zero bytes."""
    if kind == "sha256":
        return hashlib.sha256(data).digest()
    if xxhash is not None:
        return xxhash.xxh3_128_digest(data) + bytes(16)
    if shutil.which("xxhsum") is None:
        raise CheckpointError("verifying a format 3.0 shard needs the Python module `xxhash` or the "
                              "`xxhsum` command-line tool (Debian: apt-get install python3-xxhash xxhash)")
    run = subprocess.run(["xxhsum", "-H2", "-"], input=data, capture_output=True)
    if run.returncode != 0:
        raise CheckpointError(f"xxhsum failed: {run.stderr.decode(errors='replace').strip()}")
    return bytes.fromhex(run.stdout.split()[0].decode()) + bytes(16)


def undelta(data, width):
    """Undoes the delta filter: each little-endian unsigned integer of `width` bytes is the
    difference from the one before (modulo 2**(8 * width)); adds them up."""
    if numpy is not None:
        values = numpy.frombuffer(data, dtype=f"<u{width}")
        return numpy.cumsum(values, dtype=f"<u{width}").tobytes()  # unsigned sums wrap
    mask, total, out = (1 << (8 * width)) - 1, 0, bytearray(len(data))
    for i in range(0, len(data), width):
        total = (total + int.from_bytes(data[i:i + width], "little")) & mask
        out[i:i + width] = total.to_bytes(width, "little")
    return bytes(out)


def decode_entry(files, e):
    """Reads, verifies and decodes every chunk of an entry; returns its raw bytes.

    `files` is the shard's path followed by its base shards' paths (a chunk's location indexes it).
    """
    parts = []
    for offset, stored, raw, codec, digest, raw_digest, location in e["chunks"]:
        path, start = files[location]
        with open(path, "rb") as f:
            f.seek(start + offset)
            data = f.read(stored)
        where = f"{path}: entry {e['name']!r}, chunk at byte {offset}"
        kind = e["checksum"] if location == 0 else "sha256"  # chunks of base shards are in 2.x shards
        if len(data) != stored or chunk_checksum(data, kind) != digest:
            raise Damaged(f"{where} fails its {'XXH3-128' if kind == 'xxh3' else 'SHA-256'} checksum")
        if codec == 1:
            try:
                declared, length = zstd_frame(data)
                if declared != raw:
                    raise Damaged(f"zstd frame declares {declared} bytes but the index says {raw}")
                if length != stored:
                    raise Damaged("zstd frame does not span its chunk exactly")
                data = zstd_decompress(data)
                if len(data) != raw:
                    raise Damaged(f"zstd frame decoded to {len(data)} bytes, expected {raw}")
            except Damaged as error:
                raise Damaged(f"{where}: {error}") from None
        data = unshuffle(data, e["width"]) if e["filter"] in (1, 2) else data
        data = undelta(data, e["width"]) if e["filter"] == 2 else data
        if raw_digest is not None and hashlib.sha256(data).digest() != raw_digest:
            raise Damaged(f"{where}: decoded bytes fail the raw SHA-256 the index records")
        parts.append(data)
    return b"".join(parts)


def plain(value):
    """Makes a value JSON-safe, spelling non-finite floats as the format does."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("+Infinity" if value > 0 else "-Infinity")
    return value


def summarize(e, data):
    """A JSON-ready description of an entry and its decoded contents."""
    name, scalar_size, fmt, dtype = SCALARS[e["scalar"]]
    out = {"name": e["name"], "encoding": ENCODINGS[e["encoding"]], "type": e["type"],
           "scalar": "json" if e["encoding"] == 1 else name, "shape": e["shape"], "elementSize": e["size"],
           "filter": FILTERS[e["filter"]], "rawBytes": e["raw"], "storedBytes": sum(c[1] for c in e["chunks"]),
           "chunks": len(e["chunks"])}
    if e["encoding"] == 1:
        try:
            out["value"] = json.loads(data.decode("utf-8"))
        except ValueError as error:
            raise CheckpointError(f"entry {e['name']!r} is not valid UTF-8 JSON: {error}") from None
    elif "fields" in e:
        out["fields"] = e["fields"]
        out["dtype"] = structured_dtype(e["fields"], e["size"])
        out["first"] = field_values(e["fields"], data, e["size"], 5)
    elif fmt is None:
        out["firstBytes"] = data[:16].hex()
    else:
        out["dtype"] = dtype
        if e["size"] > scalar_size:
            out["lanes"] = e["size"] // scalar_size
        if numpy is not None:
            values = numpy.frombuffer(data, dtype=numpy.dtype(dtype)).tolist()
        else:
            values = list(struct.unpack(f"<{len(data) // scalar_size}{fmt}", data))
        if name.startswith("float"):
            try:
                total = math.fsum(values)
            except (OverflowError, ValueError):
                total = sum(values)
        else:
            total = sum(int(v) for v in values)
        out["sum"], out["first"] = plain(total), [plain(v) for v in values[:5]]
    return out


def fits(value, shape):
    """Whether a decoded JSON value has the given MANIFEST_SHAPE-style shape (extra keys are allowed)."""
    if isinstance(shape, list):
        return isinstance(value, list) and all(fits(v, shape[0]) for v in value)
    if isinstance(shape, dict):
        if not isinstance(value, dict):
            return False
        if str in shape:
            return all(fits(v, shape[str]) for v in value.values())
        return all(key in value and fits(value[key], sub) for key, sub in shape.items())
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float) if shape is float else shape)


def block_problem(block):
    """Why an entry's optional `block` (rule M14) is invalid, or None."""
    if not isinstance(block, dict):
        return "is not an object"
    parts = [block.get(key) for key in ("globalShape", "offset", "extent")]
    if not all(isinstance(p, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in p)
               for p in parts):
        return "needs integer arrays globalShape, offset and extent"
    shape, offset, extent = parts
    if not 1 <= len(shape) <= 3 or len(offset) != len(shape) or len(extent) != len(shape):
        return "needs 1 to 3 dimensions, the same number in globalShape, offset and extent"
    if any(v < 0 for v in shape + offset + extent):
        return "has a negative number"
    if any(o + x > g for g, o, x in zip(shape, offset, extent)):
        return f"reaches outside its global shape {shape}"
    if math.prod(shape) >= 1 << 63:
        return f"global shape {shape} holds too many elements"
    return None


def fields_problem(fields, size=None):
    """Why an entry's optional `fields` (rules M19, and M20 with the element `size`) are invalid, or None."""
    if not isinstance(fields, list) or not 1 <= len(fields) <= MAX_FIELDS:
        return f"are not a list of 1 to {MAX_FIELDS} fields"
    numeric = {info[0]: info[1] for code, info in SCALARS.items() if code != 0}
    names, extents = set(), []
    for field in fields:
        if not isinstance(field, dict):
            return "include one that is not an object"
        name, offset, scalar, count = (field.get(key) for key in ("name", "offset", "scalar", "count"))
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_FIELD_NAME or \
                not all(" " <= c <= "~" for c in name):
            return f"include the name {name!r}; names are 1 to {MAX_FIELD_NAME} printable ASCII characters"
        if name in names:
            return f"name {name!r} twice"
        names.add(name)
        if not all(type(v) is int for v in (offset, count)) or offset < 0 or count < 1 or scalar not in numeric:
            return f"give {name!r} an invalid offset, count or scalar"
        end = offset + count * numeric[scalar]
        if end >= 1 << 63 or (size is not None and end > size):
            return f"place {name!r} (bytes {offset} to {end}) outside the {size}-byte element"
        extents.append((offset, end, name))
    extents.sort()
    for (_, end, first), (start, _, second) in zip(extents, extents[1:]):
        if end > start:
            return f"overlap: {first!r} and {second!r} at byte {start}"
    return None


def structured_dtype(fields, size):
    """The NumPy dtype of elements with named `fields` (dicts of name, offset, scalar, count) and `size` bytes."""
    dtypes = {info[0]: info[3] for code, info in SCALARS.items() if code != 0}
    return {"names": [f["name"] for f in fields],
            "formats": [dtypes[f["scalar"]] if f["count"] == 1 else f"({f['count']},){dtypes[f['scalar']]}"
                        for f in fields],
            "offsets": [f["offset"] for f in fields], "itemsize": size}


def field_values(fields, data, size, count):
    """The first `count` elements of `data` as dicts of field name -> value (a list for counts above 1)."""
    formats = {info[0]: (info[1], info[2]) for code, info in SCALARS.items() if code != 0}
    elements = []
    for i in range(min(count, len(data) // size)):
        element = {}
        for f in fields:
            width, fmt = formats[f["scalar"]]
            start = i * size + f["offset"]
            values = [plain(v) for v in struct.unpack(f"<{f['count']}{fmt}", data[start:start + width * f["count"]])]
            element[f["name"]] = values[0] if f["count"] == 1 else values
        elements.append(element)
    return elements


def load_manifest(root, step):
    """Reads and checks the manifest of checkpoint `step` against its checksum file."""
    directory = f"{root}/ckpt-{step:012d}"
    try:
        with open(f"{directory}/manifest.json", "rb") as f:
            data = f.read(MAX_MANIFEST + 1)
        with open(f"{directory}/manifest.json.sha256", "rb") as f:
            line = f.read(MAX_CHECKSUM + 1)
    except FileNotFoundError:
        raise Damaged(f"{directory}: checkpoint has no manifest (or no checksum file); "
                      "it is not committed") from None
    if len(data) > MAX_MANIFEST or len(line) > MAX_CHECKSUM:
        raise Damaged(f"{directory}: manifest or checksum file is too large")
    if len(line) < 64 or line[:64] != hashlib.sha256(data).hexdigest().encode():
        raise Damaged(f"{directory}/manifest.json fails its SHA-256 checksum; it was modified or damaged")
    key_id = check_seal(directory, data) if KEYS else None
    try:
        m = json.loads(data.decode("utf-8"))
    except ValueError:
        m = None
    if not fits(m, MANIFEST_SHAPE) or m["step"] < 0:
        raise Damaged(f"{directory}/manifest.json is not valid JSON of the expected shape")
    version, ranks, shards = m["manifestVersion"], m["rankCount"], m["shards"]
    if version > MANIFEST_VERSION:
        raise CheckpointError(f"{directory}: manifest version {version} is newer than this reader "
                              f"reads ({MANIFEST_VERSION})")
    if ranks < 1 or len(shards) != ranks or any(s["rank"] != r for r, s in enumerate(shards)):
        raise Damaged(f"{directory}: manifest lists {len(shards)} shards for {ranks} ranks")
    for shard in shards:
        if "offset" in shard:
            if (version < 2 or not isinstance(shard["offset"], int) or shard["offset"] < AGG_HEADER
                    or not AGG_NAME.fullmatch(shard["file"])):
                raise Damaged(f"{directory}: manifest names an unexpected aggregated region {shard['file']!r}")
        elif shard["file"] != f"rank-{shard['rank']:05d}.snap":
            raise Damaged(f"{directory}: manifest names an unexpected shard file {shard['file']!r}")
    seal = m.get("authentication")
    if key_id is not None and seal != {"algorithm": "HMAC-SHA256", "keyID": key_id}:
        raise Damaged(f"{directory}: manifest does not name the key that authenticated it ({key_id})")
    if key_id is not None and not str(m.get("shardFormat")).startswith(("1.", "2.")):
        raise Damaged(f"{directory}: sealed checkpoint uses shard format {m.get('shardFormat')}, whose chunk "
                      "checksums are not cryptographic, so the seal does not cover its data")
    if m["step"] != step:
        raise Damaged(f"{directory}: manifest says step {m['step']} but its directory is for step {step}")
    for shard in shards:
        for entry in shard["entries"]:
            problem = block_problem(entry["block"]) if "block" in entry else None
            if problem:
                raise Damaged(f"{directory}: the block of {entry['name']!r} (rank {shard['rank']}) {problem}")
            problem = fields_problem(entry["fields"]) if "fields" in entry else None
            if problem:
                raise Damaged(f"{directory}: the fields of {entry['name']!r} (rank {shard['rank']}) {problem}")
    check_references(directory, m)
    check_numbers(directory, m)
    return directory, m


def check_numbers(directory, m):
    """M18: sizes and counts are >= 0 with totals below 2^63; timings are finite and >= 0."""
    limit = 1 << 63

    def total(values, what):
        if any(not isinstance(v, int) or isinstance(v, bool) or v < 0 for v in values) or sum(values) >= limit:
            raise Damaged(f"{directory}: manifest records a negative or overflowing {what}; "
                          "no writer records that, so it was edited or damaged")

    def timings(t):
        if any(not math.isfinite(v) or v < 0 for v in t.values() if isinstance(v, (int, float))):
            raise Damaged(f"{directory}: manifest records a negative or non-finite timing")

    shards, incremental = m["shards"], m.get("incremental") or {}
    total([m["settings"]["chunkSize"]], "chunk size")
    total([m["settings"]["threads"]], "thread count")
    timings(m["timings"])
    total([s["fileBytes"] for s in shards] + [incremental.get("referencedBytes", 0)], "file size")
    total([s["rawBytes"] for s in shards], "raw size")
    total([s["storedBytes"] for s in shards], "stored size")
    total([s.get("referencedBytes") or 0 for s in shards], "referenced size")
    for s in shards:
        if isinstance(s.get("timings"), dict):
            timings(s["timings"])
        for key, what in (("rawBytes", "raw size"), ("storedBytes", "stored size"), ("chunks", "chunk count")):
            total([e[key] for e in s["entries"]], what)
        for e in s["entries"]:
            total(e["shape"], "dimension")
            if math.prod(e["shape"]) >= limit:
                raise Damaged(f"{directory}: manifest records a shape whose element count overflows")


def check_references(directory, m):
    """M15: references (optional) are ascending steps older than the checkpoint; the manifest's
    `incremental.references` is the union of the shards' `references`."""
    def steps(value):
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        if not ok or any(b <= a for a, b in zip(value, value[1:])) or any(v >= m["step"] for v in value):
            raise Damaged(f"{directory}: manifest's references {value!r} are not ascending steps older than "
                          f"{m['step']}")
        return value
    shard_references = [steps(s.get("references") or []) for s in m["shards"]]
    incremental = m.get("incremental")
    if incremental is None:
        if any(shard_references):
            raise Damaged(f"{directory}: manifest's shards list references but it has no incremental record")
        return
    if not fits(incremental, {"references": [int], "sinceFull": int, "referencedBytes": int}):
        raise Damaged(f"{directory}/manifest.json has an invalid incremental record")
    union = set(steps(incremental["references"]))
    if union != {step for references in shard_references for step in references}:
        raise Damaged(f"{directory}: manifest's references disagree with its shards' references")


def open_rank(directory, manifest, rank):
    """Opens one rank's shard and ties it to the manifest (size and index digest)."""
    if not 0 <= rank < manifest["rankCount"]:
        raise Damaged(f"{directory}: checkpoint has {manifest['rankCount']} ranks; there is no rank {rank}")
    record = manifest["shards"][rank]
    path = f"{directory}/{record['file']}"
    recorded = tuple(int(part) for part in re.findall(r"[0-9]+", manifest["shardFormat"]))
    if not re.fullmatch(r"[0-9]+\.[0-9]+", manifest["shardFormat"]) or max(recorded) > 0xFFFF:
        raise Damaged(f"{directory}: manifest's shardFormat {manifest['shardFormat']!r} is not 'major.minor'")
    try:
        info = open_shard(path, record)
        info["files"] = [(path, record.get("offset", 0))]
    except Unsupported:
        if recorded[0] <= MAJOR_VERSION:  # the checksummed manifest says we can read it: the header lies
            raise Damaged(f"{path}: shard header's version disagrees with the manifest "
                          f"({manifest['shardFormat']}); the header is damaged") from None
        raise
    if info["version"] != recorded:
        raise Damaged(f"{path}: shard header says format {info['version'][0]}.{info['version'][1]} "
                      f"but the manifest recorded {manifest['shardFormat']}; the header is damaged")
    if info["size"] != record["fileBytes"]:
        raise Damaged(f"{path}: shard is {info['size']} bytes but the manifest recorded {record['fileBytes']}")
    if info["indexSHA256"] != record["indexSHA256"]:
        raise Damaged(f"{path}: shard is not the one the manifest recorded (index checksum differs)")
    if sum(e["raw"] for e in info["entries"]) != record["rawBytes"]:  # M17
        raise Damaged(f"{path}: shard's entries hold {sum(e['raw'] for e in info['entries'])} bytes but the "
                      f"manifest recorded {record['rawBytes']}; the checkpoint is inconsistent")
    if [step for step, _ in info["bases"]] != (record.get("references") or []):
        raise Damaged(f"{path}: shard uses chunks of checkpoints {[step for step, _ in info['bases']]} "
                      f"but the manifest records {record.get('references') or []}")
    by_name = {e["name"]: e for e in info["entries"]}
    described = set()
    for entry in record["entries"]:
        if "fields" not in entry:
            continue
        e = by_name.get(entry["name"])
        if e is None or entry["name"] in described or e["encoding"] != 0 or e["scalar"] != 0:
            raise Damaged(f"{path}: the manifest records fields of {entry['name']!r}, which the shard does not "
                          "hold once as raw opaque elements (M20)")
        problem = fields_problem(entry["fields"], e["size"])
        if problem:
            raise Damaged(f"{path}: the fields of {entry['name']!r} {problem} (M20)")
        described.add(entry["name"])
        e["fields"] = entry["fields"]
    root = os.path.dirname(directory)
    data_ends = [None]
    for step, digest in info["bases"]:
        base_record = record
        if "offset" in record:  # the base's region is wherever its own manifest places it
            base_shards = load_manifest(root, step)[1]["shards"]
            if rank >= len(base_shards):
                raise Damaged(f"{path}: uses chunks stored in checkpoint {step}, which has no rank {rank}")
            base_record = base_shards[rank]
        base = f"{root}/ckpt-{step:012d}/{base_record['file']}"
        data_ends.append(open_base(base, step, digest, path, base_record))
        info["files"].append((base, base_record.get("offset", 0)))
    for e in info["entries"]:
        for offset, stored, _, _, _, _, location in e["chunks"]:
            if location and offset + stored > data_ends[location]:
                raise Damaged(f"{path}: a chunk of {e['name']!r} lies outside its base shard's data region")
    return info


def read_checkpoint(root, step, rank, entry_name, verify_all):
    """Loads checkpoint `step`, decodes the requested entries of `rank`, and returns the summary."""
    directory, manifest = load_manifest(root, step)
    info = open_rank(directory, manifest, rank)
    entries = [e for e in info["entries"] if entry_name in (None, e["name"])]
    if not entries and entry_name is not None:
        names = ", ".join(e["name"] for e in info["entries"])
        raise CheckpointError(f"{info['path']}: entry {entry_name!r} is not in this checkpoint; "
                              f"it holds: {names}")
    summaries = [summarize(e, decode_entry(info["files"], e)) for e in entries]
    for other in range(manifest["rankCount"]) if verify_all else ():
        shard = open_rank(directory, manifest, other)
        for e in shard["entries"]:
            decode_entry(shard["files"], e)
    return {"checkpoint": directory, "step": step, "rank": rank, "rankCount": manifest["rankCount"],
            "shardFormat": manifest["shardFormat"], "library": manifest["library"],
            "createdAt": manifest["createdAt"],
            "references": sorted({step for step, _ in info["bases"]}),
            "verifiedAllRanks": verify_all, "entries": summaries}


def read_array(root, name, step=None, rank=0):
    """Reads raw entry `name` of `rank` (of checkpoint `step`, or the newest) as a NumPy array.

    Numeric entries get their dtype (vectors a trailing dimension of lanes), plain structs that
    record their fields a structured dtype (`a["mass"]`), other plain structs `|V<size>`. For use
    from Python: `sys.path.insert(0, "Scripts"); import ckpt_read; ckpt_read.read_array(DIR, "particles")`.
    """
    if numpy is None:
        raise CheckpointError("read_array needs NumPy")
    step = committed_steps(root)[-1] if step is None else step
    directory, manifest = load_manifest(root, step)
    info = open_rank(directory, manifest, rank)
    e = next((e for e in info["entries"] if e["name"] == name), None)
    if e is None or e["encoding"] != 0:
        raise CheckpointError(f"{info['path']}: there is no raw entry {name!r}")
    data = decode_entry(info["files"], e)
    _, scalar_size, _, dtype = SCALARS[e["scalar"]]
    if "fields" in e:
        return numpy.frombuffer(data, numpy.dtype(structured_dtype(e["fields"], e["size"]))).reshape(e["shape"])
    if dtype is None:
        return numpy.frombuffer(data, numpy.dtype(f"V{e['size']}")).reshape(e["shape"])
    lanes = e["size"] // scalar_size
    return numpy.frombuffer(data, numpy.dtype(dtype)).reshape(e["shape"] + ([lanes] if lanes > 1 else []))


def overlap(a, b):
    """Whether two blocks of the same global shape share an element."""
    return all(max(oa, ob) < min(oa + xa, ob + xb)
               for oa, xa, ob, xb in zip(a["offset"], a["extent"], b["offset"], b["extent"]))


def read_global(root, step, name):
    """Loads checkpoint `step` and assembles distributed entry `name` from every rank's block (R1-R5)."""
    directory, manifest = load_manifest(root, step)
    blocks = []
    for shard in manifest["shards"]:
        for entry in shard["entries"]:
            if entry["name"] != name:
                continue
            if "block" not in entry:
                raise CheckpointError(f"{directory}: rank {shard['rank']} saved {name!r} without a block "
                                      "layout; it is not a distributed array (read it with --entry)")
            blocks.append((shard["rank"], entry["block"]))
    if not blocks:
        raise CheckpointError(f"{directory}: no rank saved an entry {name!r}")
    shape = blocks[0][1]["globalShape"]
    if any(block["globalShape"] != shape for _, block in blocks):
        raise CheckpointError(f"{directory}: the ranks saved {name!r} with different global shapes")
    filled = [(rank, block) for rank, block in blocks if math.prod(block["extent"]) > 0]
    for i, (rank, block) in enumerate(filled):
        for other, block2 in filled[i + 1:]:
            if overlap(block, block2):
                raise CheckpointError(f"{directory}: the blocks of ranks {rank} and {other} of {name!r} overlap")
    if sum(math.prod(block["extent"]) for _, block in filled) != math.prod(shape):
        raise CheckpointError(f"{directory}: the blocks of {name!r} do not cover its global shape {shape}")
    out, template, chunks = None, None, []
    for rank, block in blocks:
        info = open_rank(directory, manifest, rank)
        e = next((e for e in info["entries"] if e["name"] == name), None)
        if e is None or e["encoding"] != 0 or e["shape"] != block["extent"]:
            raise Damaged(f"{info['path']}: the index's {name!r} does not match the manifest's block "
                          f"(raw entry of shape {block['extent']})")
        if template is None:
            template, size = e, e["size"]
            out = bytearray(math.prod(shape) * size)
        elif (e["scalar"], e["size"], e["type"]) != (template["scalar"], size, template["type"]):
            raise CheckpointError(f"{directory}: the ranks saved {name!r} with different element types")
        data, chunks = decode_entry(info["files"], e), chunks + e["chunks"]
        extent, offset = block["extent"], block["offset"]
        row = extent[-1] * size
        for position, outer in enumerate(itertools.product(*(range(x) for x in extent[:-1]))):
            index = 0
            for g, o, i in zip(shape, offset, list(outer) + [0]):
                index = index * g + o + i
            out[index * size:index * size + row] = data[position * row:(position + 1) * row]
    summary = summarize(dict(template, shape=shape, raw=len(out), chunks=chunks), bytes(out))
    summary["sha256"] = hashlib.sha256(out).hexdigest()
    return {"checkpoint": directory, "step": step, "rankCount": manifest["rankCount"],
            "blocks": [{"rank": rank, **block} for rank, block in blocks], "entries": [summary]}


def committed_steps(root):
    """The steps of the committed-checkpoint directories under `root` (canonical names only), ascending."""
    if not os.path.isdir(root):
        raise CheckpointError(f"{root}: checkpoint directory does not exist")
    steps = set()
    for name in os.listdir(root):
        match = COMMITTED.fullmatch(name)
        if match and int(match.group(1)) < 1 << 64 and name == f"ckpt-{int(match.group(1)):012d}":
            steps.add(int(match.group(1)))
    return sorted(steps)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", help="the directory that holds ckpt-* folders")
    parser.add_argument("--step", type=int, help="read this checkpoint instead of the newest that verifies")
    parser.add_argument("--rank", type=int, default=0, help="the rank whose shard to decode (default 0)")
    parser.add_argument("--entry", help="decode and print only this entry")
    parser.add_argument("--verify", action="store_true", help="also decode and verify every entry of every rank")
    parser.add_argument("--assemble", metavar="NAME", help="assemble this distributed array from every rank's block")
    parser.add_argument("--key-file", action="append", default=[], metavar="FILE",
                        help="require checkpoints sealed by this key (repeat for older keys)")
    args = parser.parse_args()
    try:
        KEYS.extend(read_key(path) for path in args.key_file)
        steps = committed_steps(args.directory)
        if args.step is not None and args.step not in steps:
            raise CheckpointError(f"{args.directory}: there is no committed checkpoint for step {args.step}")
        if not steps:
            raise CheckpointError(f"{args.directory}: holds no committed checkpoint")
        skipped = []
        for step in [args.step] if args.step is not None else reversed(steps):
            try:
                if args.assemble is not None:
                    summary = read_global(args.directory, step, args.assemble)
                else:
                    summary = read_checkpoint(args.directory, step, args.rank, args.entry, args.verify)
                break
            except Damaged as error:
                if args.step is not None:
                    raise
                print(f"warning: skipping damaged checkpoint {step}: {error}", file=sys.stderr)
                skipped.append({"step": step, "reason": str(error)})
        else:
            reasons = "; ".join(f"step {s['step']}: {s['reason']}" for s in skipped)
            raise CheckpointError(f"none of the {len(steps)} checkpoints verifies: {reasons}")
        summary["skipped"] = skipped
        json.dump(summary, sys.stdout, indent=2)
        print()
    except (CheckpointError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
