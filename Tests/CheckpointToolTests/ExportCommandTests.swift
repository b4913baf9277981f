import Checkpoint
import Foundation
import Testing

/// `ckpt export --format zarr`: a checkpoint as a Zarr v3 store, read back with zarr-python and
/// xarray from PyPI (the virtual environment `Scripts/bootstrap` makes).
@Suite struct ExportCommandTests {
    /// One array the store must hold, as the Python check compares it.
    struct Expected: Encodable {
        var dtype: String
        var shape: [Int]
        var chunks: [Int]
        var hex: String
        var swiftType: String
        var rank: Int?

        init<Element>(_ values: [Element], dtype: String, shape: [Int], chunks: [Int], rank: Int? = nil) {
            self.dtype = dtype
            self.shape = shape
            self.chunks = chunks
            hex = values.withUnsafeBytes { $0.map { String(format: "%02x", $0) }.joined() }
            swiftType = String(reflecting: Element.self)
            self.rank = rank
        }
    }

    /// Everything the Python check compares: every array, and each rank's `Codable` value.
    struct Expectations: Encodable {
        var step = 7
        var ranks = DistributedState.ranks
        var arrays: [String: Expected] = [:]
        var json: [String: Simulation.Parameters] = [:]
    }

    /// What the store of `saveDistributed` holds with `--chunk-size 60` (chunks of 7 doubles, 2 rows
    /// of 7 floats: both fields end in a padded chunk).
    static var expectations: Expectations {
        var expected = Expectations()
        expected.arrays["temperature"] = Expected(
            DistributedState.globalTemperature,
            dtype: "<f8",
            shape: [40],
            chunks: [7]
        )
        expected.arrays["fields/pressure"] = Expected(
            DistributedState.globalPressure,
            dtype: "<f4",
            shape: [9, 7],
            chunks: [2, 7]
        )
        for rank in 0..<DistributedState.ranks {
            let group = "rank-\(rank)/"
            expected.arrays[group + "counts"] = Expected(
                DistributedState.counts(rank: rank),
                dtype: "<i4",
                shape: [5],
                chunks: [5],
                rank: rank
            )
            var particles = Expected(
                DistributedState.particles(rank: rank),
                dtype: "|u1",
                shape: [3, 16],
                chunks: [3, 16],
                rank: rank
            )
            particles.swiftType = String(reflecting: MixedState.Particle.self)
            expected.arrays[group + "particles"] = particles
            expected.arrays[group + "velocities"] = Expected(
                DistributedState.velocities(rank: rank),
                dtype: "<f4",
                shape: [2, 4],
                chunks: [2, 4],
                rank: rank
            )
            expected.arrays[group + "flags"] = Expected(
                DistributedState.flags(rank: rank),
                dtype: "|b1",
                shape: [3],
                chunks: [3],
                rank: rank
            )
            expected.arrays[group + "time"] = Expected(
                [12.5 + Double(rank)],
                dtype: "<f8",
                shape: [],
                chunks: [],
                rank: rank
            )
            expected.json["rank-\(rank)"] = DistributedState.parameters(rank: rank)
        }
        return expected
    }

    /// Opens the store with zarr-python and compares every array, its attributes and the JSON values
    /// with the expectations; then opens the distributed fields and a rank group with xarray.
    static let check = #"""
        import json, sys
        import numpy as np, zarr, xarray as xr
        store, expected = sys.argv[1], json.load(open(sys.argv[2]))
        problems = []
        root = zarr.open_group(store, mode="r")
        if root.metadata.zarr_format != 3: problems.append(f"zarr_format {root.metadata.zarr_format}")
        if root.attrs["step"] != expected["step"] or root.attrs["ranks"] != expected["ranks"]:
            problems.append(f"root attributes {dict(root.attrs)}")
        found = sorted(path for path, node in root.members(max_depth=None) if isinstance(node, zarr.Array))
        if found != sorted(expected["arrays"]): problems.append(f"arrays {found}")
        for path, e in expected["arrays"].items():
            a = root[path]
            want = np.frombuffer(bytes.fromhex(e["hex"]), dtype=e["dtype"]).reshape(e["shape"])
            got = a[...]
            if got.dtype != want.dtype or got.shape != want.shape or got.tobytes() != want.tobytes():
                problems.append(f"{path}: {got.dtype} {got.shape} {got.tobytes().hex()} != {want.dtype} {want.shape} {e['hex']}")
            if list(a.chunks) != e["chunks"]: problems.append(f"{path}: chunks {a.chunks} != {e['chunks']}")
            if a.attrs["swiftType"] != e["swiftType"] or a.attrs["step"] != expected["step"]:
                problems.append(f"{path}: attributes {dict(a.attrs)}")
            if "rank" in e and a.attrs["rank"] != e["rank"]: problems.append(f"{path}: rank {dict(a.attrs)}")
            if "rank" not in e and a.attrs["assembledFrom"] != expected["ranks"]: problems.append(f"{path}: {dict(a.attrs)}")
        for group, value in expected["json"].items():
            if root[group].attrs["json"]["parameters"] != value: problems.append(f"{group}: json {dict(root[group].attrs)}")
        particle = np.dtype([("position", "<f8"), ("id", "<i8")])
        particles = root["rank-1/particles"][...].view(particle)[:, 0]
        if particles["id"].tolist() != [10, 11, 12] or particles["position"].tolist() != [1.0, 1.5, 2.0]:
            problems.append(f"structured view of rank-1/particles: {particles}")
        fields = xr.open_zarr(store, consolidated=False)
        if fields["temperature"].values.tobytes().hex() != expected["arrays"]["temperature"]["hex"]:
            problems.append("xarray: temperature")
        pressure = xr.open_zarr(store, group="fields", consolidated=False)["pressure"]
        if pressure.shape != (9, 7) or pressure.values.tobytes().hex() != expected["arrays"]["fields/pressure"]["hex"]:
            problems.append("xarray: pressure")
        rank = xr.open_zarr(store, group="rank-1", consolidated=False)
        if rank["counts"].values.tobytes().hex() != expected["arrays"]["rank-1/counts"]["hex"]:
            problems.append("xarray: rank-1/counts")
        print("\n".join(problems) if problems else "ok")
        """#

    @Test func zarrPythonAndXarrayReadEveryArray() throws {
        let python = try zarrPython()
        try withTemporaryDirectory { directory in
            let checkpoints = directory + "/checkpoints"
            try saveDistributed(in: checkpoints, step: 7)
            let store = directory + "/run.zarr"
            let result = try ckpt("export", checkpoints, "--format", "zarr", "-o", store, "--chunk-size", "60")
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout.contains("step 7 of 4 rank(s), 22 array(s), 4 JSON value(s)"), "\(result)")

            let expectations = directory + "/expected.json"
            try JSONEncoder().encode(Self.expectations).write(to: URL(fileURLWithPath: expectations))
            let check = try runProgram(python, ["-c", Self.check, store, expectations])
            if check.stderr.contains("No module named") {
                try toolUnavailable("zarr or xarray is not installed for \(python.path): \(check.stderr)")
            }
            #expect(check.status == 0, "\(check)")
            #expect(check.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "ok", "\(check)")
        }
    }

    @Test func existingOutputIsKeptUnlessForced() throws {
        try withTemporaryDirectory { directory in
            let checkpoints = directory + "/checkpoints"
            try saveDistributed(in: checkpoints, step: 7)
            let store = directory + "/run.zarr"
            #expect(try ckpt("export", checkpoints, "-o", store).status == 0)
            let marker = store + "/marker"
            #expect(FileManager.default.createFile(atPath: marker, contents: Data()))

            let refused = try ckpt("export", checkpoints, "-o", store)
            #expect(refused.status == 2, "\(refused)")
            #expect(refused.stderr.contains("pass --force"), "\(refused)")
            #expect(FileManager.default.fileExists(atPath: marker))

            let forced = try ckpt("export", checkpoints, "-o", store, "--force")
            #expect(forced.status == 0, "\(forced)")
            #expect(!FileManager.default.fileExists(atPath: marker), "the old store was replaced")
            #expect(FileManager.default.fileExists(atPath: store + "/temperature/zarr.json"))

            // --force never deletes a directory that is not a Zarr store.
            let other = directory + "/other"
            try FileManager.default.createDirectory(atPath: other, withIntermediateDirectories: false)
            let notZarr = try ckpt("export", checkpoints, "-o", other, "--force")
            #expect(notZarr.status == 2, "\(notZarr)")
            #expect(notZarr.stderr.contains("not a Zarr store"), "\(notZarr)")
            #expect(
                try FileManager.default.contentsOfDirectory(atPath: directory).sorted() == [
                    "checkpoints", "other", "run.zarr",
                ]
            )
        }
    }

    @Test func damagedShardLeavesNoPartialStore() throws {
        try withTemporaryDirectory { directory in
            let checkpoints = directory + "/checkpoints"
            try saveDistributed(in: checkpoints, step: 7)
            let shard =
                CheckpointDirectory(path: checkpoints).path(for: 7) + "/" + CheckpointDirectory.shardFileName(rank: 3)
            try flipMiddleByte(of: shard)
            let result = try ckpt("export", checkpoints, "-o", directory + "/run.zarr")
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("SHA-256") || result.stderr.contains("checksum"), "\(result)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["checkpoints"])
        }
    }

    /// Plain structs that declare their fields (`StructuredElement`) carry them as the array's
    /// `fields` attribute, from which a notebook views the bytes as a NumPy structured array.
    @Test func structuredElementsCarryTheirFields() throws {
        let python = try zarrPython()
        try withTemporaryDirectory { directory in
            let checkpoints = directory + "/checkpoints"
            try saveCheckpoints(in: checkpoints, steps: [3]) { _ in Bodies() }
            let store = directory + "/run.zarr"
            let result = try ckpt("export", checkpoints, "-o", store)
            #expect(result.status == 0, "\(result)")
            let check = #"""
                import sys, zarr, numpy as np
                a = zarr.open_group(sys.argv[1], mode="r")["rank-0/bodies"]
                fields = a.attrs["fields"]
                dtype = np.dtype({
                    "names": [f["name"] for f in fields],
                    "formats": [(f["dtype"], (f["count"],)) if f["count"] > 1 else f["dtype"] for f in fields],
                    "offsets": [f["offset"] for f in fields],
                    "itemsize": a.attrs["elementBytes"],
                })
                bodies = np.ascontiguousarray(a[...]).view(dtype)[:, 0]
                print(bodies["mass"].tolist(), bodies["charge"].tolist(), bodies["velocity"][:, 1].tolist(),
                      bodies["corners"][:, 3].tolist())
                """#
            let output = try runProgram(python, ["-c", check, store])
            #expect(output.status == 0, "\(output)")
            #expect(
                output.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                    == "[1.0, 1.5, 2.0, 2.5, 3.0] [-2, -1, 0, 1, 2] [0.0, 2.0, 4.0, 6.0, 8.0] [7.0, 7.0, 7.0, 7.0, 7.0]",
                "\(output)"
            )
        }
    }

    /// An entry `a` and an entry `a/b` would need `a` to be both an array and a group.
    @Test func entriesThatMapToOneNodeAreRefused() throws {
        try withTemporaryDirectory { directory in
            let checkpoints = directory + "/checkpoints"
            try saveCheckpoints(in: checkpoints, steps: [1]) { _ in
                var state = NamedArrays()
                state.doubles = ["a": [1, 2], "a/b": [3]]
                return state
            }
            let result = try ckpt("export", checkpoints, "-o", directory + "/run.zarr")
            #expect(result.status == 2, "\(result)")
            #expect(result.stderr.contains("two entries map to the Zarr node 'rank-0/a'"), "\(result)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: directory) == ["checkpoints"])
        }
    }
}
